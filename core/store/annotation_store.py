"""The annotation store: which images a reader has, their mask revisions and review statuses.

Layout under ``root``::

    annotations.sqlite (+ -wal, -shm)   images, revisions, reviews, events (SQLite, WAL, synchronous=FULL)
    masks/<image ref>-<time>-<random>.png   one PNG per mask revision, never overwritten

Crash safety. Every mask is written to a temporary file in ``masks/``, fsynced, renamed into place and
the folder fsynced (``atomic.atomic_write_bytes``) *before* the transaction that inserts its revision
row commits. So a kill or power cut at any moment loses at most the save in progress: either the row
is committed and its file is complete and durable, or there is no row (an unreferenced PNG or a
``.tmp`` file may be left; ``orphan_mask_files``/``remove_stale_temp_files`` find them). Revision files
are immutable, so history is never rewritten.

Threads. One SQLite connection, opened with ``check_same_thread=False`` and serialised by a
``threading.RLock``: every public method takes the lock, so calls from any thread are safe (the
viewer calls from the GUI thread only). Several processes may open the same store; SQLite's own
locking (``BEGIN IMMEDIATE`` + a 5 s busy timeout) serialises their writes.

Identity. Images are found by content, pixel hash plus SOPInstanceUID (``image_key``), never by the
UID alone; schema-1 stores are migrated (``schema``) and their records claimed by matching images.
Opening refuses an emptied or missing database next to saved masks, and names a read-only folder
(``opening``). Paths that are not valid UTF-8 are kept as bytes.

Privacy. Patient/study/series identifiers live in the database only. Log messages name images by a
short hash of their key (``image_ref``), never by identifiers; errors name them by display name
(the file name).
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.spacing import valid_spacing
from .atomic import atomic_write_bytes, fsync_dir, remove_stale_temp_files
from .errors import StoreConflict, StoreError, one_line, write_advice
from .image_key import INVERTED_SUFFIX, content_key, db_path, legacy_file_key, path_from_db, shown_name, sop_uid
from .masks import as_binary_mask, decode_mask_png, encode_mask_png
from .opening import create_database, disk_full_reason, read_only_reason, refuse_lost_database
from .schema import MASK_SOURCES, REVIEW_STATUSES, SCHEMA_VERSION, migrate

if TYPE_CHECKING:  # no runtime import: keeps torch out of processes that only touch the store
    from core.io.study import Study
    from core.models.artifact import ModelInfo

log = logging.getLogger(__name__)
# An image's version is its last mask or review event: what a reader's change must be built on.
_VERSION_EVENTS = ("mask", "review")
_VERSION_SQL = "SELECT MAX(id) FROM events WHERE image_key = ? AND kind IN ('mask', 'review')"

DB_FILE = "annotations.sqlite"
MASK_DIR = "masks"
HUMAN_SOURCES = ("edit", "prompt")
BUSY_TIMEOUT_MS = 5000

__all__ = [
    "AnnotationStore",
    "AuditEvent",
    "ImageRecord",
    "MaskRevision",
    "StoreConflict",
    "StoreError",
    "default_reader_name",
    "image_key_for",
    "image_ref",
    "model_label",
    "HUMAN_SOURCES",
    "MASK_SOURCES",
    "REVIEW_STATUSES",
    "SCHEMA_VERSION",
]


# --------------------------------------------------------------------------------------------------
# module functions


def default_reader_name() -> str:
    """The reader recorded with edits and reviews: ``$ADAQAT_READER``, else the OS user, else "unknown"."""
    name = os.environ.get("ADAQAT_READER", "").strip()
    if name:
        return name
    try:
        name = getpass.getuser().strip()
    except Exception:  # no user database entry, no USER/LOGNAME variables
        name = ""
    return name or "unknown"


def image_key_for(study: Study) -> str:
    """The key a newly registered image gets: its content (``image_key.content_key``).

    A record migrated from a schema-1 store keeps its old key; ``register_image`` returns the
    record's key, which is what callers should use.
    """
    return content_key(study)


def image_ref(key: str) -> str:
    """A short, non-identifying reference to an image key, for logs."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def model_label(name: str | None, version: str | None, precision: str | None) -> str:
    """Same text as ``ModelInfo.label``; "" when there is no model."""
    if not name:
        return ""
    suffix = " INT8" if precision == "int8" else ""
    return f"{name} {version or ''}".strip() + suffix


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        if error.strerror:
            return one_line(error.strerror)
        if error.errno:
            return os.strerror(error.errno)
    return one_line(error) or type(error).__name__


