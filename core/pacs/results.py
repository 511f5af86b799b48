"""Send a reviewed mask back: its DICOM SEG and lung-area SR are written into the outbox and queued.

Writing goes to the outbox first and sending happens later (``Outbox.flush``, ``OutboxRetrier``), so
Accept never waits on the network and a PACS that is down loses nothing. The SEG is the one the
Export menu writes (``core.export.dicom_seg``), so both paths give the PACS the same object.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..export.dicom_seg import _read_source, export_dicom_seg
from .outbox import Outbox
from .report import write_lung_area_report

if TYPE_CHECKING:
    from ..models.artifact import ModelInfo


def study_label(dataset) -> str:
    """How messages name a study: date and description (or accession), never the patient."""
    parts = [str(dataset.get(k, "") or "").strip() for k in ("StudyDate", "StudyDescription")]
    if not parts[1]:
        parts[1] = str(dataset.get("AccessionNumber", "") or "").strip()
    text = " ".join(p for p in parts if p)
    return f"study {text or dataset.get('StudyInstanceUID', '?')}"


def queue_results(
    outbox: Outbox,
    source_dicom_path: str | Path,
    mask: np.ndarray,
    model: ModelInfo | None,
    reader: str,
    *,
    mask_source: str = "model",
    spacing_mm: Sequence[float] | None = None,
    with_report: bool = True,
) -> int:
    """Write the SEG (and the lung-area SR) of ``mask`` into the outbox and queue them; returns the item id.

    Raises ``ExportError`` when the source is not a DICOM image the SEG can reference, ``OSError`` when
    the outbox cannot be written; nothing is queued then.
    """
    source = _read_source(Path(source_dicom_path))
    seg_path = export_dicom_seg(source_dicom_path, mask, outbox.new_file("_seg.dcm"), model, reader,
                                mask_source=mask_source)
    files = [seg_path]
    try:
        if with_report:
            files.append(write_lung_area_report(source_dicom_path, seg_path, spacing_mm, outbox.new_file("_sr.dcm")))
        return outbox.add(str(source.StudyInstanceUID), study_label(source), files)
    except BaseException:
        for path in files:
            Path(path).unlink(missing_ok=True)
        raise
