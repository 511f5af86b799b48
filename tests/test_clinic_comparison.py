"""The verdict of a clinic fine-tune: what it compares on, and how it names what got worse.

Per-image rows are what ``evaluate_images`` writes (ids, file names, review status, Dice); the record
and its wording are checked on them directly, and the budgeted scoring on a real model and real images.
"""

from __future__ import annotations

import math

from core.evaluation.runner import Evaluation
from core.training.comparison import comparison_record, describe_comparison


class Parent:
    def to_json(self) -> dict:
        return {"name": "cxr-lungs-adaqat", "version": "v1", "weights_sha256": "0" * 64, "precision": "int8",
                "path": "default"}


def evaluation(rows: list[tuple[str, str, float]]) -> Evaluation:
    return Evaluation("m", "auto", [{"id": f"key{i}", "image": name, "review": review, "dice": dice}
                                    for i, (name, review, dice) in enumerate(rows)], [])


def test_the_verdict_rests_on_corrected_images_and_accepted_ones_are_reported_apart():
    # corrected: the new model gains 0.02 on each; accepted (the old model's own masks): it loses 0.05
    before = evaluation([("a.dcm", "corrected", 0.90), ("b.dcm", "corrected", 0.91), ("c.dcm", "accepted", 1.0),
                         ("d.dcm", "accepted", 1.0)])
    after = evaluation([("a.dcm", "corrected", 0.92), ("b.dcm", "corrected", 0.93), ("c.dcm", "accepted", 0.95),
                        ("d.dcm", "accepted", 0.95)])
    record = comparison_record(Parent(), before, after, {"data": "the annotation store s", "heldout": "h", "scored": 4})
    assert record["images"] == 2 and record["accepted_images"] == 2
    assert math.isclose(record["active_model"]["dice_mean"], 0.905) and math.isclose(record["new_model"]["dice_mean"], 0.925)
    assert record["better"] is True and record["better_images"] == 2 and record["worse_images"] == []
    assert math.isclose(record["accepted"]["new_dice_mean"], 0.95)
    text = describe_comparison(record)
    assert "2 accepted image(s) scored apart" in text and "the annotation store s" in text


def test_images_that_got_worse_are_named_by_file_worst_first():
    before = evaluation([("p1.png", "reference", 0.95), ("p2.png", "reference", 0.95), ("p3.png", "reference", 0.95)])
    after = evaluation([("p1.png", "reference", 0.90), ("p2.png", "reference", 0.97), ("p3.png", "reference", 0.94)])
    record = comparison_record(Parent(), before, after)
    assert [w["image"] for w in record["worse_images"]] == ["p1.png", "p3.png"]
    assert record["better"] is False and record["better_images"] == 1
    assert [row["image"] for row in record["per_image"]] == ["p1.png", "p2.png", "p3.png"]
    text = describe_comparison(record)
    assert "1 better, 2 worse, 0 unchanged" in text and "p1.png (0.950 -> 0.900)" in text


def test_the_dialog_words_the_same_record(qtbot):
    from app.dialogs.training_dialog import comparison_text

    before = evaluation([("p1.png", "reference", 0.95), ("p2.png", "reference", 0.95)])
    after = evaluation([("p1.png", "reference", 0.90), ("p2.png", "reference", 0.99)])
    text = comparison_text(comparison_record(Parent(), before, after))
    assert text.startswith("Training finished. On 2 held-out reviewed images") and "p1.png (0.950 -> 0.900)" in text


def test_scoring_within_a_budget_keeps_a_fair_minimum_and_stops_on_time(tmp_path, monkeypatch):
    """A budgeted run scores as many held-out images as fit in its share, never fewer than the minimum,
    in a seeded order that puts corrected images first."""
    import time

    from core.evaluation.runner import manifest_images
    from core.models.loading import load_model
    from core.training import continue_run
    from core.io.manifest import read_manifest
    from tests.shared_data import shared_file

    problems: list[str] = []
    samples = read_manifest(shared_file("clinic-sample", "manifest.csv")).split("val")[:4]
    images = list(manifest_images(samples, problems))
    images[3].review = "accepted"
    ordered = continue_run.scoring_order(images, seed=0)
    assert ordered[-1] is images[3] and {i.id for i in ordered} == {i.id for i in images}
    assert [i.id for i in continue_run.scoring_order(images, seed=0)] == [i.id for i in ordered]  # deterministic

    run = continue_run.FastRun(config=type("C", (), {"device": "cpu"})(), out_dir=tmp_path, started=time.perf_counter(),
                               emit=lambda event: None, cancel=None)
    monkeypatch.setattr(continue_run, "MIN_SCORED", 2)
    evaluation_, _ = continue_run.timed_evaluation(run, load_model("default"), ordered, "check", within_s=0.0)
    assert [row["id"] for row in evaluation_.per_image] == [i.id for i in ordered[:2]]