# --------------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class ImageRecord:
    """One registered image as the study browser shows it. ``status``/``note``/``reader``/``updated_at``
    are the review's ("unreviewed", "", "", "" before any review)."""

    key: str
    path: Path
    display_name: str
    kind: str
    status: str
    note: str
    reader: str
    updated_at: str
    width: int
    height: int
    spacing: tuple[float, float] | None  # (row, column) mm
    patient_id: str
    patient_name: str
    study_uid: str
    study_description: str
    series_uid: str
    series_description: str
    has_mask: bool
    first_model_label: str
    position: int = 0
    spacing_source: str = "none"
    latest_revision_id: int | None = None
    latest_source: str = ""
    uid_twins: int = 0  # other images with the same SOPInstanceUID but different pixels
    content_key: str | None = None  # None: a schema-1 record no image has claimed yet

    def made_on(self, study: Study) -> bool:
        """True unless ``study`` (e.g. the file now at ``path``) is provably another image than this record's."""
        return self.content_key is None or content_key(study) == self.content_key

    @property
    def warning(self) -> str:
        """What the reader must know about this record ('' when nothing)."""
        if not self.uid_twins:
            return ""
        return (f"{self.uid_twins} other image(s) in the store carry the same SOPInstanceUID but a different picture; "
                "they are kept as separate images (check the study came from the right patient)")


@dataclass(frozen=True)
class MaskRevision:
    """One saved mask. ``model_*`` is the model of this revision (source model/prompt; None for an
    edit); ``first_model_*`` is the model behind the image's first mask, carried on every revision."""

    id: int
    image_key: str
    file: Path  # absolute path of the PNG
    sha256: str
    source: str
    model_name: str | None
    model_version: str | None
    model_precision: str | None
    model_weights_sha256: str | None
    first_model_name: str | None
    first_model_version: str | None
    first_model_precision: str | None
    first_model_weights_sha256: str | None
    reader: str
    created_at: str
    width: int
    height: int
    lung_pixels: int
    model_label: str
    first_model_label: str


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: str
    kind: str
    image_key: str | None
    revision_id: int | None
    reader: str
    detail: str


# --------------------------------------------------------------------------------------------------
# the store


