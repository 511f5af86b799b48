"""The PACS part of the viewer's settings (keys under ``pacs/``), as a ``core.pacs.PacsConfig``.

Kept apart from ``settings.py`` so the PACS feature owns its keys; the defaults are the safe ones of
``PacsConfig`` (listen on localhost, no calling AE accepted, listener off, nothing sent on Accept).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths

from core.pacs import PacsConfig
from core.pacs.config import LOCALHOST, parse_ae_list

from .settings import Settings

ANY_ADDRESS = "0.0.0.0"


def _data_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base) if base else Path.home() / ".adaqat"


class PacsSettings:
    def __init__(self, settings: Settings) -> None:
        self.q = settings.q

    def _get(self, key: str, default):
        value = self.q.value(f"pacs/{key}", default)
        try:
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
            if isinstance(default, int):
                return int(value)
            if isinstance(default, float):
                return float(value)
        except (TypeError, ValueError):
            return default
        return str(value) if value is not None else default

    def config(self) -> PacsConfig:
        base = PacsConfig()
        return PacsConfig(
            pacs_ae=self._get("pacs_ae", base.pacs_ae),
            pacs_host=self._get("pacs_host", base.pacs_host),
            pacs_port=self._get("pacs_port", base.pacs_port),
            our_ae=self._get("our_ae", base.our_ae),
            our_port=self._get("our_port", base.our_port),
            listen_host=ANY_ADDRESS if self._get("listen_open", False) else LOCALHOST,
            accepted_calling_aes=parse_ae_list(self._get("accepted_calling_aes", "")),
            connect_timeout_s=self._get("connect_timeout_s", base.connect_timeout_s),
            timeout_s=self._get("timeout_s", base.timeout_s),
            send_on_accept=self._get("send_on_accept", False),
            tls_ca_file=self._get("tls_ca_file", ""),
            tls_cert_file=self._get("tls_cert_file", ""),
            tls_key_file=self._get("tls_key_file", ""),
        )

    def set_config(self, config: PacsConfig) -> None:
        values = {
            "pacs_ae": config.pacs_ae.strip(), "pacs_host": config.pacs_host.strip(), "pacs_port": int(config.pacs_port),
            "our_ae": config.our_ae.strip(), "our_port": int(config.our_port),
            "listen_open": config.listen_host != LOCALHOST,
            "accepted_calling_aes": ", ".join(config.accepted_calling_aes),
            "connect_timeout_s": float(config.connect_timeout_s), "timeout_s": float(config.timeout_s),
            "send_on_accept": bool(config.send_on_accept),
            "tls_ca_file": config.tls_ca_file.strip(), "tls_cert_file": config.tls_cert_file.strip(),
            "tls_key_file": config.tls_key_file.strip(),
        }
        for key, value in values.items():
            self.q.setValue(f"pacs/{key}", value)

    def listen(self) -> bool:
        """Start the DICOM listener with the viewer (off by default)."""
        return self._get("listen", False)

    def set_listen(self, on: bool) -> None:
        self.q.setValue("pacs/listen", bool(on))

    def study_folder(self) -> Path:
        """Where retrieved and received studies are stored."""
        value = self._get("study_folder", "")
        return Path(value).expanduser() if value else _data_dir() / "pacs-studies"

    def set_study_folder(self, path: str | Path) -> None:
        self.q.setValue("pacs/study_folder", str(path))

    def outbox_folder(self) -> Path:
        value = self._get("outbox_folder", "")
        return Path(value).expanduser() if value else _data_dir() / "pacs-outbox"

    def set_outbox_folder(self, path: str | Path) -> None:
        self.q.setValue("pacs/outbox_folder", str(path))

    def sync(self) -> None:
        self.q.sync()
