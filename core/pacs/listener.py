"""Our C-STORE SCP: the PACS (or a modality) pushes chest radiographs to us; each is stored atomically.

Who may send is explicit: the listener refuses to start with no accepted calling AE title (the
default), and pynetdicom rejects any association whose calling AE title is not in the list. It binds
to 127.0.0.1 unless the settings open it up, and negotiates only the CR/DX storage SOP classes, so a
CT or an MR pushed by mistake is refused at association time instead of filling the disk.
A stored image is handed to ``on_stored`` (normally ``ArrivalSegmenter.submit``); the C-STORE
response is sent only after the file is durable under its final name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .association import quiet_pynetdicom
from .config import PacsConfig
from .errors import PacsError
from .storage import radiograph_contexts, store_instance

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000


class StorageListener:
    def __init__(self, config: PacsConfig, inbox: Path | str, on_stored: Callable[[Path], None] | None = None) -> None:
        self.config = config
        self.inbox = Path(inbox)
        self.on_stored = on_stored
        self._server = None
        self.stored = 0
        self.failed = 0

    @property
    def label(self) -> str:
        return f"listener {self.config.our_ae} ({self.config.listen_host}:{self.port})"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server is not None else int(self.config.our_port)

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Start listening in background threads. Raises ``PacsError`` (no allowed caller, port in use)."""
        from pynetdicom import AE, evt

        if not self.config.accepted_calling_aes:
            raise PacsError(
                f"{self.label}: no calling AE title is accepted, so nobody could send images; add the PACS's "
                "AE title (Settings > PACS, or --allow AE_TITLE)"
            )
        problems = self.config.problems()
        if problems:
            raise PacsError(f"{self.label}: {problems[0]}")
        quiet_pynetdicom()
        self.inbox.mkdir(parents=True, exist_ok=True)
        ae = AE(ae_title=self.config.our_ae)
        ae.require_calling_aet = list(self.config.accepted_calling_aes)
        ae.require_called_aet = True
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.config.timeout_s
        for context in radiograph_contexts():
            ae.add_supported_context(context.abstract_syntax, context.transfer_syntax)
        ae.add_supported_context(VERIFICATION)
        try:
            self._server = ae.start_server(
                (self.config.listen_host, int(self.config.our_port)),
                block=False,
                evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
            )
        except OSError as error:
            raise PacsError(
                f"{self.label}: could not listen ({error.strerror or error}); choose another port or stop the "
                "program that uses it"
            ) from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event) -> int:
        try:
            ds = event.dataset
            study_uid, sop_uid = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
        except Exception:  # noqa: BLE001 - a dataset pydicom cannot decode, or one without UIDs
            self.failed += 1
            log.warning("%s: refused an image without readable Study/SOP Instance UIDs", self.label)
            return CANNOT_UNDERSTAND
        try:
            path = store_instance(self.inbox, study_uid, sop_uid, event.encoded_dataset())
        except OSError as error:
            self.failed += 1
            log.warning("%s: could not store a received image (%s); free disk space in the inbox",
                        self.label, error.strerror or error)
            return OUT_OF_RESOURCES
        self.stored += 1
        if self.on_stored is not None:
            try:
                self.on_stored(path)
            except Exception as error:  # noqa: BLE001 - the image is stored; a failing hook must not fail the store
                log.warning("%s: received image stored, but could not be queued for segmentation (%s)",
                            self.label, type(error).__name__)
        return 0x0000
