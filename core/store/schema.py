"""The annotation database schema and its migrations.

The schema version lives in SQLite's ``user_version``. ``MIGRATIONS[n]`` takes a database from
version ``n - 1`` to ``n``; each runs in its own ``BEGIN IMMEDIATE`` transaction together with the
``user_version`` bump, so a crash mid-migration leaves the previous version intact, and two processes
opening a new store at once migrate it once. To change the schema, append a migration; never edit one
that has shipped.
"""

from __future__ import annotations

import sqlite3

from .errors import StoreError

REVIEW_STATUSES = ("unreviewed", "accepted", "corrected", "rejected")
MASK_SOURCES = ("model", "edit", "prompt")

_V1 = [
    """
    CREATE TABLE images (
        key TEXT PRIMARY KEY,
        position INTEGER NOT NULL UNIQUE,          -- display order = registration order
        path TEXT NOT NULL,
        display_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        patient_id TEXT NOT NULL DEFAULT '',
        patient_name TEXT NOT NULL DEFAULT '',
        study_uid TEXT NOT NULL DEFAULT '',
        study_description TEXT NOT NULL DEFAULT '',
        series_uid TEXT NOT NULL DEFAULT '',
        series_description TEXT NOT NULL DEFAULT '',
        width INTEGER NOT NULL CHECK (width > 0),
        height INTEGER NOT NULL CHECK (height > 0),
        spacing_row_mm REAL,
        spacing_col_mm REAL,
        spacing_source TEXT NOT NULL DEFAULT 'none',
        registered_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE revisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        image_key TEXT NOT NULL REFERENCES images(key),
        file TEXT NOT NULL UNIQUE,                 -- relative to the store root, '/' separators
        sha256 TEXT NOT NULL,                      -- of the PNG file's bytes
        source TEXT NOT NULL CHECK (source IN ('model', 'edit', 'prompt')),
        model_name TEXT,                           -- model of this revision (model/prompt only)
        model_version TEXT,
        model_precision TEXT,
        model_weights_sha256 TEXT,
        first_model_name TEXT,                     -- model behind the first mask, carried forward
        first_model_version TEXT,
        first_model_precision TEXT,
        first_model_weights_sha256 TEXT,
        reader TEXT NOT NULL,
        created_at TEXT NOT NULL,                  -- UTC ISO 8601
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        lung_pixels INTEGER NOT NULL,
        CHECK (source = 'edit' OR model_name IS NOT NULL)
    )
    """,
    "CREATE INDEX revisions_by_image ON revisions(image_key, id)",
    """
    CREATE TABLE reviews (
        image_key TEXT PRIMARY KEY REFERENCES images(key),
        status TEXT NOT NULL CHECK (status IN ('unreviewed', 'accepted', 'corrected', 'rejected')),
        note TEXT NOT NULL DEFAULT '',
        reader TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,                        -- register, move, mask, review, skip_model_mask
        image_key TEXT REFERENCES images(key),
        revision_id INTEGER REFERENCES revisions(id),
        reader TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX events_by_image ON events(image_key, id)",
]

# Version 2: images are identified by content. ``content_key`` is the pixel hash plus the
# SOPInstanceUID (``image_key.content_key``); two different images that share a UID no longer share a
# record. Rows written by version 1 keep their key (masks, reviews and events point to it) and get
# ``content_key`` NULL until a matching image is opened and claims the row (``image_key``).
_V2 = [
    "ALTER TABLE images ADD COLUMN content_key TEXT",
    "ALTER TABLE images ADD COLUMN sop_uid TEXT NOT NULL DEFAULT ''",
    "UPDATE images SET sop_uid = key WHERE kind = 'dicom' AND key NOT LIKE 'sha256:%'",
    "CREATE UNIQUE INDEX images_by_content ON images(content_key) WHERE content_key IS NOT NULL",
    "CREATE INDEX images_by_uid ON images(sop_uid) WHERE sop_uid != ''",
]

# Version 3: the confidence and quality flags of an automatic mask, stored with the revision they
# describe (``core.review.quality_flags``), so a second launch sorts the worklist without the model.
_V3 = [
    """
    CREATE TABLE mask_quality (
        revision_id INTEGER PRIMARY KEY REFERENCES revisions(id),
        confidence REAL NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
        flags TEXT NOT NULL DEFAULT '[]'            -- JSON list of {code, reason}
    )
    """,
]

MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2, 3: _V3}
SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, where: str = "the annotation database") -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns the version it was at.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Refuses a database written by a
    newer version of the program rather than guessing at its layout.
    """
    start = schema_version(conn)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{where} was written by a newer version of this program (schema {version}, this one "
                    f"knows {SCHEMA_VERSION}); update the program to open it"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return start
            for statement in MIGRATIONS[version + 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
