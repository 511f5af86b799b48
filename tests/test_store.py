"""The annotation store against a real SQLite file: persistence, WAL, history, review rules, atomicity."""

from __future__ import annotations

import errno
import hashlib
import shutil
import sqlite3
import threading

import numpy as np
import pytest

import core.store.atomic as atomic
from core.store import (
    SCHEMA_VERSION,
    AnnotationStore,
    StoreError,
    default_reader_name,
    image_key_for,
)
from core.store.annotation_store import DB_FILE
from tests.test_store_helpers import (
    JPEG2000,
    JPEG_BASELINE,
    MODEL,
    MODEL_INT8,
    box_mask,
    dicom_path,
    study_from_dicom,
    study_from_png,
)


def mask_files(store: AnnotationStore) -> list[str]:
    return sorted(p.name for p in store.mask_dir.iterdir())


def revision_count(store: AnnotationStore) -> int:
    return store._conn.execute("SELECT COUNT(*) FROM revisions").fetchone()[0]


@pytest.fixture
def store(tmp_path):
    with AnnotationStore(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def png_study(tmp_path):
    return study_from_png(tmp_path / "plain.png")


def test_register_save_reopen_persists(tmp_path):
    dicom = study_from_dicom(dicom_path(JPEG_BASELINE))
    png = study_from_png(tmp_path / "chest.png")
    root = tmp_path / "store"
    with AnnotationStore(root) as store:
        record = store.register_image(dicom)
        png_record = store.register_image(png)
        assert record.key == image_key_for(dicom) and record.key.endswith("|" + dicom.identifiers.sop_instance_uid)
        assert png_record.key.startswith("px:") and len(png_record.key) == len("px:") + 32  # pixels, no UID
        assert png_record.key == image_key_for(png)
        mask = box_mask((dicom.height, dicom.width))
        revision_id = store.save_mask(record.key, mask, source="model", reader="alice", model=MODEL)
        store.set_review(record.key, "accepted", "looks right", reader="alice")

    with AnnotationStore(root) as store:
        images = store.list_images()
        assert [image.key for image in images] == [record.key, png_record.key]
        first = images[0]
        assert first.display_name == JPEG_BASELINE and first.kind == "dicom"
        assert (first.width, first.height) == (1024, 1024)
        assert first.spacing == pytest.approx((0.168, 0.168))
        assert first.patient_id == dicom.identifiers.patient_id
        assert first.study_uid == dicom.identifiers.study_instance_uid
        assert first.series_uid == dicom.identifiers.series_instance_uid
        assert (first.status, first.note, first.reader) == ("accepted", "looks right", "alice")
        assert first.updated_at.endswith("+00:00")
        assert first.has_mask and first.first_model_label == "lung-lite 1.2"
        assert images[1].status == "unreviewed" and not images[1].has_mask and images[1].spacing is None
        np.testing.assert_array_equal(store.latest_mask(record.key), mask)
        latest = store.latest_revision(record.key)
        assert latest.id == revision_id and latest.reader == "alice" and latest.source == "model"
        assert latest.created_at.endswith("+00:00")
        assert hashlib.sha256(latest.file.read_bytes()).hexdigest() == latest.sha256
        assert store.latest_mask(png_record.key) is None
        assert store.get_image("no-such-key") is None
        assert store.integrity_check() == "ok"
        # a key is stable across reopen and independent of the store
        assert image_key_for(png) == png_record.key


def test_wal_mode_and_pragmas(store):
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db_path.name == DB_FILE
    assert store.integrity_check() == "ok"


def test_register_is_idempotent_and_follows_moves(tmp_path, store):
    source = dicom_path(JPEG2000)
    first_copy = tmp_path / "a" / "image.dcm"
    first_copy.parent.mkdir()
    shutil.copy(source, first_copy)
    record = store.register_image(study_from_dicom(first_copy))
    again = store.register_image(study_from_dicom(first_copy))
    assert again == record
    moved = tmp_path / "b" / "renamed.dcm"
    moved.parent.mkdir()
    shutil.move(first_copy, moved)
    after_move = store.register_image(study_from_dicom(moved))
    assert after_move.key == record.key and after_move.position == record.position
    assert after_move.path == moved and after_move.display_name == "renamed.dcm"
    assert len(store.list_images()) == 1
    assert [event.kind for event in store.events(record.key)] == ["move", "register"]


def test_revision_history_carries_first_model(store, png_study):
    key = store.register_image(png_study).key
    shape = (png_study.height, png_study.width)
    masks = [box_mask(shape, 5, 5, 30, 30), box_mask(shape, 5, 5, 40, 40), box_mask(shape, 0, 0, 20, 60)]
    ids = [
        store.save_mask(key, masks[0], source="model", reader="bot", model=MODEL),
        store.save_mask(key, masks[1], source="edit", reader="alice"),
        store.save_mask(key, masks[2], source="prompt", reader="alice", model=MODEL_INT8),
    ]
    assert ids == sorted(ids)
    history = store.history(key)
    assert [revision.id for revision in history] == ids
    assert [revision.source for revision in history] == ["model", "edit", "prompt"]
    assert all(revision.first_model_label == "lung-lite 1.2" for revision in history)
    assert all(revision.first_model_weights_sha256 == MODEL.weights_sha256 for revision in history)
    assert history[0].model_label == "lung-lite 1.2" and history[0].model_precision == "fp32"
    assert history[1].model_name is None and history[1].model_label == ""
    assert history[2].model_label == "lung-lite 1.3 INT8" and history[2].model_weights_sha256 == MODEL_INT8.weights_sha256
    assert len({revision.file for revision in history}) == 3
    for revision, mask in zip(history, masks):
        np.testing.assert_array_equal(store.load_revision_mask(revision), mask)
        assert revision.lung_pixels == int(np.count_nonzero(mask))
    np.testing.assert_array_equal(store.latest_mask(key), masks[2])
    record = store.get_image(key)
    assert record.has_mask and record.latest_revision_id == ids[2] and record.latest_source == "prompt"


def test_hand_drawn_first_mask_has_no_first_model(store, png_study):
    key = store.register_image(png_study).key
    shape = (png_study.height, png_study.width)
    store.save_mask(key, box_mask(shape), source="edit", reader="alice")
    assert store.latest_revision(key).first_model_label == ""
    assert store.get_image(key).first_model_label == ""
    # an edit of an unsaved model prediction may name the model it came from
    other = store.register_image(study_from_png(png_study.path.with_name("other.png"), (40, 40))).key
    store.save_mask(other, box_mask((40, 40)), source="edit", reader="alice", model=MODEL_INT8)
    revision = store.latest_revision(other)
    assert revision.model_name is None and revision.first_model_label == "lung-lite 1.3 INT8"


def test_model_masks_never_overwrite_reviewed_or_edited(store, tmp_path):
    shape = (40, 50)
    keys = [store.register_image(study_from_png(tmp_path / f"img{i}.png", shape)).key for i in range(3)]
    auto, newer = box_mask(shape, 0, 0, 10, 10), box_mask(shape, 0, 0, 20, 20)
    # unreviewed and untouched: automatic runs may write and re-write
    assert store.save_model_mask_if_unreviewed(keys[0], auto, MODEL, "bot")
    assert store.save_model_mask_if_unreviewed(keys[0], newer, MODEL_INT8, "bot")
    np.testing.assert_array_equal(store.latest_mask(keys[0]), newer)
    # reviewed (any status but unreviewed): refused, mask unchanged
    for status in ("accepted", "corrected", "rejected"):
        store.set_review(keys[0], status, reader="alice")
        assert not store.save_model_mask_if_unreviewed(keys[0], auto, MODEL, "bot")
        np.testing.assert_array_equal(store.latest_mask(keys[0]), newer)
    store.set_review(keys[0], "unreviewed", reader="alice")
    assert store.save_model_mask_if_unreviewed(keys[0], auto, MODEL, "bot")
    # a human edit, even unreviewed, is protected
    store.save_mask(keys[1], newer, source="edit", reader="alice")
    assert not store.save_model_mask_if_unreviewed(keys[1], auto, MODEL, "bot")
    np.testing.assert_array_equal(store.latest_mask(keys[1]), newer)
    # so is a mask the reader made by prompting
    store.save_mask(keys[2], newer, source="prompt", reader="alice", model=MODEL)
    assert not store.save_model_mask_if_unreviewed(keys[2], auto, MODEL, "bot")
    assert len(store.history(keys[2])) == 1
    assert "skip_model_mask" in [event.kind for event in store.events(keys[1])]


def test_next_unreviewed_follows_display_order(store, tmp_path):
    keys = [store.register_image(study_from_png(tmp_path / f"n{i}.png", (20 + i, 20))).key for i in range(5)]
    store.set_review(keys[1], "accepted", reader="r")
    store.set_review(keys[3], "rejected", reader="r")
    store.set_review(keys[4], "unreviewed", reader="r")
    assert store.next_unreviewed(None) == keys[0]
    assert store.next_unreviewed(keys[0]) == keys[2]
    assert store.next_unreviewed(keys[2]) == keys[4]
    assert store.next_unreviewed(keys[4]) is None
    assert store.next_unreviewed(None, backwards=True) == keys[4]
    assert store.next_unreviewed(keys[4], backwards=True) == keys[2]
    assert store.next_unreviewed(keys[2], backwards=True) == keys[0]
    assert store.next_unreviewed(keys[0], backwards=True) is None
    assert store.next_unreviewed("unknown") == keys[0]
    assert [image.key for image in store.list_images()] == keys


def test_set_review_validates(store, png_study, monkeypatch):
    key = store.register_image(png_study).key
    with pytest.raises(StoreError, match="unknown review status 'done'"):
        store.set_review(key, "done", reader="alice")
    with pytest.raises(StoreError, match="not in the annotation store"):
        store.set_review("missing", "accepted", reader="alice")
    monkeypatch.setenv("ADAQAT_READER", "Dr Who")
    store.set_review(key, "corrected", "fixed the left base")
    record = store.get_image(key)
    assert (record.status, record.note, record.reader) == ("corrected", "fixed the left base", "Dr Who")
    store.set_review(key, "rejected", "", "bob")
    assert store.get_image(key).reader == "bob"


def test_save_mask_validates(store, png_study):
    key = store.register_image(png_study).key
    with pytest.raises(StoreError, match=r"could not save mask for plain.png: the mask is 10x10 pixels but the image is 80x64"):
        store.save_mask(key, np.zeros((10, 10), np.uint8), source="edit", reader="a")
    with pytest.raises(StoreError, match="unknown mask source"):
        store.save_mask(key, box_mask((64, 80)), source="magic", reader="a")
    with pytest.raises(StoreError, match="must name the model"):
        store.save_mask(key, box_mask((64, 80)), source="model", reader="a")
    with pytest.raises(StoreError, match="not in the annotation store"):
        store.save_mask("missing", box_mask((64, 80)), source="edit", reader="a")
    # bool and 0/1 masks are accepted and stored as 0/255
    store.save_mask(key, box_mask((64, 80)) > 0, source="edit", reader="a")
    assert set(np.unique(store.latest_mask(key))) == {0, 255}
    assert revision_count(store) == 1


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["replace", "fsync", "write"])
def test_disk_full_registers_nothing(store, png_study, monkeypatch, target):
    key = store.register_image(png_study).key
    good = box_mask((64, 80))
    store.save_mask(key, good, source="edit", reader="a")
    files_before, events_before = mask_files(store), len(store.events())
    if target == "replace":
        monkeypatch.setattr(atomic.os, "replace", _enospc)
    elif target == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", _enospc)
    else:
        monkeypatch.setattr("core.store.annotation_store.atomic_write_bytes", _partial_write_then_enospc)
    with pytest.raises(StoreError) as raised:
        store.save_mask(key, box_mask((64, 80), 0, 0, 50, 50), source="edit", reader="a")
    message = str(raised.value)
    assert message == "could not save mask for plain.png: No space left on device; free disk space and save again"
    assert "\n" not in message
    monkeypatch.undo()
    assert revision_count(store) == 1
    assert mask_files(store) == files_before  # no new PNG, no stray .tmp
    assert len(store.events()) == events_before
    np.testing.assert_array_equal(store.latest_mask(key), good)
    assert store.integrity_check() == "ok"
    store.save_mask(key, good, source="edit", reader="a")  # and the store still works
    assert revision_count(store) == 2


