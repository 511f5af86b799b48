"""C-STORE SCU: send DICOM files (our SEG and SR) to the PACS in one association.

Presentation contexts are built from the files themselves (their SOP class and transfer syntax), so
whatever we wrote is offered exactly as it is on disk and never transcoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .association import associated, check_alive, make_ae
from .config import PacsConfig
from .errors import PacsError


def send_files(config: PacsConfig, paths: Sequence[Path], what: str) -> None:
    """Store every file on the PACS or raise ``PacsError`` (``what`` names the study in the message)."""
    import pydicom

    datasets = []
    for path in paths:
        try:
            datasets.append(pydicom.dcmread(path))
        except FileNotFoundError:
            raise PacsError(f"{config.label}: {what}: {Path(path).name} is missing from the outbox") from None
        except Exception as error:  # noqa: BLE001 - a damaged outbox file: say which one
            raise PacsError(f"{config.label}: {what}: {Path(path).name} is not readable DICOM ({type(error).__name__})") from None
    ae = make_ae(config)
    contexts = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets})
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, syntax)
    with associated(config, ae, what) as assoc:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if not status:
                check_alive(assoc, config, what)
                raise PacsError(f"{config.label}: {what}: no answer to the store within {config.timeout_s:g} s")
            code = int(status.get("Status", 0xC000))
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise PacsError(
                    f"{config.label}: {what}: the PACS refused to store {ds.get('Modality', 'an object')} "
                    f"(status 0x{code:04X}); it waits in the outbox and is retried"
                )
