"""C-FIND: the studies on the PACS that match the reader's search (Study Root, STUDY level).

Patient name matches as a prefix unless the reader typed wildcards; the modality filter uses
Modalities in Study, so a study is listed when any of its series is CR or DX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .association import associated, check_alive, make_ae
from .config import PacsConfig
from .errors import PacsError

CHEST_MODALITIES = ("CR", "DX")
MAX_RESULTS = 500  # a search that matches more than this is too broad to list


@dataclass(frozen=True)
class StudyQuery:
    patient_id: str = ""
    patient_name: str = ""
    date_from: date | None = None
    date_to: date | None = None
    modalities: tuple[str, ...] = CHEST_MODALITIES
    accession: str = ""

    def date_range(self) -> str:
        """DICOM date range matching: ``20240101-20241231``, ``20240101-``, ``-20241231`` or ''."""
        if self.date_from is None and self.date_to is None:
            return ""
        start = self.date_from.strftime("%Y%m%d") if self.date_from else ""
        end = self.date_to.strftime("%Y%m%d") if self.date_to else ""
        return start if start and start == end else f"{start}-{end}"


@dataclass(frozen=True)
class StudyMatch:
    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str
    accession: str
    modalities: tuple[str, ...]
    instances: int | None

    @property
    def label(self) -> str:
        """How messages name the study: its date and description or accession, never the patient."""
        parts = [p for p in (self.study_date, self.description or self.accession) if p]
        return f"study {' '.join(parts) or self.study_uid}"


def query_dataset(query: StudyQuery):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientID = query.patient_id.strip()
    name = query.patient_name.strip()
    ds.PatientName = name if not name or "*" in name or "?" in name else name + "*"
    ds.StudyDate = query.date_range()
    ds.StudyTime = ""
    ds.AccessionNumber = query.accession.strip()
    ds.ModalitiesInStudy = list(query.modalities) if query.modalities else ""
    ds.StudyDescription = ""
    ds.NumberOfStudyRelatedInstances = ""
    return ds


def find_studies(config: PacsConfig, query: StudyQuery, cancelled: Callable[[], bool] = lambda: False) -> list[StudyMatch]:
    """Studies matching ``query``, newest first. Raises ``PacsError`` (one line naming the PACS)."""
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    ae = make_ae(config)
    ae.add_requested_context(FIND)
    wanted = {m.upper() for m in query.modalities}
    matches: list[StudyMatch] = []
    with associated(config, ae, "search") as assoc:
        for status, identifier in assoc.send_c_find(query_dataset(query), FIND):
            if cancelled():
                assoc.abort()
                return matches
            if status is None:
                check_alive(assoc, config, "search")
                raise PacsError(f"{config.label}: search: no answer within {config.timeout_s:g} s; try again")
            code = int(status.get("Status", 0xC000))
            if code in (0xFF00, 0xFF01) and identifier is not None:
                match = _match(identifier)
                if wanted and match.modalities and not wanted & set(match.modalities):
                    continue  # a PACS that ignores Modalities in Study matching
                matches.append(match)
                if len(matches) > MAX_RESULTS:
                    assoc.abort()
                    raise PacsError(
                        f"{config.label}: search: more than {MAX_RESULTS} studies match; narrow the search "
                        "(patient ID, dates or accession number)"
                    )
            elif code not in (0x0000, 0xFF00, 0xFF01):
                raise PacsError(f"{config.label}: search refused by the PACS (status 0x{code:04X}); check the search fields")
    matches.sort(key=lambda m: m.study_date, reverse=True)
    return matches


def _match(ds) -> StudyMatch:
    modalities = ds.get("ModalitiesInStudy", "") or ()
    if isinstance(modalities, str):
        modalities = (modalities,) if modalities else ()
    count = ds.get("NumberOfStudyRelatedInstances", None)
    try:
        instances = int(count) if count not in (None, "") else None
    except (TypeError, ValueError):
        instances = None
    return StudyMatch(
        study_uid=str(ds.get("StudyInstanceUID", "")),
        patient_id=str(ds.get("PatientID", "")),
        patient_name=str(ds.get("PatientName", "")),
        study_date=str(ds.get("StudyDate", "")),
        description=str(ds.get("StudyDescription", "")),
        accession=str(ds.get("AccessionNumber", "")),
        modalities=tuple(str(m) for m in modalities),
        instances=instances,
    )
