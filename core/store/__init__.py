"""The annotation store: SQLite (WAL) + atomically written mask PNGs. See ``annotation_store``."""

from .annotation_store import (
    HUMAN_SOURCES,
    MASK_SOURCES,
    REVIEW_STATUSES,
    SCHEMA_VERSION,
    AnnotationStore,
    AuditEvent,
    ImageRecord,
    MaskRevision,
    default_reader_name,
    image_key_for,
    image_ref,
    model_label,
)
from .annotation_store import __all__  # one list of the public names, kept where they are defined
from .errors import StoreConflict, StoreError