def _partial_write_then_enospc(path, data):
    """Like a PNG writer that runs out of space half-way: a truncated temp file, then ENOSPC."""
    tmp = path.with_name(f".{path.name}.x{atomic.TMP_SUFFIX}")
    tmp.write_bytes(data[: len(data) // 2])
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    finally:
        tmp.unlink()


def test_failed_commit_removes_the_written_file(store, png_study, monkeypatch):
    key = store.register_image(png_study).key

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(AnnotationStore, "_insert_revision", full)
    with pytest.raises(StoreError, match="No space left on device; free disk space and save again"):
        store.save_mask(key, box_mask((64, 80)), source="edit", reader="a")
    monkeypatch.undo()
    assert revision_count(store) == 0 and mask_files(store) == []
    assert not store._conn.in_transaction
    assert not store.get_image(key).has_mask


def test_damaged_mask_file_is_reported(store, png_study):
    key = store.register_image(png_study).key
    store.save_mask(key, box_mask((64, 80)), source="edit", reader="a")
    revision = store.latest_revision(key)
    revision.file.write_bytes(b"not a png")
    with pytest.raises(StoreError, match=f"mask revision {revision.id} .* is missing or damaged"):
        store.latest_mask(key)
    revision.file.unlink()
    with pytest.raises(StoreError, match="missing or damaged"):
        store.latest_mask(key)


def test_orphans_and_stale_temp_files(store, png_study):
    key = store.register_image(png_study).key
    store.save_mask(key, box_mask((64, 80)), source="edit", reader="a")
    orphan = store.mask_dir / "left-by-crash.png"
    orphan.write_bytes(b"x")
    stale = store.mask_dir / ".left.png.abc.tmp"
    stale.write_bytes(b"x")
    assert store.orphan_mask_files() == [orphan]
    assert store.remove_stale_temp_files(max_age_s=0) == 1 and not stale.exists()


def test_refuses_newer_schema_and_foreign_files(tmp_path):
    root = tmp_path / "store"
    AnnotationStore(root).close()
    conn = sqlite3.connect(root / DB_FILE)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer version of this program"):
        AnnotationStore(root)
    other = tmp_path / "other"
    other.mkdir()
    (other / DB_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="could not open the annotation database"):
        AnnotationStore(other)


def test_closed_store_raises_store_error(tmp_path):
    store = AnnotationStore(tmp_path / "s")
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.list_images()


def test_calls_from_another_thread(store, png_study):
    key = store.register_image(png_study).key
    results = []
    worker = threading.Thread(
        target=lambda: results.append(store.save_mask(key, box_mask((64, 80)), source="edit", reader="t"))
    )
    worker.start()
    worker.join()
    assert results and store.latest_revision(key).id == results[0]


def test_default_reader_name(monkeypatch):
    monkeypatch.setenv("ADAQAT_READER", "  radiologist-1 ")
    assert default_reader_name() == "radiologist-1"
    monkeypatch.delenv("ADAQAT_READER")
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    assert default_reader_name() == "osuser"

    def no_user():
        raise OSError("no user")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert default_reader_name() == "unknown"


def test_registers_a_study_from_load_study(store):
    load_study = pytest.importorskip("core.io").load_study
    path = dicom_path(JPEG_BASELINE)
    study = load_study(path)
    record = store.register_image(study)
    assert record.key == image_key_for(study) and record.key.endswith("|" + study.identifiers.sop_instance_uid)
    assert (record.height, record.width) == study.pixels.shape
    assert record.spacing == (pytest.approx(study.pixel_spacing_mm) if study.pixel_spacing_mm else None)