class AnnotationStore:
    """See the module docstring. Every public method raises only ``StoreError`` for store problems."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.db_path = self.root / DB_FILE
        self.mask_dir = self.root / MASK_DIR
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._own_versions: dict[str, int] = {}
        try:
            created = not self.mask_dir.is_dir()
            self.mask_dir.mkdir(parents=True, exist_ok=True)
            if created:
                fsync_dir(self.root)
        except OSError as error:
            raise StoreError(
                f"{self.root}: could not create the annotation folder: {_reason(error)}; choose a writable folder"
            ) from None
        refuse_lost_database(self.db_path, self.mask_dir)
        conn = None
        try:
            if not self.db_path.exists():
                create_database(self.db_path, self._prepare)
            conn = sqlite3.connect(
                str(self.db_path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._prepare(conn)
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        except (sqlite3.DatabaseError, OSError) as error:
            if conn is not None:
                conn.close()
            full = disk_full_reason(self.root)
            if full:
                raise StoreError(full) from None
            read_only = read_only_reason(self.root, self.db_path)
            if read_only:
                raise StoreError(
                    f"{read_only}; the annotations need a writable folder: make it writable, or choose another "
                    "folder for the annotation store"
                ) from None
            raise StoreError(
                f"{self.db_path}: could not open the annotation database ({_reason(error)}); if the file is "
                "damaged, restore it from a backup or choose another folder"
            ) from None
        self._conn = conn
        remove_stale_temp_files(self.root)  # databases of creations that were killed
        removed = remove_stale_temp_files(self.mask_dir)
        if removed:
            log.info("removed %d temporary mask file(s) left by an interrupted save", removed)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Pragmas and migrations, on a new database (``create_database``) or an existing one."""
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise StoreError(
                f"{self.db_path}: the annotation database cannot use write-ahead logging here (journal mode "
                f"{mode}); keep the annotation folder on a local disk"
            )
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, str(self.db_path))

    # -- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the annotation store is closed; open it again")
        return self._conn

    # -- images --------------------------------------------------------------------------------------

    def register_image(self, study: Study) -> ImageRecord:
        """Add an image (or refresh its path and metadata if already known); idempotent.

        The image is found by content (``image_key``): the same pixels and UID get the same record
        wherever the file is; a different image with an already known UID gets its own record, and
        the collision is logged, recorded as an event and added to ``study.warnings``. A record from
        a schema-1 store is claimed by the first matching image (``_claim_legacy``).
        """
        content = content_key(study)
        uid = sop_uid(study)
        path = db_path(study.path)
        display_name = shown_name(str(getattr(study, "display_name", "") or path_from_db(path).name))
        ids = study.identifiers
        spacing = valid_spacing(study.pixel_spacing_mm)
        spacing_source = str(getattr(study, "spacing_source", "none") or "none") if spacing else "none"
        values = {
            "path": path,
            "display_name": display_name,
            "kind": str(study.kind),
            "patient_id": str(ids.patient_id or ""),
            "patient_name": str(ids.patient_name or ""),
            "study_uid": str(ids.study_instance_uid or ""),
            "study_description": str(ids.study_description or ""),
            "series_uid": str(ids.series_instance_uid or ""),
            "series_description": str(ids.series_description or ""),
            "width": int(study.width),
            "height": int(study.height),
            "spacing_row_mm": spacing[0] if spacing else None,
            "spacing_col_mm": spacing[1] if spacing else None,
            "spacing_source": spacing_source,
        }
        now = _utc_now()
        with self._lock:
            conn = self._db()
            try:
                with _write_transaction(conn):
                    old = conn.execute("SELECT key, path FROM images WHERE content_key = ?", (content,)).fetchone()
                    if old is None:
                        old = self._claim_legacy(conn, study, content, uid, path)
                    if old is None:
                        old = _claim_uninverted(conn, content, path)
                    duplicate_of = _other_copy(old, path)
                    if duplicate_of is not None:  # the row keeps showing the first file, never flips between them
                        del values["path"], values["display_name"]
                    if old is None:
                        key = content
                        position = conn.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM images").fetchone()[0]
                        columns = ["key", "content_key", "sop_uid", "position", *values, "registered_at", "updated_at"]
                        params = [key, content, uid, position, *values.values(), now, now]
                        conn.execute(
                            f"INSERT INTO images ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            params,
                        )
                        self._event(conn, "register", key, None, "", "")
                    else:
                        key = old["key"]
                        assignments = ", ".join(f"{column} = ?" for column in values)
                        conn.execute(
                            f"UPDATE images SET {assignments}, updated_at = ? WHERE key = ?",
                            [*values.values(), now, key],
                        )
                        if duplicate_of is not None:
                            self._event(conn, "duplicate", key, None, "", "another file holds the same image")
                        elif old["path"] != path:
                            self._event(conn, "move", key, None, "", "")
                    twins = _uid_twins(conn, uid, key)
                    if twins and old is None:
                        self._event(conn, "uid_collision", key, None, "", f"{twins} other image(s) share the UID")
                    twin_names = _uid_twin_names(conn, uid, key) if twins else []
            except sqlite3.Error as error:
                raise StoreError(f"could not register {display_name}: {_db_reason(error)}") from None
            if old is None:
                log.info("registered image %s", image_ref(key))
            record = self.get_image(key)
        assert record is not None
        notes = []
        if duplicate_of is not None:
            notes.append(
                f"this file holds the same image as {shown_name(path_from_db(duplicate_of).name)} (same pixels and "
                f"SOPInstanceUID), listed once as {record.display_name}; a mask or review of one is the other's")
        if twin_names:
            notes.append(
                f"{shown_name(Path(study.path).name)} has the same "
                f"SOPInstanceUID as {', '.join(twin_names)} but a different picture; they are listed as separate "
                "images (check each came from the right patient)")
        elif record.warning:
            notes.append(record.warning)
        warnings = getattr(study, "warnings", None)
        for note in notes:
            log.warning("image %s: %s", image_ref(key),  # no file names in the log (they may name a patient)
                        "another file holds the same image" if note.startswith("this file") else
                        "other image(s) share its SOPInstanceUID")
            if isinstance(warnings, list) and note not in warnings:
                warnings.append(note)
        return record

    def _claim_legacy(self, conn: sqlite3.Connection, study: Study, content: str, uid: str,
                      path: str | bytes) -> sqlite3.Row | None:
        """The schema-1 record this image was annotated as, now bound to its content; else None.

        DICOM: same UID and size, and the record's file is this one or gone (a record whose file is
        still there under another name was made on that file, which may be a different image with
        the same UID). PNG/JPEG: the old key is the hash of the file's bytes, so the match is exact.
        """
        if conn.execute("SELECT 1 FROM images WHERE content_key IS NULL LIMIT 1").fetchone() is None:
            return None
        if uid:
            rows = conn.execute(
                "SELECT key, path FROM images WHERE content_key IS NULL AND sop_uid = ? AND width = ? AND height = ? "
                "ORDER BY position", (uid, int(study.width), int(study.height)),
            ).fetchall()
            row = next((r for r in rows if r["path"] == path or not path_from_db(r["path"]).is_file()), None)
        else:
            legacy = legacy_file_key(study.path)
            row = None if legacy is None else conn.execute(
                "SELECT key, path FROM images WHERE content_key IS NULL AND key = ?", (legacy,)
            ).fetchone()
        if row is not None:
            conn.execute("UPDATE images SET content_key = ? WHERE key = ?", (content, row["key"]))
            self._event(conn, "claim", row["key"], None, "", "schema-1 record bound to the image's content")
        return row

    def get_image(self, key: str) -> ImageRecord | None:
        with self._lock:
            rows = self._query_images("WHERE i.key = ?", (key,))
        return rows[0] if rows else None

    def list_images(self) -> list[ImageRecord]:
        """All images in display order (registration order)."""
        with self._lock:
            return self._query_images("", ())

    def _query_images(self, where: str, params: tuple) -> list[ImageRecord]:
        sql = f"""
            SELECT i.*, r.status AS review_status, r.note AS review_note, r.reader AS review_reader,
                   r.updated_at AS review_updated_at, m.id AS rev_id, m.source AS rev_source,
                   m.first_model_name, m.first_model_version, m.first_model_precision,
                   (SELECT COUNT(*) FROM images t WHERE i.sop_uid != '' AND t.sop_uid = i.sop_uid
                    AND t.key != i.key) AS uid_twins
            FROM images i
            LEFT JOIN reviews r ON r.image_key = i.key
            LEFT JOIN revisions m ON m.id = (SELECT MAX(id) FROM revisions WHERE image_key = i.key)
            {where}
            ORDER BY i.position
        """
        try:
            rows = self._db().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None
        return [_image_record(row) for row in rows]

    def _image_row(self, conn: sqlite3.Connection, key: str) -> sqlite3.Row:
        row = conn.execute("SELECT key, display_name, width, height FROM images WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StoreError("that image is not in the annotation store; open it again to register it")
        return row

    # -- masks ---------------------------------------------------------------------------------------

    def save_mask(
        self,
        key: str,
        mask: np.ndarray,
        *,
        source: str,
        reader: str | None = None,
        model: ModelInfo | None = None,
        base_version: int | None = None,
    ) -> int:
        """Save a new mask revision; returns its id.

        ``base_version`` (``image_version`` when the reader loaded the image) makes the save
        conditional: StoreConflict, and nothing written, if another reader saved or reviewed since.

        ``source`` is "model" (automatic run), "prompt" (the model prompted by the reader) or "edit"
        (the reader's brush/eraser). ``model`` is required for model/prompt; for an edit it may name
        the model the edited mask came from, which is recorded as the first model if none is yet.
        ``reader`` defaults to ``default_reader_name()``.
        """
        revision = self._save(key, mask, source=source, reader=reader, model=model, only_if_automatic_allowed=False,
                              base_version=base_version)
        assert revision is not None
        return revision

    def save_model_mask_if_unreviewed(
        self, key: str, mask: np.ndarray, model: ModelInfo, reader: str | None = None, quality=None
    ) -> bool:
        """Save an automatic-run mask unless a person already worked on this image; returns whether it saved.

        Refuses (returns False) when the image has a review status other than "unreviewed" or any
        human revision (an edit, or a mask the reader made by prompting the model), so a batch run
        never overwrites reviewed or human-made masks. Check and write are one transaction.
        ``quality`` (``core.review.quality_flags.MaskQuality``) is stored with the revision.
        """
        return self._save(key, mask, source="model", reader=reader, model=model, only_if_automatic_allowed=True,
                          quality=quality) is not None

    def latest_qualities(self, key: str | None = None) -> dict[str, tuple[float, str]]:
        """{image key: (confidence, flags JSON)} of images (or ``key``) whose latest mask has a stored quality."""
        sql = """
            SELECT r.image_key, q.confidence, q.flags FROM revisions r JOIN mask_quality q ON q.revision_id = r.id
            WHERE r.id = (SELECT MAX(id) FROM revisions WHERE image_key = r.image_key)
        """ + ("" if key is None else " AND r.image_key = ?")
        with self._lock:
            try:
                rows = self._db().execute(sql, () if key is None else (key,)).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None
        return {row[0]: (float(row[1]), str(row[2])) for row in rows}

    def _save(
        self,
        key: str,
        mask: np.ndarray,
        *,
        source: str,
        reader: str | None,
        model: ModelInfo | None,
        only_if_automatic_allowed: bool,
        quality=None,
        base_version: int | None = None,
    ) -> int | None:
        if source not in MASK_SOURCES:
            raise StoreError(f"unknown mask source {source!r}; use one of {', '.join(MASK_SOURCES)}")
        if source != "edit" and model is None:
            raise StoreError(f"a {source} mask must name the model that made it")
        reader = (reader or "").strip() or default_reader_name()
        with self._lock:
            conn = self._db()
            try:
                image = self._image_row(conn, key)
            except sqlite3.Error as error:
                raise StoreError(f"could not save the mask: {_db_reason(error)}") from None
            name = image["display_name"]
            try:
                binary = as_binary_mask(mask, (image["height"], image["width"]))
            except ValueError as error:
                raise StoreError(f"could not save mask for {name}: {error}") from None
            final_path: Path | None = None
            try:
                png = encode_mask_png(binary)
                digest = hashlib.sha256(png).hexdigest()
                with _write_transaction(conn):
                    self._check_version(conn, key, base_version, name)
                    if only_if_automatic_allowed and not self._automatic_allowed(conn, key):
                        self._event(conn, "skip_model_mask", key, None, reader, "reviewed or edited")
                        log.info("kept the reviewed/edited mask of image %s; automatic mask not saved", image_ref(key))
                        return None
                    first = self._first_model(conn, key, model)
                    created = _utc_now()
                    stamp = created[:23].replace("-", "").replace(":", "").replace(".", "")
                    relative = f"{MASK_DIR}/{image_ref(key)}-{stamp}-{uuid.uuid4().hex[:12]}.png"
                    final_path = self.root / relative
                    atomic_write_bytes(final_path, png)
                    this_model = model if source != "edit" else None
                    revision_id = self._insert_revision(
                        conn,
                        {
                            "image_key": key,
                            "file": relative,
                            "sha256": digest,
                            "source": source,
                            "model_name": this_model.name if this_model else None,
                            "model_version": this_model.version if this_model else None,
                            "model_precision": this_model.precision if this_model else None,
                            "model_weights_sha256": this_model.weights_sha256 if this_model else None,
                            "first_model_name": first[0],
                            "first_model_version": first[1],
                            "first_model_precision": first[2],
                            "first_model_weights_sha256": first[3],
                            "reader": reader,
                            "created_at": created,
                            "width": int(binary.shape[1]),
                            "height": int(binary.shape[0]),
                            "lung_pixels": int(np.count_nonzero(binary)),
                        },
                    )
                    if quality is not None:
                        conn.execute("INSERT INTO mask_quality (revision_id, confidence, flags) VALUES (?, ?, ?)",
                                     (revision_id, min(1.0, max(0.0, float(quality.confidence))), quality.to_json()))
                    self._event(conn, "mask", key, revision_id, reader, source)
            except BaseException as error:
                if final_path is not None:
                    try:
                        final_path.unlink(missing_ok=True)
                    except OSError:
                        pass  # an unreferenced PNG is harmless; orphan_mask_files() lists it
                if isinstance(error, (OSError, sqlite3.Error, ValueError)):
                    log.warning("saving a mask failed (%s)", type(error).__name__)
                    raise StoreError(_save_failure(name, error)) from None
                raise
        log.info("saved mask revision %d (%s) for image %s", revision_id, source, image_ref(key))
        return revision_id

    def _insert_revision(self, conn: sqlite3.Connection, row: dict[str, Any]) -> int:
        columns = ", ".join(row)
        cursor = conn.execute(f"INSERT INTO revisions ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        return int(cursor.lastrowid)

    @staticmethod
    def _automatic_allowed(conn: sqlite3.Connection, key: str) -> bool:
        review = conn.execute("SELECT status FROM reviews WHERE image_key = ?", (key,)).fetchone()
        if review is not None and review["status"] != "unreviewed":
            return False
        human = conn.execute(
            f"SELECT 1 FROM revisions WHERE image_key = ? AND source IN ({', '.join('?' * len(HUMAN_SOURCES))}) LIMIT 1",
            (key, *HUMAN_SOURCES),
        ).fetchone()
        return human is None

    @staticmethod
    def _first_model(conn: sqlite3.Connection, key: str, model: ModelInfo | None) -> tuple:
        previous = conn.execute(
            "SELECT first_model_name, first_model_version, first_model_precision, first_model_weights_sha256 "
            "FROM revisions WHERE image_key = ? ORDER BY id DESC LIMIT 1",
            (key,),
        ).fetchone()
        if previous is not None and previous["first_model_name"] is not None:
            return tuple(previous)
        if model is not None:
            return (model.name, model.version, model.precision, model.weights_sha256)
        return (None, None, None, None)

    def latest_revision(self, key: str) -> MaskRevision | None:
        with self._lock:
            row = self._read_one(
                "SELECT * FROM revisions WHERE image_key = ? ORDER BY id DESC LIMIT 1", (key,)
            )
        return None if row is None else self._revision(row)

    def revision(self, revision_id: int) -> MaskRevision | None:
        with self._lock:
            row = self._read_one("SELECT * FROM revisions WHERE id = ?", (int(revision_id),))
        return None if row is None else self._revision(row)

    def history(self, key: str) -> list[MaskRevision]:
        """Every revision of the image, oldest first."""
        with self._lock:
            try:
                rows = self._db().execute("SELECT * FROM revisions WHERE image_key = ? ORDER BY id", (key,)).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None
        return [self._revision(row) for row in rows]

    def latest_mask(self, key: str) -> np.ndarray | None:
        """The current mask (uint8 HxW 0/255), or None if the image has none."""
        revision = self.latest_revision(key)
        return None if revision is None else self.load_revision_mask(revision)

    def load_revision_mask(self, revision: MaskRevision | int) -> np.ndarray:
        """The mask of one revision, after checking its file against the recorded sha256."""
        if not isinstance(revision, MaskRevision):
            found = self.revision(int(revision))
            if found is None:
                raise StoreError(f"mask revision {int(revision)} is not in the annotation store")
            revision = found
        try:
            data = revision.file.read_bytes()
            if hashlib.sha256(data).hexdigest() != revision.sha256:
                raise ValueError("its contents do not match the recorded checksum")
            return decode_mask_png(data)
        except (OSError, ValueError) as error:
            raise StoreError(
                f"mask revision {revision.id} ({revision.file.name}) is missing or damaged: {_reason(error)}; "
                "restore the masks folder from a backup"
            ) from None

    def orphan_mask_files(self) -> list[Path]:
        """Mask PNGs that no revision references (left by a save interrupted before its commit)."""
        with self._lock:
            try:
                referenced = {row[0] for row in self._db().execute("SELECT file FROM revisions")}
            except sqlite3.Error as error:
                raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None
        return sorted(p for p in self.mask_dir.glob("*.png") if f"{MASK_DIR}/{p.name}" not in referenced)

    def remove_stale_temp_files(self, max_age_s: float = 60.0) -> int:
        return remove_stale_temp_files(self.mask_dir, max_age_s)

    def _revision(self, row: sqlite3.Row) -> MaskRevision:
        return MaskRevision(
            id=row["id"],
            image_key=row["image_key"],
            file=self.root.joinpath(*row["file"].split("/")),
            sha256=row["sha256"],
            source=row["source"],
            model_name=row["model_name"],
            model_version=row["model_version"],
            model_precision=row["model_precision"],
            model_weights_sha256=row["model_weights_sha256"],
            first_model_name=row["first_model_name"],
            first_model_version=row["first_model_version"],
            first_model_precision=row["first_model_precision"],
            first_model_weights_sha256=row["first_model_weights_sha256"],
            reader=row["reader"],
            created_at=row["created_at"],
            width=row["width"],
            height=row["height"],
            lung_pixels=row["lung_pixels"],
            model_label=model_label(row["model_name"], row["model_version"], row["model_precision"]),
            first_model_label=model_label(
                row["first_model_name"], row["first_model_version"], row["first_model_precision"]
            ),
        )

    # -- reviews -------------------------------------------------------------------------------------

    def set_review(self, key: str, status: str, note: str = "", reader: str | None = None,
                   base_version: int | None = None) -> None:
        """Record the reader's verdict: unreviewed, accepted, corrected or rejected.

        ``base_version``: as for ``save_mask``; a verdict on a mask the reader never saw is a conflict.
        """
        if status not in REVIEW_STATUSES:
            raise StoreError(f"unknown review status {status!r}; use one of {', '.join(REVIEW_STATUSES)}")
        reader = (reader or "").strip() or default_reader_name()
        with self._lock:
            conn = self._db()
            try:
                with _write_transaction(conn):
                    image = self._image_row(conn, key)
                    self._check_version(conn, key, base_version, image["display_name"])
                    conn.execute(
                        "INSERT INTO reviews (image_key, status, note, reader, updated_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(image_key) DO UPDATE SET status = excluded.status, note = excluded.note, "
                        "reader = excluded.reader, updated_at = excluded.updated_at",
                        (key, status, str(note or ""), reader, _utc_now()),
                    )
                    self._event(conn, "review", key, None, reader, status)
            except sqlite3.Error as error:
                raise StoreError(f"could not save the review: {_db_reason(error)}; try again") from None
        log.info("review of image %s set to %s", image_ref(key), status)

    def next_unreviewed(self, after_key: str | None, backwards: bool = False) -> str | None:
        """The next (or previous) image in display order whose status is "unreviewed", or None.

        ``after_key`` None (or unknown) starts from the beginning (the end when ``backwards``);
        the search does not wrap around.
        """
        with self._lock:
            conn = self._db()
            try:
                position = None
                if after_key is not None:
                    row = conn.execute("SELECT position FROM images WHERE key = ?", (after_key,)).fetchone()
                    position = None if row is None else row[0]
                compare, order = ("<", "DESC") if backwards else (">", "ASC")
                where = "" if position is None else f"AND i.position {compare} ?"
                row = conn.execute(
                    "SELECT i.key FROM images i LEFT JOIN reviews r ON r.image_key = i.key "
                    f"WHERE COALESCE(r.status, 'unreviewed') = 'unreviewed' {where} "
                    f"ORDER BY i.position {order} LIMIT 1",
                    () if position is None else (position,),
                ).fetchone()
            except sqlite3.Error as error:
                raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None
        return None if row is None else row[0]

    # -- audit and maintenance -------------------------------------------------------------------------

    def events(self, key: str | None = None, limit: int = 1000) -> list[AuditEvent]:
        """The audit log (newest first), for one image or all."""
        with self._lock:
            try:
                if key is None:
                    rows = self._db().execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall()
                else:
                    rows = self._db().execute(
                        "SELECT * FROM events WHERE image_key = ? ORDER BY id DESC LIMIT ?", (key, int(limit))
                    ).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None
        return [AuditEvent(**dict(row)) for row in rows]

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" when the database is sound."""
        with self._lock:
            try:
                rows = self._db().execute("PRAGMA integrity_check").fetchall()
            except sqlite3.Error as error:
                return f"integrity check failed: {_db_reason(error)}"
        return "; ".join(str(row[0]) for row in rows)

    def _event(
        self, conn: sqlite3.Connection, kind: str, key: str | None, revision_id: int | None, reader: str, detail: str
    ) -> None:
        cursor = conn.execute(
            "INSERT INTO events (at, kind, image_key, revision_id, reader, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (_utc_now(), kind, key, revision_id, reader, detail),
        )
        if key is not None and kind in _VERSION_EVENTS:
            self._own_versions[key] = int(cursor.lastrowid)

    # -- optimistic concurrency (two readers on one store) ---------------------------------------

    def image_version(self, key: str) -> int:
        """The image's version: the id of its last mask or review event (0 for none). A reader keeps
        the version it loaded and passes it as ``base_version`` when it saves or reviews."""
        with self._lock:
            row = self._read_one(_VERSION_SQL, (key,))
        return int(row[0] or 0) if row is not None else 0

    def own_version(self, key: str) -> int | None:
        """The version this store object's last own write to ``key`` produced (None if it wrote none):
        the base of the writer's next change, read without a second query that another writer could race."""
        return self._own_versions.get(key)

    def _check_version(self, conn: sqlite3.Connection, key: str, base: int | None, name: str) -> None:
        if base is None:
            return
        row = conn.execute(_VERSION_SQL, (key,)).fetchone()
        current = int(row[0] or 0) if row is not None else 0
        if current != int(base) and current != self._own_versions.get(key):  # our own later write is no conflict
            last = conn.execute("SELECT kind, reader, detail FROM events WHERE id = ?", (current,)).fetchone()
            what = "mask" if last is None or last["kind"] == "mask" else f"review: {last['detail']}"
            log.info("conflict on image %s: built on version %d, now %d", image_ref(key), int(base), current)
            raise StoreConflict(name, int(base), current, last["reader"] if last is not None else "", what)

    def _read_one(self, sql: str, params: tuple) -> sqlite3.Row | None:
        try:
            return self._db().execute(sql, params).fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"could not read the annotation database: {_db_reason(error)}") from None


# --------------------------------------------------------------------------------------------------
# helpers


class _write_transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception (including a failed commit)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except BaseException:
                _rollback(self.conn)
                raise
        _rollback(self.conn)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _image_record(row: sqlite3.Row) -> ImageRecord:
    spacing = None
    if row["spacing_row_mm"] is not None and row["spacing_col_mm"] is not None:
        spacing = (float(row["spacing_row_mm"]), float(row["spacing_col_mm"]))
    return ImageRecord(
        key=row["key"],
        path=path_from_db(row["path"]),
        display_name=row["display_name"],
        kind=row["kind"],
        status=row["review_status"] or "unreviewed",
        note=row["review_note"] or "",
        reader=row["review_reader"] or "",
        updated_at=row["review_updated_at"] or "",
        width=row["width"],
        height=row["height"],
        spacing=spacing,
        patient_id=row["patient_id"],
        patient_name=row["patient_name"],
        study_uid=row["study_uid"],
        study_description=row["study_description"],
        series_uid=row["series_uid"],
        series_description=row["series_description"],
        has_mask=row["rev_id"] is not None,
        first_model_label=model_label(row["first_model_name"], row["first_model_version"], row["first_model_precision"]),
        position=row["position"],
        spacing_source=row["spacing_source"],
        latest_revision_id=row["rev_id"],
        latest_source=row["rev_source"] or "",
        uid_twins=int(row["uid_twins"] or 0),
        content_key=row["content_key"],
    )


def _uid_twin_names(conn: sqlite3.Connection, uid: str, key: str, limit: int = 3) -> list[str]:
    """The file names of other images with this UID (for a warning that says which file is which)."""
    rows = conn.execute("SELECT display_name FROM images WHERE sop_uid = ? AND key != ? ORDER BY position LIMIT ?",
                        (uid, key, limit)).fetchall()
    return [shown_name(str(row["display_name"])) for row in rows]


def _claim_uninverted(conn: sqlite3.Connection, content: str, path: str | bytes) -> sqlite3.Row | None:
    """A MONOCHROME1 image's record made before its key said "inverted", if it is this same file."""
    if not content.endswith(INVERTED_SUFFIX):
        return None
    plain = content[: -len(INVERTED_SUFFIX)]
    row = conn.execute("SELECT key, path FROM images WHERE content_key = ? AND path = ?", (plain, path)).fetchone()
    if row is not None:
        conn.execute("UPDATE images SET content_key = ? WHERE key = ?", (content, row["key"]))
    return row


def _other_copy(old: sqlite3.Row | None, path: str | bytes) -> str | bytes | None:
    """The record's file when ``path`` is a second copy of it (both files exist), not a move."""
    if old is None or old["path"] == path:
        return None
    try:
        return old["path"] if path_from_db(old["path"]).is_file() else None
    except OSError:
        return None


def _uid_twins(conn: sqlite3.Connection, uid: str, key: str) -> int:
    if not uid:
        return 0
    return int(conn.execute("SELECT COUNT(*) FROM images WHERE sop_uid = ? AND key != ?", (uid, key)).fetchone()[0])


_FULL = "No space left on device"


def _db_reason(error: sqlite3.Error) -> str:
    text = one_line(error)
    lowered = text.lower()
    if "full" in lowered:
        return _FULL
    if "locked" in lowered or "busy" in lowered:
        return "the annotation database is busy in another program"
    if "readonly" in lowered or "read-only" in lowered:
        return "the annotation folder is read-only"
    return text or type(error).__name__


def _save_failure(name: str, error: BaseException) -> str:
    if isinstance(error, OSError):
        reason = _reason(error)
        advice = write_advice(error, "free disk space and save again",
                              "make the annotation folder writable and save again", "check the disk and save again")
    elif isinstance(error, sqlite3.Error):
        reason = _db_reason(error)
        if reason == _FULL:
            advice = "free disk space and save again"
        elif "busy" in reason:
            advice = "close other programs using the annotations and save again"
        else:
            advice = "save again; if it keeps failing, run an integrity check"
    else:
        reason, advice = _reason(error), "save again"
    return one_line(f"could not save mask for {name}: {reason}; {advice}")
