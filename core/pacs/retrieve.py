"""C-GET: fetch a study's chest radiographs from the PACS into the local study folder.

The study's series are listed first (C-FIND, SERIES level) and only CR/DX series are fetched, so our
own SEG and SR objects, or a CT in the same study, are never pulled onto the laptop; a study without
any CR/DX series is refused with a message that says so. C-GET rather than C-MOVE: it needs no
route from the PACS back to this computer (no firewall opening, no AE entry with our address), which
suits a laptop. Each image is written atomically as it arrives (``storage``), so a cancel or a
dropped connection keeps the complete images and never a partial file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .association import associated, check_alive, make_ae
from .config import PacsConfig
from .errors import PacsError
from .query import CHEST_MODALITIES
from .storage import RADIOGRAPH_SOP_CLASSES, radiograph_contexts, store_instance

Progress = Callable[[int, int], None]  # (images received, images expected)


@dataclass
class RetrieveResult:
    study_uid: str
    paths: list[Path] = field(default_factory=list)
    failed: int = 0  # images the PACS could not send (or we could not write)
    cancelled: bool = False


def retrieve_study(
    config: PacsConfig,
    study_uid: str,
    folder: Path,
    *,
    label: str = "",
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> RetrieveResult:
    """Fetch the CR/DX images of ``study_uid`` into ``folder/<study uid>/``. Raises ``PacsError``.

    ``label`` names the study in messages (``StudyMatch.label``); without it, the UID does.
    """
    from pydicom.dataset import Dataset
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

    what = f"retrieve of {label or 'study ' + study_uid}"
    result = RetrieveResult(study_uid)
    write_errors: list[str] = []

    def on_store(event) -> int:
        if cancelled():
            return 0xFE00  # cancelled: the PACS stops the remaining sub-operations
        ds = event.dataset
        try:
            path = store_instance(folder, study_uid, ds.SOPInstanceUID, event.encoded_dataset())
        except OSError as error:
            write_errors.append(f"{error.strerror or error}")
            return 0xA700  # out of resources
        result.paths.append(path)
        if progress is not None:
            progress(len(result.paths), expected)
        return 0x0000

    ae = make_ae(config)
    ae.add_requested_context(FIND)
    ae.add_requested_context(GET)
    for context in radiograph_contexts():
        ae.add_requested_context(context.abstract_syntax, context.transfer_syntax)
    roles = [build_role(uid, scp_role=True) for uid in RADIOGRAPH_SOP_CLASSES]
    expected = 0
    with associated(config, ae, what, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        series = _chest_series(assoc, config, study_uid, what, FIND)
        if not series:
            raise PacsError(f"{config.label}: {what}: the study has no CR or DX images; nothing to segment")
        expected = sum(count for _, count in series)
        if progress is not None:
            progress(0, expected)
        for series_uid, _count in series:
            request = Dataset()
            request.QueryRetrieveLevel = "SERIES"
            request.StudyInstanceUID = study_uid
            request.SeriesInstanceUID = series_uid
            for status, _identifier in assoc.send_c_get(request, GET):
                if cancelled():
                    result.cancelled = True
                    assoc.abort()
                    return result
                if status is None:
                    check_alive(assoc, config, what)
                    raise PacsError(f"{config.label}: {what}: no answer within {config.timeout_s:g} s; try again")
                code = int(status.get("Status", 0xC000))
                if code == 0xFF00:  # pending: one more image is on its way
                    continue
                result.failed += int(status.get("NumberOfFailedSuboperations", 0) or 0)
                if write_errors:
                    break  # our side failed (disk): say that, not the PACS's status for it
                if code not in (0x0000, 0xB000, 0xFE00):  # success, some sub-operations failed, cancelled
                    raise PacsError(f"{config.label}: {what}: the PACS refused (status 0x{code:04X}); try again later")
    if write_errors:
        raise PacsError(f"{config.label}: {what}: {len(write_errors)} image(s) could not be written "
                        f"({write_errors[0]}); free disk space and retrieve again")
    if not result.paths and not result.cancelled:
        raise PacsError(f"{config.label}: {what}: the PACS sent no images; check that it allows C-GET for our AE title")
    return result


def _chest_series(assoc, config: PacsConfig, study_uid: str, what: str, find_model) -> list[tuple[str, int]]:
    """(series UID, instance count) of the study's CR/DX series."""
    from pydicom.dataset import Dataset

    request = Dataset()
    request.QueryRetrieveLevel = "SERIES"
    request.StudyInstanceUID = study_uid
    request.SeriesInstanceUID = ""
    request.Modality = ""
    request.NumberOfSeriesRelatedInstances = ""
    found: list[tuple[str, int]] = []
    for status, identifier in assoc.send_c_find(request, find_model):
        if status is None:
            check_alive(assoc, config, what)
            raise PacsError(f"{config.label}: {what}: no answer within {config.timeout_s:g} s; try again")
        code = int(status.get("Status", 0xC000))
        if code in (0xFF00, 0xFF01) and identifier is not None:
            if str(identifier.get("Modality", "")).upper() in CHEST_MODALITIES:
                try:
                    count = int(identifier.get("NumberOfSeriesRelatedInstances", 0) or 0)
                except (TypeError, ValueError):
                    count = 0
                found.append((str(identifier.SeriesInstanceUID), count))
        elif code != 0x0000:
            raise PacsError(f"{config.label}: {what}: the PACS refused to list the series (status 0x{code:04X})")
    return found
