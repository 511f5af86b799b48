"""Test-wide setup: headless Qt, throwaway viewer settings, and one loaded model per session.

Qt must see ``QT_QPA_PLATFORM=offscreen`` before it is first imported, and no test may read or write
the user's real viewer settings, so both are set here at import time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("ADAQAT_SETTINGS", str(Path(tempfile.mkdtemp(prefix="adaqat-test-settings-")) / "viewer.ini"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def loaded_model():
    """The default model (pretrained LiteMedSAM unless a bundled one exists), loaded once: ~1-3 s."""
    from core.models.loading import load_model

    return load_model("default", "cpu")


@pytest.fixture
def viewer_settings(tmp_path, monkeypatch):
    """A fresh settings ini for one test (geometry, recent files, store path never leak between tests)."""
    monkeypatch.setenv("ADAQAT_SETTINGS", str(tmp_path / "viewer.ini"))
    from app.settings import Settings

    return Settings()


@pytest.fixture
def make_window(qtbot, loaded_model, viewer_settings, tmp_path):
    """Build real MainWindows on a store under tmp_path (the same store for every call in one test)."""
    from app.main_window import MainWindow
    from app.settings import Settings

    windows = []

    def make(store: Path | None = None):
        window = MainWindow(store_path=store or tmp_path / "store", loaded_model=loaded_model, settings=Settings())
        qtbot.addWidget(window)
        window.resize(1400, 900)
        window.show()
        qtbot.waitUntil(lambda: window.segmentation.model_info is not None, timeout=60_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def mouse_drag(widget, points, button=None, modifiers=None) -> None:
    """Press at points[0], move through the rest with the button held, release at the last point.

    Sent as explicit QMouseEvents because QTest's mouseMove does not carry a held button.
    """
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    button = button or Qt.MouseButton.LeftButton
    modifiers = modifiers or Qt.KeyboardModifier.NoModifier

    def send(kind, point, buttons, which):
        local = QPointF(point)
        event = QMouseEvent(kind, local, widget.mapToGlobal(local), which, buttons, modifiers)
        QApplication.sendEvent(widget, event)

    none = Qt.MouseButton.NoButton
    send(QEvent.Type.MouseButtonPress, points[0], button, button)
    for point in points[1:]:
        send(QEvent.Type.MouseMove, point, button, none)
    send(QEvent.Type.MouseButtonRelease, points[-1], none, button)


@pytest.fixture
def drag():
    return mouse_drag
