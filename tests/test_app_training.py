"""Tools > Fine-tune model…: the dialog driving a real ``adaqat train`` child process on a real store.

The runs are tiny (3 shared cxr-lungs images, a one-minute budget on the CPU) but take the
product's path: the dialog builds the command, QProcess runs ``python -m core.cli train``, the JSON
progress lines drive the widgets, and the engine's exit status decides what the dialog shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.shared_data import shared_file

RUN_TIMEOUT_MS = 300_000
REVIEWED = {"006ce2a73b": "accepted", "007bef113c": "corrected", "00da69e190": "accepted"}
TINY_RUN = "--stages 1 --epochs 1 --batch-size 2"


def make_store(root: Path, statuses: dict[str, str | None], without_mask: tuple[str, ...] = ()) -> Path:
    """Register shared cxr-lungs images, save each ground-truth mask as an edit, and review them."""
    import cv2

    from core.io import load_study
    from core.store import AnnotationStore, image_key_for

    data = shared_file("cxr-lungs")
    with AnnotationStore(root) as store:
        for image_id, status in statuses.items():
            study = load_study(data / "images" / f"{image_id}.jpg")
            key = image_key_for(study)
            store.register_image(study)
            if image_id not in without_mask:
                mask = cv2.imread(str(data / "masks" / f"{image_id}.png"), cv2.IMREAD_GRAYSCALE)
                store.save_mask(key, np.where(mask == 255, 255, 0).astype(np.uint8), source="edit", reader="tester")
            if status:
                store.set_review(key, status, reader="tester")
    return root


@pytest.fixture
def open_dialog(qtbot, viewer_settings):
    """A TrainingDialog on an open store (closed, and any engine process stopped, at the end)."""
    from app.dialogs.training_dialog import TrainingDialog
    from core.store import AnnotationStore

    opened = []

    def make(store_root: Path):
        store = AnnotationStore(store_root)
        dialog = TrainingDialog(store, viewer_settings)
        qtbot.addWidget(dialog)
        dialog.threads.setValue(min(2, dialog.threads.maximum()))
        dialog.show()
        opened.append((dialog, store))
        return dialog

    yield make
    for dialog, store in opened:
        dialog.shutdown()
        store.close()


def visible_text(dialog) -> str:
    return "\n".join([dialog.count_label.text(), dialog.stage_label.text(), dialog.detail_label.text(),
                      dialog.result_label.text(), dialog.log.toPlainText()])


def generic_parent(folder: Path) -> Path:
    """The pretrained LiteMedSAM as a model folder: a parent the clinic's images reliably improve on
    (in automatic mode it outlines the whole chest), so the "better" branch is taken for certain."""
    from core.models import lite_medsam
    from core.models.artifact import write_model_dir

    module = lite_medsam.build("pretrained")
    card = {"name": "generic-lite-medsam", "version": "pretrained", "backbone": "lite_medsam",
            "backbone_config": {"image_size": 256}, "precision": "fp32"}
    return write_model_dir(folder, card, module.state_dict())


def test_fine_tune_from_the_viewer_then_use_the_better_model(qtbot, viewer_settings, tmp_path, monkeypatch):
    from app.main_window import MainWindow
    from app.services.settings import Settings
    from core.models.catalog import active_model

    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))  # the child engine inherits it
    parent = generic_parent(tmp_path / "generic")
    viewer_settings.set_model(str(parent))
    viewer_settings.sync()
    store_root = make_store(tmp_path / "store", REVIEWED)
    window = MainWindow(store_path=store_root, settings=Settings())  # no injected model: the switch is real
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.segmentation.model_info is not None, timeout=60_000)
    assert window.segmentation.model_info.name == "generic-lite-medsam"

    window.acts.fine_tune.trigger()
    dialog = window.training
    assert dialog is not None and dialog.isVisible()
    assert dialog.count == 3 and dialog.count_label.text().startswith("3 reviewed images")
    assert dialog.budget.value() == 15 and dialog.device.currentData() == "cpu"
    assert parent.name in dialog.base_label.text() and str(parent) in dialog.base_label.toolTip()
    out_dir = Path(dialog.out_dir.text())
    assert out_dir.parent == (tmp_path / "models").resolve() and out_dir.name.startswith("finetune-")
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert not dialog.use_button.isVisible() and not dialog.resume_button.isVisible()
    dialog.threads.setValue(min(2, dialog.threads.maximum()))
    dialog.budget.setValue(1)
    dialog.extra_args.setText("--batch-size 2")

    # the estimate comes before Start: a short measured step, nothing written
    qtbot.mouseClick(dialog.estimate_button, Qt.MouseButton.LeftButton)
    assert dialog.state == "estimating" and not dialog.start_button.isEnabled()
    wait_for(qtbot, dialog, lambda: dialog.state != "estimating")
    assert dialog.outcome.state == "estimated", visible_text(dialog)
    assert "for the whole run on this computer" in dialog.estimate_label.text()
    assert "budget 1 min 00 s)" in dialog.estimate_label.text()
    assert not out_dir.exists() or not (out_dir / "model-int8").exists()
    # one minute cannot hold a run that adapts the encoder (its INT8 encoder graph alone is re-exported):
    # the estimate says so and what would fit, and Start stays off until the budget changes
    assert dialog.outcome.estimate["fits"] is False, dialog.estimate_label.text()
    assert "Too long for the budget" in dialog.estimate_label.text() and not dialog.start_button.isEnabled()
    # "no limit" is a separate tick box, never the step below one minute
    assert dialog.budget.minimum() == 1 and not dialog.no_limit.isChecked()
    dialog.budget.setValue(4)
    assert dialog.start_button.isEnabled() and dialog.budget_s() == 240

    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.state == "running" and dialog.cancel_button.isEnabled() and not dialog.close_button.isEnabled()
    assert not dialog.options.isEnabled()
    assert dialog.process.request.arguments()[dialog.process.request.arguments().index("--from") + 1] == str(parent)
    out_dir = dialog.process.request.out_dir  # a fresh timestamped folder for each run
    assert out_dir.parent == (tmp_path / "models").resolve()
    wait_for(qtbot, dialog, lambda: any(e.stage == "stage1" for e in dialog.events) or dialog.state != "running")
    dialog.grab().save("/tmp/train_dialog_running.png")
    wait_for(qtbot, dialog, lambda: dialog.state != "running")
    dialog.grab().save("/tmp/train_dialog.png")

    assert dialog.state == "succeeded", visible_text(dialog)
    assert any(e.stage == "prepare" and "estimated" in e.message for e in dialog.events)  # the run's own plan
    comparison = dialog.outcome.comparison
    assert comparison and comparison["better"] is True, visible_text(dialog)
    result = dialog.result_label.text()
    assert "current model Dice" in result and "new model Dice" in result and "Wilcoxon" in result
    assert "The new model is better" in result
    expected = dialog.expected_label.text()  # the plan's promise (selection images), then the real gain
    assert expected.startswith("expected ") and "Dice on the" in expected and "real " in expected
    assert (out_dir / "training-log.txt").is_file()
    assert "Traceback" not in visible_text(dialog)
    assert dialog.use_button.isVisible() and dialog.close_button.isEnabled()
    assert dialog.start_button.text() == "Start new run"

    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    installed = Path(Settings().model())  # persisted in the ini, read back fresh
    assert installed.parent == tmp_path / "home" / "models" and (installed / "model.json").is_file()
    assert active_model() == str(installed)  # the command line agrees with the viewer
    qtbot.waitUntil(lambda: window.segmentation.model_info is not None
                    and window.segmentation.model_info.path == str(installed.resolve()), timeout=60_000)
    assert window.segmentation.model_info.name == "generic-lite-medsam-clinic"
    assert window.segmentation.model_info.precision == "int8"
    assert not dialog.use_button.isEnabled()

    # a second run gets a new folder: the finished one is never overwritten
    request = dialog.build_request()
    assert request.out_dir != out_dir and request.out_dir.parent == out_dir.parent
    window.close()


def test_a_model_that_is_not_better_is_not_offered(qtbot, open_dialog, viewer_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    from tests.test_clinic_finetune import mislabelled_manifest

    dialog = open_dialog(make_store(tmp_path / "store", REVIEWED))
    dialog.budget.setValue(3)
    # the engine's real run on mislabelled clinic masks (advanced options win over the store): it cannot gain
    dialog.extra_args.setText(f"--batch-size 2 --lr-adapter 0.05 --lr-base 0.05 --qat-lr 0.02 --data {mislabelled_manifest(tmp_path / 'data')}")
    assert dialog.start()
    wait_for(qtbot, dialog, lambda: dialog.state != "running")
    assert dialog.state == "succeeded", visible_text(dialog)
    assert dialog.outcome.comparison["better"] is False
    assert "is not better, so the current model stays active" in dialog.result_label.text()
    assert "per image:" in dialog.result_label.text()  # wins and losses, worse images named by file
    assert not dialog.use_button.isVisible() and dialog.result_path is None
    assert viewer_settings.model() == "default" and not (tmp_path / "home" / "models" / "active.json").exists()
    # it may still be tried: added to the Models window inactive, whose Activate warns first
    assert dialog.keep_button.isVisible()
    dialog.keep_button.click()
    assert "Added to the Models window, not active" in dialog.result_label.text()
    from app.dialogs.models_dialog import ModelsDialog

    models = ModelsDialog()
    qtbot.addWidget(models)
    record = next(r for r in models.records if (r.card.clinic_comparison or {}).get("better") is False)
    models.select_path(record.path)
    warnings = []
    assert models.activate_selected(confirm=lambda text: warnings.append(text) or False) is False
    assert "NOT better than its parent" in warnings[0] and "held-out images" in warnings[0]
    assert not (tmp_path / "home" / "models" / "active.json").exists()
    assert models.activate_selected(confirm=lambda text: True) is True


def test_refuses_to_start_with_fewer_than_two_reviewed_images(open_dialog, tmp_path):
    # one usable image: accepted with a mask; the others are rejected, unreviewed, or accepted without a mask
    statuses = {"006ce2a73b": "accepted", "007bef113c": "rejected", "00da69e190": None, "02b2706dd2": "accepted"}
    dialog = open_dialog(make_store(tmp_path / "store", statuses, without_mask=("02b2706dd2",)))
    assert dialog.count == 1
    assert not dialog.start_button.isEnabled()
    message = dialog.count_label.text()
    assert "needs at least 2 reviewed images" in message and "only 1 reviewed image." in message
    assert dialog.start() is False
    assert dialog.result_label.isVisible() and "at least 2 reviewed images" in dialog.result_label.text()
    assert dialog.state == "idle" and not dialog.process.running
    assert not (tmp_path / "models").exists()


def test_engine_error_is_shown_as_its_one_line_message(qtbot, open_dialog, tmp_path):
    dialog = open_dialog(make_store(tmp_path / "store", REVIEWED))
    dialog.extra_args.setText(TINY_RUN + " --max-train-images 0")  # the engine refuses: exit status 2
    assert dialog.start()
    wait_for(qtbot, dialog, lambda: dialog.state != "running")
    assert dialog.state == "failed" and dialog.outcome.exit_code == 2
    result = dialog.result_label.text()
    assert "not usable" in result and "no usable training images" in result
    assert "Traceback" not in visible_text(dialog) and not dialog.use_button.isVisible()
    assert dialog.start_button.isEnabled() and not dialog.resume_button.isVisible()


def test_cancel_stops_the_run_and_offers_resume(qtbot, open_dialog, viewer_settings, tmp_path):
    from app.dialogs.training_dialog import TrainingDialog

    store_root = make_store(tmp_path / "store", REVIEWED)
    dialog = open_dialog(store_root)
    dialog.no_limit.setChecked(True)  # no step-time calibration, the first event is a training step
    assert not dialog.budget.isEnabled() and dialog.budget_s() is None
    dialog.extra_args.setText("--from lite_medsam --stages 1 --epochs 50 --batch-size 2")  # full profile: resumable
    assert dialog.start()
    assert "--time-budget" not in dialog.process.request.arguments()
    out_dir = dialog.process.request.out_dir
    wait_for(qtbot, dialog, lambda: any(e.stage == "stage1" for e in dialog.events) or dialog.state != "running")
    assert dialog.state == "running", visible_text(dialog)
    dialog.cancel_button.click()
    assert dialog.state == "cancelling" and dialog.cancel_button.text() == "Stop now"
    wait_for(qtbot, dialog, lambda: dialog.state != "cancelling")

    assert dialog.state == "cancelled", visible_text(dialog)
    assert dialog.outcome.exit_code == 130  # the engine's graceful cancel, not a kill
    assert "Training cancelled" in dialog.result_label.text()
    assert "Traceback" not in visible_text(dialog)
    assert dialog.resume_button.isVisible() and dialog.resume_button.isEnabled()
    assert not dialog.use_button.isVisible() and dialog.close_button.isEnabled()
    resume = dialog.build_request(resume=True)
    assert resume.out_dir == out_dir and "--resume" in resume.arguments()
    assert any(out_dir.iterdir())  # the checkpoint the engine kept

    # "later": a new dialog (say, after restarting the viewer) still offers to resume that run
    from core.store import AnnotationStore

    with AnnotationStore(store_root) as store:
        again = TrainingDialog(store, viewer_settings)
        assert again.resume_button.isVisibleTo(again) and again.build_request(resume=True).out_dir == out_dir
        again.deleteLater()



def wait_for(qtbot, dialog, condition, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Wait (processing Qt events: the engine's output arrives through them); on timeout say what is shown."""
    try:
        qtbot.waitUntil(condition, timeout=timeout_ms)
    except qtbot.TimeoutError:
        raise AssertionError(f"timed out; the dialog shows:\n{visible_text(dialog)}") from None


def test_the_dialog_closes_with_close_escape_and_the_window_button(qtbot, open_dialog, tmp_path):
    dialog = open_dialog(make_store(tmp_path / "store", REVIEWED))
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    dialog.show()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    dialog.show()
    assert dialog.close() and not dialog.isVisible()  # what the window manager's close button does
