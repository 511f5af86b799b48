"""Crash safety beyond tests/test_store_crash.py: every kind of store write, and model directories.

- The annotation store: a writer process registers images, saves masks (edits and automatic masks)
  and records reviews, and is SIGKILLed at random moments, from before the store is opened to the
  middle of a commit. After every kill the database passes ``PRAGMA integrity_check`` and every
  operation the writer had reported as done is still there, exactly.
- Model directories (``write_model_dir``): a writer replacing a model again and again is killed at
  random moments, and once exactly between its two renames; the directory always holds a complete,
  sha256-verified model, the last reported one or a newer one.
- Disk full while saving a model: the previous model is intact and loadable, no staging folder is
  left, and ``adaqat train`` tells the user in one line.

The long versions (hundreds of kills) are in ``benchmarks/bench_reliability.py``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from core.models import sam_vit
from core.models.artifact import write_model_dir
from core.models.loading import load_model
from core.store import AnnotationStore

REPO = Path(__file__).resolve().parents[1]
MASK_SHAPE = (96, 128)


def child_env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


class Zygote:
    """A process that imports once and forks one writer per round, so a round costs milliseconds,
    not the seconds of a fresh interpreter importing torch. The writer is a real process: SIGKILL
    hits it with its SQLite connection, file handles and half-done work exactly as it would the
    viewer. ``body`` is Python source defining ``run(args, out)``; ``out`` is a line-buffered file
    the writer reports to, one line per operation *after* it returned (a line cut by the kill has no
    newline and is not counted)."""

    SOURCE = textwrap.dedent(
        """
        import os, sys
        {body}
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        for command in sys.stdin:
            report, *args = command.split()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    with open(report, "w", buffering=1) as out:
                        run(args, out)
                finally:
                    os._exit(0)
            sys.stdout.write(f"pid {{pid}}\\n"); sys.stdout.flush()
            _, status = os.waitpid(pid, 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            sys.stdout.write(f"exit {{code}}\\n"); sys.stdout.flush()
        """
    )

    def __init__(self, body: str, work: Path) -> None:
        self.work = work
        self.stderr = (work / "zygote.err").open("wb")
        self.process = subprocess.Popen([sys.executable, "-c", self.SOURCE.format(body=textwrap.dedent(body))],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        env=child_env(), cwd=str(REPO), text=True, bufsize=1)
        assert self.process.stdout.readline() == "ready\n", self._errors()
        self.rounds = 0

    def _errors(self) -> str:
        self.stderr.flush()
        return (self.work / "zygote.err").read_text(errors="replace")[-3000:]

    def round(self, args: list[str], kill_after: float | None) -> tuple[list[str], int]:
        """Fork a writer, SIGKILL it after ``kill_after`` s (None: wait for it to end), return its report."""
        self.rounds += 1
        report = self.work / f"round{self.rounds}.txt"
        self.process.stdin.write(" ".join([str(report), *args]) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line.startswith("pid "), line + self._errors()
        if kill_after is not None:
            time.sleep(kill_after)
            try:
                os.kill(int(line.split()[1]), 9)
            except ProcessLookupError:  # it already ended (an error: the status below says so)
                pass
        status = self.process.stdout.readline()
        assert status.startswith("exit "), status + self._errors()
        text = report.read_text(encoding="utf-8") if report.exists() else ""
        report.unlink(missing_ok=True)
        return text.split("\n")[:-1], int(status.split()[1])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.stderr.close()


# --- the annotation store under SIGKILL ---------------------------------------------------------

STORE_WRITER = """
    import hashlib, random, uuid
    from pathlib import Path
    import numpy as np
    from core.io.study import Study, StudyIdentifiers
    from core.models.artifact import ModelInfo
    from core.store.annotation_store import AnnotationStore

    def run(args, out):
        root, seed = args[0], int(args[1])
        shape = (96, 128)
        rng, pick = np.random.default_rng(seed), random.Random(seed)
        model = ModelInfo("crash-model", "1", "lite_medsam", "int8", "ab" * 32)
        store = AnnotationStore(root)  # killed from the start: opening (and its recovery) included
        keys = [record.key for record in store.list_images()]
        sequence = seed * 1_000_000
        while True:
            sequence += 1
            roll = pick.random()
            if not keys or roll < 0.15:
                uid = "2.25." + str(uuid.uuid4().int)
                study = Study(path=Path(root) / (uid + ".dcm"), pixels=np.zeros(shape, np.float32), kind="dicom",
                              identifiers=StudyIdentifiers(sop_instance_uid=uid))
                keys.append(store.register_image(study).key)
                out.write("image " + keys[-1] + "\\n")
            elif roll < 0.75:
                key = pick.choice(keys)
                mask = (rng.random((12, 16)) > 0.5).repeat(8, 0).repeat(8, 1).astype(np.uint8) * 255
                digest = hashlib.sha256(mask.tobytes()).hexdigest()
                if roll < 0.65:
                    revision = store.save_mask(key, mask, source="edit", reader="crash-test")
                elif store.save_model_mask_if_unreviewed(key, mask, model, "crash-test"):
                    revision = store.latest_revision(key).id  # one writer: the revision just committed
                else:
                    revision = None  # a person already worked on this image: correctly not saved
                if revision is not None:
                    out.write(f"mask {revision} {key} {digest}\\n")
            else:
                key = pick.choice(keys)
                status = pick.choice(["accepted", "corrected", "rejected", "unreviewed"])
                store.set_review(key, status, note=f"{sequence}:{status}", reader="crash-test")
                out.write(f"review {key} {sequence} {status}\\n")
"""


@dataclass
class StoreCrashReport:
    rounds: int = 0
    kills_before_open: int = 0  # the writer had not yet reported anything in that round
    images: set = field(default_factory=set)
    masks: dict = field(default_factory=dict)  # revision -> (key, sha256 of the mask)
    reviews: dict = field(default_factory=dict)  # key -> (sequence, status) last reported
    operations: int = 0
    orphan_files_max: int = 0
    check_seconds: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "rounds": self.rounds,
            "reported_operations": self.operations,
            "images": len(self.images),
            "mask_revisions": len(self.masks),
            "reviewed_images": len(self.reviews),
            "kills_before_first_commit": self.kills_before_open,
            "integrity_failures": 0,
            "lost_commits": 0,
            "orphan_mask_files_max": self.orphan_files_max,
        }


def verify_store(root: Path, report: StoreCrashReport) -> None:
    """Integrity check, and every reported operation present, exactly."""
    started = time.perf_counter()
    with AnnotationStore(root) as store:  # opening also runs any recovery the store does
        assert store.integrity_check() == "ok"
        registered = {record.key: record for record in store.list_images()}
        assert report.images <= set(registered), report.images - set(registered)
        for revision_id, (key, digest) in report.masks.items():
            revision = store.revision(revision_id)
            assert revision is not None and revision.image_key == key, revision_id
            mask = store.load_revision_mask(revision)  # checks the file against the sha256 in the DB
            assert hashlib.sha256(np.ascontiguousarray(mask).tobytes()).hexdigest() == digest, revision_id
        for key, (sequence, status) in report.reviews.items():
            record = registered[key]
            stored_sequence, stored_status = record.note.split(":")
            assert int(stored_sequence) >= sequence, (key, record.note, sequence)  # never an older review
            assert record.status == stored_status, (key, record.status, record.note)
        for key in registered:  # nothing half-written is registered: every revision reads back
            for revision in store.history(key):
                assert store.load_revision_mask(revision).shape == MASK_SHAPE
        report.orphan_files_max = max(report.orphan_files_max, len(store.orphan_mask_files()))
    report.check_seconds.append(time.perf_counter() - started)


def fold_store_report(lines: list[str], report: StoreCrashReport) -> None:
    report.rounds += 1
    report.operations += len(lines)
    report.kills_before_open += not lines
    for line in lines:
        kind, *rest = line.split()
        if kind == "image":
            report.images.add(rest[0])
        elif kind == "mask":
            report.masks[int(rest[0])] = (rest[1], rest[2])
            report.images.add(rest[1])
        else:
            report.reviews[rest[0]] = (int(rest[1]), rest[2])


def run_store_crash_rounds(work: Path, rounds: int, seed: int = 0, max_delay: float = 0.3,
                           progress=None) -> StoreCrashReport:
    """``rounds`` writers on one store, each SIGKILLed after a random delay, the store checked after each."""
    root = work / "store"
    rng = random.Random(seed)
    report = StoreCrashReport()
    zygote = Zygote(STORE_WRITER, work)
    try:
        for _ in range(rounds):
            lines, code = zygote.round([str(root), str(seed * 100_000 + report.rounds + 1)], rng.uniform(0.0, max_delay))
            assert code == -9, f"the writer ended on its own (status {code}): {zygote._errors()}"
            fold_store_report(lines, report)
            verify_store(root, report)
            if progress is not None:
                progress(report)
    finally:
        zygote.close()
    return report


STORE_ROUNDS = 30


def test_store_writer_killed_at_random_moments_keeps_every_commit(tmp_path):
    started = time.monotonic()
    report = run_store_crash_rounds(tmp_path, STORE_ROUNDS, seed=int(os.environ.get("ADAQAT_CRASH_SEED", "7")))
    assert report.rounds == STORE_ROUNDS
    assert report.operations >= 2 * STORE_ROUNDS, report.to_json()  # the writer got real work done
    assert report.masks and report.reviews and len(report.images) >= 2, report.to_json()
    assert time.monotonic() - started < 60
    assert report.kills_before_open < STORE_ROUNDS // 2, report.to_json()  # most kills land mid-work


# --- model directories under SIGKILL ------------------------------------------------------------

TINY_CARD = {"name": "tiny", "backbone": "sam_vit_b", "precision": "fp32",
             "backbone_config": sam_vit.TINY_TEST_CONFIG.to_json()}

MODEL_WRITER = """
    import os, pathlib, signal
    from core.models import sam_vit
    from core.models.artifact import write_model_dir

    CARD = {"name": "tiny", "backbone": "sam_vit_b", "precision": "fp32",
            "backbone_config": sam_vit.TINY_TEST_CONFIG.to_json()}
    STATE = sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict()

    def run(args, out):
        target, version, mode = args[0], int(args[1]), args[2]
        if mode == "between-renames":  # die exactly after the old model was moved aside
            original = pathlib.Path.rename
            def rename(self, new):
                result = original(self, new)
                if self.name == pathlib.Path(target).name and str(new).endswith(".replaced"):
                    os.kill(os.getpid(), signal.SIGKILL)
                return result
            pathlib.Path.rename = rename
        while True:
            version += 1
            write_model_dir(target, dict(CARD, version=str(version)), STATE)
            out.write(f"{version}\\n")
"""


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def model_writer_round(zygote: Zygote, out: Path, start_version: int, delay: float | None,
                       mode: str = "random") -> list[int]:
    """Fork a model writer, kill it after ``delay`` s (None: it kills itself), return the versions it reported."""
    lines, code = zygote.round([str(out), str(start_version), mode], delay)
    assert code == -9, f"the writer ended on its own (status {code}): {zygote._errors()}"
    return [int(line) for line in lines]


def check_model_dir(out: Path, at_least: int) -> int:
    """The directory holds a complete model whose weights match its card; returns its version."""
    loaded = load_model(str(out))  # verifies the sha256 of the weights against model.json
    version = int(loaded.info.version)
    assert version >= at_least, (version, at_least)
    return version


def run_model_crash_rounds(work: Path, rounds: int, seed: int = 3, max_delay: float = 0.5) -> dict:
    out = work / "models" / "model-fp32"
    write_model_dir(out, dict(TINY_CARD, version="1"), sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict())
    rng = random.Random(seed)
    last, reported_total = 1, 0
    zygote = Zygote(MODEL_WRITER, work)
    try:
        for _ in range(rounds):
            reported = model_writer_round(zygote, out, last * 1000, rng.uniform(0.0, max_delay))
            reported_total += len(reported)
            last = check_model_dir(out, max([last, *reported]))
    finally:
        zygote.close()
    leftovers = [p.name for p in out.parent.iterdir() if p.name != out.name]
    return {"rounds": rounds, "models_written_and_reported": reported_total, "lost_or_unloadable": 0,
            "leftover_staging_or_backup_dirs": len(leftovers)}


def test_model_dir_survives_sigkill_at_random_moments(tmp_path):
    figures = run_model_crash_rounds(tmp_path, 12)
    assert figures["models_written_and_reported"] >= 5, figures


def test_model_dir_killed_between_its_two_renames_keeps_the_old_model(tmp_path):
    """The one instant where neither the old nor the new folder is at the model's path."""
    out = tmp_path / "models" / "model-fp32"
    write_model_dir(out, dict(TINY_CARD, version="5"), sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict())
    zygote = Zygote(MODEL_WRITER, tmp_path)
    try:
        assert model_writer_round(zygote, out, 5, None, mode="between-renames") == []
        assert not out.exists() and (out.parent / "model-fp32.replaced" / "model.json").is_file()  # the crash state
        assert check_model_dir(out, 5) == 5  # loading puts the previous model back
        assert sorted(p.name for p in out.parent.iterdir() if not p.name.startswith(".")) == ["model-fp32"]

        # the same crash again, then the next training run writes a model: nothing lost or left behind
        assert model_writer_round(zygote, out, 5, None, mode="between-renames") == []
    finally:
        zygote.close()
    staging = [p for p in out.parent.iterdir() if p.name.startswith(".model-fp32.")]
    assert staging  # the killed writer's complete new folder, never loaded
    old = time.time() - 2 * 3600
    for path in staging:
        os.utime(path, (old, old))
    write_model_dir(out, dict(TINY_CARD, version="9"), sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict())
    assert check_model_dir(out, 9) == 9
    assert sorted(p.name for p in out.parent.iterdir()) == ["model-fp32"]  # stale staging folders cleaned


# --- disk full while saving a model ------------------------------------------------------------


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_written_save_file(tensors, filename, *args, **kwargs):
    """What safetensors really does when the disk fills half-way through the weights (checked on a
    1 MB tmpfs): a partial file and a SafetensorError, which is not an OSError."""
    from safetensors import SafetensorError

    Path(filename).write_bytes(b"\0" * 1000)
    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


@pytest.mark.parametrize("where", ["weights", "fsync"])
def test_disk_full_while_saving_a_model_keeps_the_previous_one(tmp_path, monkeypatch, where):
    import core.models.artifact as artifact

    state = sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict()
    out = write_model_dir(tmp_path / "model-fp32", dict(TINY_CARD, version="1"), state)
    before = tree_digest(out)
    if where == "weights":
        monkeypatch.setattr("safetensors.torch.save_file", _half_written_save_file)  # imported where it is used
    else:
        monkeypatch.setattr(artifact.os, "fsync", _enospc)
    with pytest.raises(OSError) as info:
        write_model_dir(out, dict(TINY_CARD, version="2"), state)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and info.value.strerror == "No space left on device"
    if where == "weights":
        assert info.value.filename == str(out / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-fp32"]  # no staging or backup folder
    assert tree_digest(out) == before
    assert load_model(str(out)).info.version == "1"


def test_train_command_reports_disk_full_in_one_line(tmp_path, monkeypatch, capsys):
    """``adaqat train`` runs a real (tiny) stage 1; the disk fills while the model is saved."""
    from core.cli import main
    from tests.shared_data import shared_file

    manifest = shared_file("cxr-lungs", "manifest.csv")
    out = tmp_path / "run"
    previous = write_model_dir(out / "model-fp32", dict(TINY_CARD, version="1"),
                               sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict())
    before = tree_digest(previous)
    monkeypatch.setattr("safetensors.torch.save_file", _half_written_save_file)  # imported where it is used
    code = main(["train", "--data", str(manifest), "--out", str(out), "--from", "lite_medsam", "--stages", "1", "--epochs", "1",
                 "--batch-size", "2", "--max-train-images", "2", "--max-val-images", "1", "--no-augment",
                 "--threads", "2"])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2, captured.err[-2000:]
    assert len(errors) == 1 and "Traceback" not in captured.err
    assert "No space left on device" in errors[0] and "free disk space and run again with --resume" in errors[0]
    assert errors[0] == (f"error: {out / 'model-fp32' / 'model.safetensors'}: could not write (No space left on "
                         "device); free disk space and run again with --resume")
    monkeypatch.undo()
    assert tree_digest(previous) == before and load_model(str(previous)).info.version == "1"
    assert not [p for p in out.iterdir() if p.name.startswith(".model-fp32")]


def test_viewer_tells_the_user_when_the_disk_is_full_and_saves_on_retry(qtbot, make_window, monkeypatch):
    """The store refuses the save (nothing registered); the viewer says so, keeps the edit, and Ctrl+S
    saves it once there is space again."""
    from tests.shared_data import shared_file

    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[2]
    window = make_window()
    window.open_paths([image])
    qtbot.waitUntil(lambda: window.document.mask is not None and window.document.path == image, timeout=60_000)
    document, store = window.document, window.store
    before = store.latest_revision(document.key)
    edited = document.mask.copy()
    edited[:40, :40] = 255 - edited[:40, :40]

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("core.store.annotation_store.atomic_write_bytes", disk_full)
    assert document.edit(edited, "test stroke")
    assert window.status.currentMessage() == (
        f"Not saved: could not save mask for {image.name}: No space left on device; free disk space and save again")
    assert document.dirty and np.array_equal(document.mask, edited)  # the work is kept on screen
    assert store.latest_revision(document.key).id == before.id  # and nothing was registered
    assert store.integrity_check() == "ok" and not store.orphan_mask_files()

    monkeypatch.undo()  # space again
    window.save_now()
    assert window.status.currentMessage() == "All changes are saved" and not document.dirty
    np.testing.assert_array_equal(store.latest_mask(document.key), edited)
