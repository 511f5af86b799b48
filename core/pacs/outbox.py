"""Results waiting for the PACS: a queue on disk that survives a restart, sent in order, retried.

Layout under ``folder``::

    outbox.sqlite      one row per study's results (files, study, attempts, last error), WAL
    files/<id>-*.dcm   the SEG and SR of each row, written atomically before the row commits

A result is removed (row, then files) only after the PACS confirmed every file of it, so a crash, a
PACS that is down or a store failing halfway leaves it queued; sending the same SOP instance twice
is harmless (the PACS replaces it). ``flush`` stops at the first failure: when the PACS is down the
rest would fail the same way, and order is kept. ``OutboxRetrier`` flushes on a timer with backoff.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .config import PacsConfig
from .errors import PacsError
from .send import send_files

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_uid TEXT NOT NULL,
    label TEXT NOT NULL,
    files TEXT NOT NULL,
    created TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True)
class OutboxItem:
    id: int
    study_uid: str
    label: str
    files: tuple[Path, ...]
    attempts: int
    last_error: str


@dataclass
class FlushReport:
    sent: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.sent} result(s) sent"
        if self.waiting:
            text += f", {self.waiting} waiting in the outbox"
        return text + (f": {self.errors[0]}" if self.errors else "")


class Outbox:
    """The persistent queue. Thread-safe (one connection behind a lock); several processes may share it."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.files_dir = self.folder / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.folder / "outbox.sqlite", timeout=5.0, check_same_thread=False,
                                     isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def new_file(self, suffix: str) -> Path:
        """A fresh path inside the outbox for a result file about to be written (then ``add`` it)."""
        return self.files_dir / f"{uuid.uuid4().hex}{suffix}"

    def add(self, study_uid: str, label: str, files: Sequence[Path]) -> int:
        """Queue ``files`` (already written inside ``files_dir``) for one study; returns the item id."""
        paths = [Path(f).resolve() for f in files]
        for path in paths:
            if path.parent != self.files_dir.resolve() or not path.is_file():
                raise ValueError(f"{path.name}: outbox files must be written with Outbox.new_file first")
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO outbox (study_uid, label, files, created) VALUES (?, ?, ?, ?)",
                (study_uid, label, json.dumps([p.name for p in paths]), datetime.now(timezone.utc).isoformat()),
            )
            return int(cursor.lastrowid)

    def pending(self) -> list[OutboxItem]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, study_uid, label, files, attempts, last_error FROM outbox ORDER BY id"
            ).fetchall()
        return [
            OutboxItem(row[0], row[1], row[2], tuple(self.files_dir / name for name in json.loads(row[3])), row[4], row[5])
            for row in rows
        ]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def flush(self, config: PacsConfig, sender: Callable[[PacsConfig, Sequence[Path], str], None] = send_files) -> FlushReport:
        """Send what waits, oldest first; stops at the first failure, which is recorded on its item."""
        report = FlushReport()
        items = self.pending()
        for index, item in enumerate(items):
            try:
                sender(config, item.files, item.label)
            except PacsError as error:
                self._failed(item, str(error))
                report.errors.append(str(error))
                report.waiting = len(items) - index
                break
            self._sent(item)
            report.sent += 1
        return report

    def _failed(self, item: OutboxItem, message: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (message, item.id))

    def _sent(self, item: OutboxItem) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
        for path in item.files:
            path.unlink(missing_ok=True)


class OutboxRetrier:
    """Flushes the outbox in a background thread: at once when poked, else every ``interval_s``,
    doubling the wait after each failure up to ``max_interval_s``. ``on_report`` hears each attempt."""

    def __init__(self, outbox: Outbox, config: Callable[[], PacsConfig], *, interval_s: float = 30.0,
                 max_interval_s: float = 600.0, on_report: Callable[[FlushReport], None] | None = None) -> None:
        self.outbox = outbox
        self.config = config
        self.interval_s = interval_s
        self.max_interval_s = max_interval_s
        self.on_report = on_report
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adaqat-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Try now (a result was queued, or the user asked)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        wait = self.interval_s
        while not self._stop.is_set():
            if len(self.outbox):
                report = self.outbox.flush(self.config())
                wait = min(wait * 2, self.max_interval_s) if report.errors else self.interval_s
                if self.on_report is not None:
                    self.on_report(report)
            self._wake.wait(wait)
            self._wake.clear()
