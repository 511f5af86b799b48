"""The viewer's persistent preferences, in one typed wrapper around QSettings.

Tests and portable installs point ``ADAQAT_SETTINGS`` at an ini file so they never read or write
the user's real settings; otherwise Qt's native per-user store is used under the organisation
"AdaQAT" and the application "AdaQAT Viewer".
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from core.store import default_reader_name

ORGANIZATION = "AdaQAT"
APPLICATION = "AdaQAT Viewer"
SETTINGS_ENV = "ADAQAT_SETTINGS"
MAX_RECENT = 10
DEVICES = ("cpu", "cuda")


def open_qsettings() -> QSettings:
    """The QSettings object: the ini file named by ``ADAQAT_SETTINGS``, else the native store."""
    override = os.environ.get(SETTINGS_ENV)
    if override:
        Path(override).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(override).expanduser()), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def default_store_path() -> Path:
    """``<AppDataLocation>/store``; the location follows the platform's conventions.

    AppDataLocation includes the organisation and application names set in ``app.main``.
    """
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return (Path(base) if base else Path.home() / ".adaqat") / "store"


class Settings:
    """Typed accessors; every value has a sensible default so a fresh install just works."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings or open_qsettings()

    # -- window ---------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self.q.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    # -- recent files ---------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.q.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, path: str) -> list[str]:
        items = [path] + [p for p in self.recent_files() if p != path]
        items = items[:MAX_RECENT]
        self.q.setValue("recent/files", items)
        return items

    def clear_recent(self) -> None:
        self.q.setValue("recent/files", [])

    # -- engine ---------------------------------------------------------------------------------
    def store_path(self) -> Path:
        value = self.q.value("store/path", "")
        return Path(str(value)).expanduser() if value else default_store_path()

    def set_store_path(self, path: str | Path) -> None:
        self.q.setValue("store/path", str(path))

    def reader_name(self) -> str:
        """The configured reader, else the store's default ($ADAQAT_READER, else the OS user)."""
        value = str(self.q.value("review/reader", "") or "").strip()
        return value or default_reader_name()

    def set_reader_name(self, name: str) -> None:
        self.q.setValue("review/reader", name.strip())

    def model(self) -> str:
        """The viewer's model; until one is chosen here, the engine's active model (``adaqat models``)."""
        from core.models.catalog import active_model

        return str(self.q.value("model/name", "") or active_model())

    def set_model(self, name: str) -> None:
        self.q.setValue("model/name", name.strip() or "default")

    def device(self) -> str:
        value = str(self.q.value("model/device", "cpu") or "cpu")
        return value if value in DEVICES else "cpu"

    def set_device(self, device: str) -> None:
        self.q.setValue("model/device", device if device in DEVICES else "cpu")

    def threads(self) -> int:
        """Torch intra-op threads; 0 means leave torch's default."""
        try:
            return max(0, int(self.q.value("model/threads", 0)))
        except (TypeError, ValueError):
            return 0

    def set_threads(self, threads: int) -> None:
        self.q.setValue("model/threads", max(0, int(threads)))

    # -- overlay --------------------------------------------------------------------------------
    def overlay_opacity(self) -> int:
        try:
            return min(100, max(0, int(self.q.value("overlay/opacity", 40))))
        except (TypeError, ValueError):
            return 40

    def set_overlay_opacity(self, percent: int) -> None:
        self.q.setValue("overlay/opacity", int(percent))

    # -- reading --------------------------------------------------------------------------------
    def window_preset(self) -> str:
        """The window/level preset last chosen by name ("Lung", "File default", ...)."""
        return str(self.q.value("view/window_preset", "") or "")

    def set_window_preset(self, name: str) -> None:
        self.q.setValue("view/window_preset", name)

    def advance_after_review(self) -> bool:
        """Accept/Corrected/Reject move on to the next unreviewed image (on unless switched off)."""
        return str(self.q.value("review/advance", "true")).lower() in ("true", "1", "yes")

    def set_advance_after_review(self, on: bool) -> None:
        self.q.setValue("review/advance", "true" if on else "false")

    def sync(self) -> None:
        self.q.sync()
