"""Settings live in the ini named by ADAQAT_SETTINGS; errors never reach the user as a traceback."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QSettings

from app.excepthook import install_excepthook
from app.services.settings import Settings
from app.dialogs.settings_dialog import SettingsDialog


def test_settings_use_the_override_file(viewer_settings, tmp_path):
    s = viewer_settings
    assert s.q.format() == QSettings.Format.IniFormat and s.q.fileName() == str(tmp_path / "viewer.ini")
    assert s.store_path().name == "store" and s.model() == "default" and s.device() == "cpu"
    assert s.reader_name()
    for path in ("a", "b", "a"):
        s.add_recent(path)
    assert s.recent_files() == ["a", "b"]
    s.set_device("tpu")
    assert s.device() == "cpu"
    s.sync()
    assert Settings().recent_files() == ["a", "b"]


def test_settings_dialog_writes_back(qtbot, viewer_settings, tmp_path):
    dialog = SettingsDialog(viewer_settings)
    qtbot.addWidget(dialog)
    dialog.store_path.setText(str(tmp_path / "elsewhere"))
    dialog.reader.setText("Dr Who")
    dialog.threads.setValue(2)
    dialog.apply()
    fresh = Settings()
    assert fresh.store_path() == tmp_path / "elsewhere"
    assert fresh.reader_name() == "Dr Who" and fresh.threads() == 2


def test_excepthook_logs_without_the_message_and_notifies(caplog):
    shown = []
    previous = install_excepthook(shown.append)
    try:
        try:
            raise ValueError("Doe^Jane 19400305")
        except ValueError:
            with caplog.at_level(logging.ERROR, logger="adaqat.viewer"):
                sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = previous
    assert shown and "ValueError" in shown[0] and "Doe" not in shown[0]
    assert "ValueError" in caplog.text and "Doe" not in caplog.text
