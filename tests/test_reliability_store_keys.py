"""Issue 12, classes 1, 5 and 7 (store): the right image's mask, no silent restart, accurate messages.

Images built here with pydicom/OpenCV, a real schema-1 store (tests/data/store_v1, written by the
code before content keys), real SQLite, real read-only folders.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.io import load_study
from core.store import SCHEMA_VERSION, AnnotationStore, StoreError
from tests.reliability_files import chest_like, duplicate_uid_pair, read_only_folder
from tests.shared_data import write_dicom

V1 = Path(__file__).parent / "data" / "store_v1"
V1_UID = "2.25.123456789012345678901234567890"
V1_PNG_KEY = "sha256:96b048e524491c26"


def _mask(study, left: int = 10) -> np.ndarray:
    mask = np.zeros((study.height, study.width), np.uint8)
    mask[20:70, left : left + 25] = 255
    return mask


# --- 1. key by content ----------------------------------------------------------------------------


def test_two_images_with_one_uid_get_separate_records_and_a_warning(tmp_path):
    first_path, second_path = duplicate_uid_pair(tmp_path)
    first, second = load_study(first_path), load_study(second_path)
    assert first.identifiers.sop_instance_uid == second.identifiers.sop_instance_uid
    with AnnotationStore(tmp_path / "store") as store:
        a = store.register_image(first)
        store.save_mask(a.key, _mask(first), source="edit", reader="alice")
        store.set_review(a.key, "accepted", reader="alice")
        b = store.register_image(second)
        assert b.key != a.key
        assert store.latest_mask(b.key) is None and b.status == "unreviewed" and not b.has_mask
        assert "same SOPInstanceUID" in b.warning and any("same SOPInstanceUID" in w for w in second.warnings)
        assert [e.kind for e in store.events(b.key)][:2] == ["uid_collision", "register"]
    with AnnotationStore(tmp_path / "store") as store:  # reopening: each file finds its own record
        again = store.register_image(load_study(first_path))
        assert again.key == a.key and again.status == "accepted" and again.reader == "alice"
        np.testing.assert_array_equal(store.latest_mask(a.key), _mask(first))
        assert store.register_image(load_study(second_path)).key == b.key
        assert len(store.list_images()) == 2


def test_the_same_pixels_keep_their_record_when_the_file_is_rewritten(tmp_path):
    pixels = np.rint(chest_like()).astype(np.uint16)
    original = write_dicom(tmp_path / "one.dcm", pixels, SOPInstanceUID="2.25.42", BitsStored=12, HighBit=11)
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(load_study(original)).key
        rewritten = write_dicom(tmp_path / "copy.dcm", pixels, SOPInstanceUID="2.25.42", BitsStored=12, HighBit=11,
                                InstitutionName="re-exported")  # other bytes, same image
        assert store.register_image(load_study(rewritten)).key == key
        assert len(store.list_images()) == 1


# --- 1. migration of a schema-1 store ---------------------------------------------------------------


def _v1_copy(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(V1, tmp_path / "v1")
    return tmp_path / "v1" / "store_v1", tmp_path / "v1" / "images"


def test_a_schema_1_store_is_migrated_and_its_records_claimed_by_their_images(tmp_path):
    root, images = _v1_copy(tmp_path)
    with sqlite3.connect(root / "annotations.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    with AnnotationStore(root) as store:
        assert store.integrity_check() == "ok"
        before = {r.key: r for r in store.list_images()}
        assert set(before) == {V1_UID, V1_PNG_KEY}
        assert before[V1_UID].status == "accepted" and before[V1_PNG_KEY].status == "corrected"
        dicom = store.register_image(load_study(images / "a.dcm"))  # the old record's file has moved
        assert dicom.key == V1_UID and dicom.status == "accepted" and dicom.has_mask and dicom.path == images / "a.dcm"
        png = store.register_image(load_study(images / "b.png"))
        assert png.key == V1_PNG_KEY and png.status == "corrected"
        assert len(store.history(V1_UID)) == 2 and store.latest_mask(V1_UID).max() == 255
        impostor_path = write_dicom(tmp_path / "other.dcm", np.rint(chest_like(seed=9)).astype(np.uint16),
                                    SOPInstanceUID=V1_UID, BitsStored=12, HighBit=11)
        impostor = store.register_image(load_study(impostor_path))
        assert impostor.key != V1_UID and impostor.status == "unreviewed" and not impostor.has_mask
        assert impostor.warning
    with sqlite3.connect(root / "annotations.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    with AnnotationStore(root) as store:  # claimed once: the next open finds the records by content
        assert store.register_image(load_study(images / "a.dcm")).key == V1_UID
        assert len(store.list_images()) == 3


def test_a_schema_1_record_whose_file_is_still_there_is_not_given_to_another_image(tmp_path):
    root, images = _v1_copy(tmp_path)
    with AnnotationStore(root) as store:
        store.register_image(load_study(images / "a.dcm"))  # claims the record, path now points here
    with sqlite3.connect(root / "annotations.sqlite") as conn:  # back to "not claimed yet"
        conn.execute("UPDATE images SET content_key = NULL")
    impostor_path = write_dicom(tmp_path / "other.dcm", np.rint(chest_like(seed=9)).astype(np.uint16),
                                SOPInstanceUID=V1_UID, BitsStored=12, HighBit=11)
    with AnnotationStore(root) as store:
        impostor = store.register_image(load_study(impostor_path))
        assert impostor.key != V1_UID and not impostor.has_mask  # a.dcm is still there: the record is a.dcm's
        assert store.register_image(load_study(images / "a.dcm")).key == V1_UID


# --- 5. an emptied database -------------------------------------------------------------------------


def _store_with_work(root: Path, tmp_path: Path) -> None:
    study = load_study(write_dicom(tmp_path / "w.dcm", np.rint(chest_like()).astype(np.uint16)))
    with AnnotationStore(root) as store:
        key = store.register_image(study).key
        store.save_mask(key, _mask(study), source="edit", reader="alice")
        store.set_review(key, "accepted", reader="alice")


def test_a_zero_byte_database_is_refused_not_started_over(tmp_path):
    root = tmp_path / "store"
    _store_with_work(root, tmp_path)
    db = root / "annotations.sqlite"
    db.write_bytes(b"")
    masks = sorted((root / "masks").glob("*.png"))
    for _attempt in range(2):
        with pytest.raises(StoreError) as info:
            AnnotationStore(root)
        message = str(info.value)
        assert "empty (0 bytes)" in message and "1 saved mask" in message and "restore" in message
        assert "\n" not in message
    assert db.stat().st_size == 0 and sorted((root / "masks").glob("*.png")) == masks  # nothing overwritten


def test_a_missing_database_beside_saved_masks_is_refused(tmp_path):
    root = tmp_path / "store"
    _store_with_work(root, tmp_path)
    for name in ("annotations.sqlite", "annotations.sqlite-wal", "annotations.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="database is missing; 1 saved mask"):
        AnnotationStore(root)
    assert not (root / "annotations.sqlite").exists()


def test_a_new_store_never_leaves_a_zero_byte_database(tmp_path):
    with AnnotationStore(tmp_path / "fresh") as store:
        assert store.db_path.stat().st_size > 0 and store.integrity_check() == "ok"
    assert [p.name for p in (tmp_path / "fresh").iterdir() if p.name.endswith(".tmp")] == []
    AnnotationStore(tmp_path / "fresh").close()  # and it opens again


# --- 7. read-only store, non-UTF-8 names ---------------------------------------------------------------


def test_a_read_only_store_is_named_read_only_not_damaged(tmp_path):
    root = tmp_path / "store"
    _store_with_work(root, tmp_path)
    with read_only_folder(root):
        with pytest.raises(StoreError) as info:
            AnnotationStore(root)
    message = str(info.value)
    assert "read-only" in message and "writable" in message, message
    assert "backup" not in message and "damaged" not in message
    with AnnotationStore(root) as store:  # untouched
        assert store.list_images()[0].status == "accepted"


def test_non_utf8_file_names_are_registered_and_reopened(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.png")
    with open(raw, "wb") as handle:  # (cv2.imwrite crashes on such a name)
        handle.write(cv2.imencode(".png", np.rint(chest_like(lo=10, hi=240)).astype(np.uint8))[1].tobytes())
    path = Path(os.fsdecode(raw))
    study = load_study(path)
    with AnnotationStore(tmp_path / "store") as store:
        record = store.register_image(study)
        store.save_mask(record.key, _mask(study), source="edit", reader="alice")
    with AnnotationStore(tmp_path / "store") as store:
        again = store.list_images()[0]
        assert again.path == path and os.fsencode(again.path) == raw
        assert again.display_name == "caf\\xe9-\\xff.png"
        assert load_study(again.path).pixels.shape == study.pixels.shape
        assert store.register_image(load_study(again.path)).key == record.key


def test_training_skips_a_reviewed_image_whose_file_now_holds_another_image(tmp_path):
    from core.training.store_source import reviewed_images

    path = write_dicom(tmp_path / "x.dcm", np.rint(chest_like()).astype(np.uint16), BitsStored=12, HighBit=11)
    study = load_study(path)
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(study).key
        store.save_mask(key, _mask(study), source="edit", reader="alice")
        store.set_review(key, "accepted", reader="alice")
    problems: list[str] = []
    assert len(list(reviewed_images(tmp_path / "store", problems))) == 1 and not problems
    write_dicom(path, np.rint(chest_like(seed=4)).astype(np.uint16), BitsStored=12, HighBit=11)  # replaced
    assert list(reviewed_images(tmp_path / "store", problems)) == []
    assert "different image" in problems[0]
