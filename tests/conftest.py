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
os.environ.setdefault("ADAQAT_HOME", tempfile.mkdtemp(prefix="adaqat-test-home-"))  # never the user's models

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
    from app.services.settings import Settings

    return Settings()


@pytest.fixture
def make_window(qtbot, loaded_model, viewer_settings, tmp_path):
    """Build real MainWindows on a store under tmp_path (the same store for every call in one test)."""
    from app.main_window import MainWindow
    from app.services.settings import Settings

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


# --- offline guard ----------------------------------------------------------------------------------
# The product never touches the network. Every test runs with IP sockets and name lookups blocked:
# in this process (patched below) and in every Python subprocess a test starts (the same code is
# written as ``sitecustomize.py`` into a folder put first on PYTHONPATH). A blocked call raises
# OSError *and* is recorded, so a library that swallows the error still fails the test that caused
# it, with the address named. AF_UNIX sockets stay allowed (local IPC only, never the network).

NETWORK_GUARD_SOURCE = r'''
"""Test-only network guard (tests/conftest.py): IP sockets and name lookups raise and are recorded."""
import ipaddress
import os
import socket as _socket

_LOG = os.environ.get("ADAQAT_NET_GUARD_LOG", "")
attempts = []
_original = {}


def _record(what, address):
    text = f"{what} {address!r} (pid {os.getpid()})"
    attempts.append(text)
    if _LOG:
        try:
            with open(_LOG, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError:
            pass
    raise OSError(f"network access is blocked in the tests: {text}")


def _is_local_ipc(sock):
    return getattr(_socket, "AF_UNIX", None) is not None and sock.family == _socket.AF_UNIX


def _method(name):
    original = getattr(_socket.socket, name)
    _original["socket." + name] = original

    def guarded(self, address, *args, **kwargs):
        if _is_local_ipc(self):
            return original(self, address, *args, **kwargs)
        return _record(f"socket.{name}", address)

    guarded.__name__ = name
    return guarded


def _sendto(self, data, *args):
    if _is_local_ipc(self):
        return _original["socket.sendto"](self, data, *args)
    return _record("socket.sendto", args[-1] if args else None)


def _numeric(host):
    """A literal IP address (or None) resolves without asking anyone: no network traffic."""
    if host is None:
        return True
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host).split("%")[0])
    except ValueError:
        return False
    return True


def _lookup(name):
    original = getattr(_socket, name)
    _original[name] = original

    def guarded(host, *args, **kwargs):
        if name == "getaddrinfo" and _numeric(host):
            return original(host, *args, **kwargs)  # the connect that follows is what gets blocked
        return _record(f"socket.{name}", host)

    guarded.__name__ = name
    return guarded


def install():
    if _original:
        return
    for name in ("connect", "connect_ex", "bind"):
        setattr(_socket.socket, name, _method(name))
    _original["socket.sendto"] = _socket.socket.sendto
    _socket.socket.sendto = _sendto
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        setattr(_socket, name, _lookup(name))


def uninstall():
    for key, original in _original.items():
        if key.startswith("socket."):
            setattr(_socket.socket, key[len("socket."):], original)
        else:
            setattr(_socket, key, original)
    _original.clear()


if os.environ.get("ADAQAT_NET_GUARD_LOG"):
    install()
'''


class NetworkGuard:
    """What the tests' offline guard saw: ``collect()`` returns attempts since the last ``reset()``."""

    def __init__(self, module, log_path: Path) -> None:
        self.module = module
        self.log_path = log_path

    def reset(self) -> None:
        self.module.attempts.clear()
        self.log_path.write_text("", encoding="utf-8")

    def collect(self) -> list[str]:
        logged = self.log_path.read_text(encoding="utf-8").splitlines() if self.log_path.exists() else []
        return list(dict.fromkeys([*self.module.attempts, *logged]))  # this process's, then subprocesses'


@pytest.fixture(scope="session", autouse=True)
def network_guard():
    """Block IP networking for the whole session, here and in Python subprocesses (see above)."""
    import importlib.util

    folder = Path(tempfile.mkdtemp(prefix="adaqat-test-offline-"))
    (folder / "sitecustomize.py").write_text(NETWORK_GUARD_SOURCE, encoding="utf-8")
    log_path = folder / "attempts.log"
    log_path.write_text("", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("adaqat_test_network_guard", folder / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "ADAQAT_NET_GUARD_LOG")}
    os.environ["ADAQAT_NET_GUARD_LOG"] = str(log_path)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), saved["PYTHONPATH"]) if p)
    module.install()
    try:
        yield NetworkGuard(module, log_path)
    finally:
        module.uninstall()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def _fail_on_network_attempt(network_guard):
    """A test fails if it (or a subprocess it started) tried to reach the network, naming the address."""
    network_guard.reset()
    yield
    attempts = network_guard.collect()
    network_guard.reset()
    if attempts:
        pytest.fail("the product must work offline, but this test tried to use the network: " + "; ".join(attempts),
                    pytrace=False)
