"""Tools > Fine-tune model…: train the model on the images this clinic reviewed.

The dialog collects a few options, runs ``adaqat train`` on the annotation store in a child process
(``training_process``), continuing from the viewer's current model, shows its progress, and offers
the new model only when the engine's held-out comparison says it beats the current one. "Estimate
time" runs the engine's ``--estimate`` (a short measured step) so the whole-run plan is seen before
Start. It holds no training logic: which images are used, the plan for the time budget,
checkpoints, INT8 export and the comparison are the engine's. Failures are shown as the engine's one-line ``error:``
message inside the dialog, never as a traceback.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QFontDatabase, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.store import AnnotationStore, StoreError
from core.training.comparison import describe_comparison
from core.training.store_source import TRAINING_STATUSES

from ..services.settings import Settings
from .settings_dialog import form_row
from ..services.training_process import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_OUT_OF_MEMORY,
    TrainingOutcome,
    TrainingProcess,
    TrainingRequest,
    parse_extra_args,
)

MIN_IMAGES = 2
EXPECTED_PENDING = ("shown after stage 1 (the gain on the images set aside to choose the epoch), then the real "
                    "gain on the held-out images")
DEFAULT_BUDGET_MIN = 15
RESUME_KEY = "training/resume_dir"  # a cancelled run that "Resume" continues, across viewer sessions
LOG_FILE = "training-log.txt"
STAGE_TITLES = {
    "prepare": "Preparing the images",
    "stage1": "Stage 1 · fine-tuning (AdaLoRA)",
    "stage2": "Stage 2 · INT8 quantisation-aware training",
}
STAGE_PREFIX = {"stage1": "Stage 1: ", "stage2": "Stage 2: "}
STYLE = """
QLabel#resultLabel[tone="ok"] {{ color: {ok}; }}
QLabel#resultLabel[tone="error"], QLabel#countLabel[tone="error"] {{ color: {error}; }}
QLabel#resultLabel[tone="note"] {{ color: {note}; }}
QLabel#stageLabel {{ font-weight: 600; }}
QPushButton[primary="true"]:enabled {{ background: #2f5d8a; border: 1px solid #3f74a8; color: white; }}
"""
DARK_TONES = {"ok": "#8fd19e", "error": "#ff8a80", "note": "#e6c46a"}  # the viewer's dark theme
LIGHT_TONES = {"ok": "#1e7b34", "error": "#b3261e", "note": "#8a6100"}  # a light desktop palette


# -- helpers the dialog and tests share --------------------------------------------------------------
def reviewed_image_count(store: AnnotationStore) -> int:
    """Images the engine trains on: reviewed as accepted or corrected, with a stored mask."""
    return sum(1 for record in store.list_images() if record.status in TRAINING_STATUSES and record.has_mask)


def models_root(store_root: Path) -> Path:
    """Where fine-tuned models go: ``models/`` next to the store (the app's data folder by default)."""
    return Path(store_root).expanduser().resolve().parent / "models"


def new_output_dir(store_root: Path) -> Path:
    return models_root(store_root) / f"finetune-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"about {seconds} s left in this stage"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left in this stage"
    return f"about {minutes // 60} h {minutes % 60:02d} min left in this stage"


def model_card_dice(model_dir: str) -> tuple[str, float | None]:
    """(precision, validation Dice) recorded in the model's card (the INT8 card's QAT value when present)."""
    from core.models.card import read_model_card
    from core.models.errors import ModelLoadError

    try:
        card = read_model_card(model_dir)
    except ModelLoadError:
        return "", None
    return card.precision, card.validation_dice


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def estimate_text(estimate: dict, budget_s: float | None) -> str:
    """One sentence for the engine's ``--estimate`` plan."""
    total = float(estimate.get("total_s", 0.0))
    text = (f"about {_minutes(total)} for the whole run on this computer (stage 1 {estimate.get('stage1_epochs', '?')} "
            f"epochs, stage 2 {estimate.get('stage2_epochs', '?')} epochs")
    return text + (f"; budget {_minutes(budget_s)})" if budget_s else ")")


def comparison_text(comparison: dict) -> str:
    """The held-out comparison in words: which images (corrected ones decide; accepted ones apart), both
    Dice values, the difference, the Wilcoxon p, the per-image wins and losses and the images that got worse."""
    old, new = comparison["active_model"]["dice_mean"], comparison["new_model"]["dice_mean"]
    p = comparison.get("wilcoxon_p")
    p_text = f", paired Wilcoxon p = {p:.3g}" if isinstance(p, (int, float)) and math.isfinite(p) else ""
    head = (f"Training finished. On {comparison['images']} held-out reviewed images (automatic mode): current model "
            f"Dice {old:.4f}, new model Dice {new:.4f} (difference {new - old:+.4f}{p_text}).")
    details = describe_comparison(comparison).split("\n")[1:]  # per image, worse images by file, accepted apart
    return "\n".join([head, *details])


class TrainingDialog(QDialog):
    """Non-modal: the annotator may keep reviewing while a run goes on (one run at a time)."""

    model_chosen = Signal(str)  # a model directory the viewer should switch to

    def __init__(self, store: AnnotationStore | Callable[[], AnnotationStore], settings: Settings,
                 parent: QWidget | None = None, python: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune model")
        dark = self.palette().color(self.backgroundRole()).lightness() < 128
        self.setStyleSheet(STYLE.format(**(DARK_TONES if dark else LIGHT_TONES)))
        self._store = store if callable(store) else (lambda: store)
        self.settings = settings
        self.process = TrainingProcess(self, python)
        self.state = "idle"
        self.count = 0
        self.events: list = []  # every ProgressEvent shown in this run (tests and the summary use them)
        self.outcome: TrainingOutcome | None = None
        self.result_path: str | None = None
        self._val_dice: dict[str, float] = {}
        self._detail_parts: list[str] = []  # epoch, loss, val Dice of the latest event (without the ETA)
        self._auto_out: Path | None = None
        self._close_when_finished = False
        self._resume_dir: Path | None = self._saved_resume_dir()
        self._estimate_fits = True  # an estimate over the budget keeps Start off until the budget changes
        self._not_better_path: str | None = None  # a finished run's model that may still be tried, with a warning
        self._build()
        self.process.started.connect(lambda: self.stage_label.setText("Loading the training engine and the images…"))
        self.process.progress.connect(self._on_progress)
        self.process.log_line.connect(self._on_log_line)
        self.process.model_written.connect(lambda kind, path: self.append_log(f"{kind.upper()} model written: {path}"))
        self.process.finished.connect(self._on_finished)
        self.refresh_count()
        self._set_state("idle")

    # -- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        intro = QLabel("Fine-tune the lung model on the images reviewed in this clinic "
                       "(masks marked accepted or corrected). The current model is not changed until "
                       "you choose to use the new one.")
        intro.setWordWrap(True)
        self.count_label = QLabel()
        self.count_label.setObjectName("countLabel")
        self.count_label.setWordWrap(True)
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.budget = QSpinBox()
        self.budget.setRange(1, 24 * 60)  # "no limit" is a separate, deliberate choice, never one click below 1 min
        self.budget.setValue(DEFAULT_BUDGET_MIN)
        self.budget.setSuffix(" min")
        self.budget.setToolTip("The whole run (preparation, both stages, INT8 export and the comparison with "
                               "the current model) is planned to finish in about this time on this computer.")
        self.budget.valueChanged.connect(lambda _value: self._clear_estimate())
        self.no_limit = QCheckBox("No time limit (all epochs; may take hours)")
        self.no_limit.toggled.connect(self.budget.setDisabled)
        self.no_limit.toggled.connect(lambda _on: self._clear_estimate())
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        if _cuda_available():
            self.device.addItem("GPU (CUDA)", "cuda")
        index = self.device.findData(self.settings.device())
        self.device.setCurrentIndex(max(0, index))
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, os.cpu_count() or 1))
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(min(self.settings.threads(), self.threads.maximum()))
        self.threads.setToolTip("CPU threads the training may use (fewer keeps the computer responsive)")
        self.out_dir = QLineEdit()
        self.out_dir.setToolTip("A new, empty folder: the models, checkpoints and the training log go here")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_out)
        self.extra_args = QLineEdit()
        self.extra_args.setPlaceholderText("none (e.g. --epochs 10 --batch-size 4)")
        self.extra_args.setToolTip("Extra 'adaqat train' options for experts; they override the ones above")
        self._new_out_dir()

        options = QGroupBox("Options")
        form = QFormLayout(options)
        budget_row = QHBoxLayout()
        budget_row.addWidget(self.budget)
        budget_row.addWidget(self.no_limit, 1)
        form.addRow("Time budget:", budget_row)
        form.addRow("Device:", self.device)
        form.addRow("CPU threads:", self.threads)
        form.addRow("Output folder:", form_row(self.out_dir, browse))
        form.addRow("Advanced options:", self.extra_args)
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        self.estimate_label = QLabel("Not estimated yet: “Estimate time” measures a few steps on this computer.")
        self.estimate_label.setObjectName("estimateLabel")
        self.estimate_label.setWordWrap(True)
        form.addRow("Continues from:", self.base_label)
        form.addRow("Estimate:", self.estimate_label)
        self.expected_label = QLabel(EXPECTED_PENDING)
        self.expected_label.setObjectName("expectedLabel")
        self.expected_label.setWordWrap(True)
        form.addRow("Expected gain:", self.expected_label)
        self.options = options
        self._show_base_model()

        self.stage_label = QLabel("Not started")
        self.stage_label.setObjectName("stageLabel")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("%v / %m steps")
        self.detail_label = QLabel(" ")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(3000)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("Messages and warnings from the training engine appear here.")
        self.log.setMinimumHeight(110)
        progress = QGroupBox("Progress")
        box = QVBoxLayout(progress)
        box.addWidget(self.stage_label)
        box.addWidget(self.bar)
        box.addWidget(self.detail_label)
        box.addWidget(self.log, 1)

        self.result_label = QLabel()
        self.result_label.setObjectName("resultLabel")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.hide()

        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Make the new model the viewer's model (Settings > Model) and load it now")
        self.keep_button = QPushButton("Add to Models (not active)")
        self.keep_button.setToolTip("Install the new model without activating it, to try it from the Models window "
                                    "(which warns that it was not judged better)")
        self.keep_button.clicked.connect(self.keep_not_better_model)
        self.keep_button.setAutoDefault(False)
        self.keep_button.hide()
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the cancelled run from its last finished epoch")
        self.estimate_button = QPushButton("Estimate time")
        self.estimate_button.setToolTip("Measure a few training steps on this computer and show how the run "
                                        "would use the time budget (about half a minute)")
        self.estimate_button.clicked.connect(self.estimate)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.use_button.clicked.connect(self.use_model)
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.keep_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        for button in (self.estimate_button, self.start_button, self.cancel_button, self.close_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        self.use_button.setAutoDefault(False)
        self.resume_button.setAutoDefault(False)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.count_label)
        layout.addWidget(options)
        layout.addWidget(progress, 1)
        layout.addWidget(self.result_label)
        layout.addLayout(buttons)
        self.resize(680, 720)

    # -- options ----------------------------------------------------------------------------------
    def store_root(self) -> Path:
        return Path(self._store().root)

    def refresh_count(self) -> int:
        """Count the usable images now (the annotator may have reviewed more since the dialog opened)."""
        try:
            self.count = reviewed_image_count(self._store())
        except StoreError as error:
            self.count = 0
            self._set_count_text(f"The annotation store could not be read: {error}", error=True)
            return 0
        if self.count < MIN_IMAGES:
            self._set_count_text(self.too_few_message(), error=True)
        else:
            self._set_count_text(f"{self.count} reviewed images (accepted or corrected, with a mask) "
                                 f"will be used, from the store at {self.store_root()}.")
        if self.state == "idle":
            self.start_button.setEnabled(self.count >= MIN_IMAGES)
        return self.count

    def show_teaching_images(self, images: list[tuple[str, object]]) -> None:
        """Below the count: uncorrected images whose correction would teach the model most (least confident first)."""
        if not hasattr(self, "teach_label"):
            self.teach_label = QLabel()
            self.teach_label.setObjectName("teachLabel")
            self.teach_label.setWordWrap(True)
            layout = self.layout()
            layout.insertWidget(layout.indexOf(self.count_label) + 1, self.teach_label)
        lines = [f"{name} (confidence {quality.confidence:.2f}{', ' + quality.summary if quality.summary else ''})"
                 for name, quality in images]
        self.teach_label.setText("Correcting these unreviewed images first would teach the model most:\n• "
                                 + "\n• ".join(lines) if lines else "")
        self.teach_label.setVisible(bool(lines))

    def too_few_message(self) -> str:
        have = "no reviewed image" if self.count == 0 else f"only {self.count} reviewed image" + ("s" if self.count > 1 else "")
        return (f"Fine-tuning needs at least {MIN_IMAGES} reviewed images (accepted or corrected, with a mask); "
                f"the store has {have}. Review more images, then start again.")

    def _set_count_text(self, text: str, error: bool = False) -> None:
        self.count_label.setText(text)
        _set_tone(self.count_label, "error" if error else "")

    def _new_out_dir(self) -> None:
        self._auto_out = new_output_dir(self.store_root())
        self.out_dir.setText(str(self._auto_out))

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder for the new model", str(models_root(self.store_root())))
        if folder:
            self.out_dir.setText(folder)

    def base_model(self) -> str:
        """The model a run continues from: the one the viewer uses now."""
        return self.settings.model()

    def _show_base_model(self) -> None:
        model = self.base_model()
        shown = Path(model).name if Path(model).is_dir() else model
        self.base_label.setText(f"{shown} (the viewer's current model)")
        self.base_label.setToolTip(f"{model}\nIt stays active unless the new model scores better on held-out "
                                   "reviewed images.")

    def budget_s(self) -> float | None:
        """The whole run's time budget in seconds; None only when "No time limit" is ticked."""
        return None if self.no_limit.isChecked() else self.budget.value() * 60.0

    def _clear_estimate(self) -> None:
        self._estimate_fits = True
        if hasattr(self, "start_button"):
            self._set_state(self.state)
        self.estimate_label.setText("Not estimated yet: “Estimate time” measures a few steps on this computer.")

    def _saved_resume_dir(self) -> Path | None:
        value = str(self.settings.q.value(RESUME_KEY, "") or "")
        return Path(value) if value and Path(value).is_dir() else None

    def _remember_resume_dir(self, path: Path | None) -> None:
        self._resume_dir = path
        self.settings.q.setValue(RESUME_KEY, str(path) if path else "")
        self.settings.sync()

    # -- running ----------------------------------------------------------------------------------
    def build_request(self, resume: bool = False, estimate: bool = False) -> TrainingRequest:
        """The engine run the options describe; ValueError says what is wrong with them."""
        extra = parse_extra_args(self.extra_args.text())
        if estimate:
            out = Path(self.out_dir.text().strip() or str(models_root(self.store_root()))).expanduser()
        elif resume:
            if self._resume_dir is None:
                raise ValueError("there is no cancelled run to resume")
            out = self._resume_dir
        else:
            text = self.out_dir.text().strip()
            if not text:
                raise ValueError("choose an output folder")
            if self._auto_out is not None and text == str(self._auto_out):
                self._new_out_dir()  # a fresh timestamp for every run the user did not name
                text = self.out_dir.text()
            out = Path(text).expanduser()
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise ValueError(f"{out} is not an empty folder; choose a new one"
                                 + (" or resume the cancelled run" if self._resume_dir else ""))
        return TrainingRequest(
            store_dir=self.store_root(), out_dir=out, time_budget_s=self.budget_s(),
            device=str(self.device.currentData()), threads=self.threads.value(), resume=resume,
            from_model=self.base_model(), estimate=estimate, extra_args=extra)

    def _checked_request(self, verb: str, resume: bool = False, estimate: bool = False) -> TrainingRequest | None:
        """The request, or None with the reason shown (a run going on, too few images, bad options)."""
        if self.process.running:
            return None
        if self.refresh_count() < MIN_IMAGES:
            self._show_result(self.too_few_message(), "error")
            return None
        try:
            return self.build_request(resume, estimate)
        except ValueError as error:
            self._show_result(f"Cannot {verb}: {error}.", "error")
            return None

    def estimate(self) -> bool:
        """Run the engine's ``--estimate`` (writes nothing) and show the whole-run plan."""
        request = self._checked_request("estimate", estimate=True)
        if request is None:
            return False
        self.events.clear()
        self.result_label.hide()
        self.estimate_label.setText("Measuring a few steps on this computer…")
        self.append_log(f"Estimating: {request.command_text()}")
        self._set_state("estimating")
        self.process.start(request)
        return True

    def start(self, resume: bool = False) -> bool:
        """Start (or resume) a run; False with the reason shown when it cannot start."""
        request = self._checked_request("start", resume=resume)
        if request is None:
            return False
        self.events.clear()
        self._val_dice.clear()
        self._detail_parts = []
        self.outcome = None
        self.result_path = None
        self.result_label.hide()
        self.keep_button.hide()
        self._not_better_path = None
        self.expected_label.setText(EXPECTED_PENDING)
        self.bar.setRange(0, 0)  # busy until the engine reports steps
        self.detail_label.setText(" ")
        self.stage_label.setText("Starting the training engine…")
        if not resume:
            self.log.clear()
        self.append_log(("Resuming" if resume else "Started") + f": {request.command_text()}")
        self._set_state("running")
        self.process.start(request)
        return True

    def cancel(self) -> None:
        """First press: ask the engine to stop after the current step. Second press: stop at once."""
        if not self.process.running:
            return
        if self.state == "cancelling":
            self.append_log("Stopping the training process now.")
            self.process.kill()
            return
        self.append_log("Cancelling: the engine stops before its next step…")
        self.stage_label.setText("Cancelling…")
        self.detail_label.setText(" · ".join(self._detail_parts) or " ")  # no time left to show any more
        self.process.cancel()
        self._set_state("cancelling")

    def _on_progress(self, event) -> None:
        self.events.append(event)
        if event.message and event.message.startswith("expected gain:"):
            self.expected_label.setText(event.message.split(":", 1)[1].strip().split(" (")[0])
        if event.message:
            prefix = STAGE_PREFIX.get(event.stage, "")
            self.append_log(f"{prefix}{event.message}")
        cancelling = self.state == "cancelling"
        if event.stage == "prepare" or event.steps <= 0:
            if not cancelling:
                self.stage_label.setText(STAGE_TITLES["prepare"])
            return
        if event.val_dice is not None and math.isfinite(event.val_dice):
            self._val_dice[event.stage] = float(event.val_dice)
        if not cancelling:
            self.stage_label.setText(STAGE_TITLES.get(event.stage, event.stage))
        self.bar.setRange(0, max(1, int(event.steps)))
        self.bar.setValue(min(int(event.step), int(event.steps)))
        parts = [f"Epoch {event.epoch}/{event.epochs}"]
        if event.loss is not None and math.isfinite(event.loss):
            parts.append(f"loss {event.loss:.4f}")
        if event.stage in self._val_dice:
            parts.append(f"val Dice {self._val_dice[event.stage]:.4f}")
        self._detail_parts = parts
        eta = format_eta(event.eta_seconds)
        show_eta = eta and event.step < event.steps and not cancelling
        self.detail_label.setText(" · ".join(parts + ([eta] if show_eta else [])))

    def _on_log_line(self, line: str) -> None:
        # the log is for people: an uncaught exception's frames go to the log file, not the window
        if line.startswith(("Traceback (most recent call last)", " ", "\t")):
            return
        if self.process.cancel_requested and line.startswith("error:"):
            line = line[len("error:"):].strip()  # the engine reports the cancel it was asked for
        self.append_log(line)

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(text)
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    def _on_finished(self, outcome: TrainingOutcome) -> None:
        self.outcome = outcome
        if self.state == "estimating":
            self._show_estimate(outcome)
            self._set_state("idle")
            return
        if self.bar.maximum() == 0:  # still "busy": the engine never reported a step
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
        self._write_log_file(outcome)
        if outcome.state == "succeeded":
            self._show_success(outcome)
        elif outcome.state == "cancelled":
            self._show_cancelled(outcome)
        else:
            self._show_failure(outcome)
        self._set_state(outcome.state)
        if self._close_when_finished:
            self._close_when_finished = False
            self.close()

    def _show_estimate(self, outcome: TrainingOutcome) -> None:
        if outcome.state == "estimated" and outcome.estimate:
            text = estimate_text(outcome.estimate, self.budget_s())
            self._estimate_fits = bool(outcome.estimate.get("fits", True))
            if not self._estimate_fits:
                text = (f"Too long for the budget: {text}. Raise the budget to at least "
                        f"{math.ceil(float(outcome.estimate.get('total_s', 0)) / 60)} min, or review fewer images; "
                        "Start stays off until the budget changes.")
                self._set_state(self.state)
            self.estimate_label.setText(text)
            self.estimate_label.setToolTip(str(outcome.estimate.get("summary", "")))
            self.append_log(f"Estimate: {outcome.estimate.get('summary', text)}")
            return
        self.estimate_label.setText("The estimate could not be made (see the messages below).")
        self._show_failure(outcome)

    def _show_success(self, outcome: TrainingOutcome) -> None:
        self._remember_resume_dir(None)
        path = outcome.model_path
        if outcome.comparison is not None:
            self._show_comparison(outcome, path)
            return
        precision, dice = model_card_dice(path)
        if dice is None:  # the card lacks it: the last validation Dice the engine reported
            dice = next((self._val_dice[s] for s in ("stage2", "stage1") if s in self._val_dice), None)
        self.result_path = path
        kind = "INT8" if "int8" in outcome.models else "FP32"
        note = "" if kind == "INT8" else " (this run did not produce an INT8 model)"
        dice_text = f"{dice:.4f}" if dice is not None else "not measured"
        self.stage_label.setText("Finished")
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.detail_label.setText(f"Final validation Dice: {dice_text}")
        self._show_result(f"Training finished. {kind} model{note}:\n{path}\nValidation Dice: {dice_text} "
                          "(a full-profile run: not compared with the current model on held-out images)", "ok")

    def _show_comparison(self, outcome: TrainingOutcome, path: str) -> None:
        """Offer the new model only when it beat the current one on the same held-out images."""
        text = comparison_text(outcome.comparison)
        self.stage_label.setText("Finished")
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        new_dice = outcome.comparison["new_model"]["dice_mean"]
        self.detail_label.setText(f"Held-out Dice of the new model: {new_dice:.4f}")
        real = outcome.comparison.get("dice_difference_mean")
        if isinstance(real, float):
            self.expected_label.setText(f"expected {self.expected_label.text()}; real {real:+.4f} Dice on "
                                        f"{outcome.comparison['images']} held-out images")
        if outcome.better:
            self.result_path = path
            self._show_result(f"{text}\nThe new model is better. “Use this model” makes it the active model:\n{path}", "ok")
        else:
            self.result_path = None
            self._not_better_path = path
            self.keep_button.show()
            self.keep_button.setEnabled(True)
            self._show_result(f"{text}\nThe new model is not better, so the current model stays active. "
                              f"The run is kept for reference in:\n{path}", "note")

    def _show_cancelled(self, outcome: TrainingOutcome) -> None:
        finished_epochs = any(e.val_dice is not None for e in self.events)
        self._remember_resume_dir(Path(outcome.out_dir) if outcome.out_dir else None)
        self.stage_label.setText("Cancelled")
        if self._continuing_run():
            kept = "A clinic fine-tune is short: “Start again” runs it again from the beginning."
        else:
            kept = ("Finished epochs are kept; Resume continues from the last one."
                    if finished_epochs else "No epoch had finished yet, so Resume starts from the beginning.")
        self._show_result(f"Training cancelled. {kept}\n{outcome.out_dir}", "note")

    def _continuing_run(self) -> bool:
        """A run that continued a model (tail or decoder profile): the engine says so first, and starts such
        a run again on --resume instead of reusing finished epochs."""
        return any(e.message.startswith("continuing from") for e in self.events if e.message)

    def _show_failure(self, outcome: TrainingOutcome) -> None:
        reason = outcome.error or "unknown error"
        if outcome.exit_code == EXIT_BAD_INPUT:
            text = f"The training data or options were not usable: {reason}"
        elif outcome.exit_code == EXIT_DIVERGED:
            text = f"Training stopped because it diverged: {reason}"
        elif outcome.exit_code == EXIT_OUT_OF_MEMORY:
            text = f"Training ran out of memory: {reason}"
        else:
            text = f"Training failed: {reason}"
        fallback = self._stage1_model_after_failure(outcome)
        if fallback:
            self.result_path = fallback
            _, dice = model_card_dice(fallback)
            dice_text = f", validation Dice {dice:.4f}" if dice is not None else ""
            text += f"\nThe stage 1 (FP32) model was saved before the failure and can be used{dice_text}:\n{fallback}"
        if outcome.out_dir and (Path(outcome.out_dir) / LOG_FILE).is_file():
            text += f"\nDetails: {Path(outcome.out_dir) / LOG_FILE}"
        self.stage_label.setText("Failed")
        self.detail_label.setText(" · ".join(self._detail_parts) or " ")
        self._show_result(text, "error")

    def _stage1_model_after_failure(self, outcome: TrainingOutcome) -> str | None:
        """Stage 2 failed after stage 1 wrote its model: that model is still good to use."""
        if outcome.models.get("fp32"):
            return outcome.models["fp32"]
        if not outcome.out_dir or not any(e.stage == "stage2" for e in self.events):
            return None
        from core.training.config import FP32_DIR

        candidate = Path(outcome.out_dir) / FP32_DIR
        return str(candidate) if (candidate / "model.json").is_file() else None

    def _write_log_file(self, outcome: TrainingOutcome) -> None:
        """Everything the engine said (tracebacks included), for support; the window shows the summary."""
        if not outcome.out_dir or not Path(outcome.out_dir).is_dir():
            return
        request = self.process.request
        lines = [f"[{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}] {request.command_text() if request else ''}",
                 f"result: {outcome.state} (exit status {outcome.exit_code}) {outcome.error}".rstrip(),
                 self.process.stderr_text, ""]
        try:
            with open(Path(outcome.out_dir) / LOG_FILE, "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        except OSError:
            pass

    # -- result ---------------------------------------------------------------------------------
    def use_model(self) -> None:
        """Make the new model the viewer's default and ask the viewer to load it."""
        if not self.result_path:
            return
        from core.models.catalog import activate_model_dir

        try:  # a copy in the user's models folder: deleting the run folder cannot break the viewer
            installed = str(activate_model_dir(self.result_path))
        except (OSError, ValueError) as error:
            self._show_result(f"Could not install the new model: {error}", "error")
            return
        self.result_path = installed
        self.settings.set_model(installed)
        self.settings.sync()
        self._show_base_model()
        self.model_chosen.emit(installed)
        self.use_button.setEnabled(False)
        self.result_label.setText(self.result_label.text() + "\nThe viewer now uses this model (Settings > Model).")

    def keep_not_better_model(self) -> None:
        """Install a model its run did not judge better, inactive: trying it stays a deliberate, warned step."""
        if not self._not_better_path:
            return
        from core.models.catalog import install_model

        try:
            installed = install_model(self._not_better_path)
        except (OSError, ValueError) as error:
            self._show_result(f"Could not add the model: {error}", "error")
            return
        self.keep_button.setEnabled(False)
        self.result_label.setText(self.result_label.text() + f"\nAdded to the Models window, not active:\n{installed}\n"
                                  "Activating it there asks first, because it was not better on the held-out images.")

    def _show_result(self, text: str, tone: str) -> None:
        self.result_label.setText(text)
        _set_tone(self.result_label, tone)
        self.result_label.show()

    def _set_state(self, state: str) -> None:
        self.state = state
        running = state in ("running", "cancelling", "estimating")
        self.options.setEnabled(not running)
        self.start_button.setEnabled(not running and self.count >= MIN_IMAGES and self._estimate_fits)
        self.start_button.setText("Start new run" if state in ("succeeded", "failed", "cancelled") else "Start")
        _set_primary(self.start_button, state == "idle")
        _set_primary(self.use_button, bool(self.result_path))
        self.estimate_button.setEnabled(not running and self.count >= MIN_IMAGES)
        self.cancel_button.setEnabled(running)
        self.cancel_button.setText("Stop now" if state == "cancelling" else "Cancel")
        self.close_button.setEnabled(not running)
        self.use_button.setVisible(bool(self.result_path) and not running)
        self.use_button.setEnabled(bool(self.result_path))
        self.resume_button.setVisible(self._resume_dir is not None and not running)
        self.resume_button.setEnabled(self.count >= MIN_IMAGES)
        if self._resume_dir is not None:
            again = self._continuing_run()
            self.resume_button.setText("Start again" if again else "Resume")
            self.resume_button.setToolTip(f"Run the cancelled clinic fine-tune in {self._resume_dir} again from the start"
                                          if again else
                                          f"Continue the cancelled run in {self._resume_dir} from its last finished epoch")

    # -- closing ----------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        if not self.process.running:
            self.refresh_count()
        super().showEvent(event)

    def reject(self) -> None:
        """Escape, Close and the window's close button all end here (QDialog.closeEvent calls reject)."""
        if self.process.running:
            self._ask_to_stop()
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.process.running:
            event.ignore()
            self._ask_to_stop()
            return
        super().closeEvent(event)

    def _ask_to_stop(self) -> None:
        answer = QMessageBox.question(
            self, "Fine-tune model",
            "Training is running. Stop it?\n\nThe current model stays as it is; you can run the fine-tune again later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self._close_when_finished = True
            self.cancel()

    def shutdown(self) -> None:
        """The viewer is closing: stop a running engine (gracefully, then by force)."""
        self.process.shutdown()


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install must not keep the dialog from opening
        return False


def _set_tone(label: QLabel, tone: str) -> None:
    label.setProperty("tone", tone)
    label.style().unpolish(label)
    label.style().polish(label)



def _set_primary(button: QPushButton, primary: bool) -> None:
    """The one button the user most likely wants next is highlighted."""
    if button.property("primary") != primary:
        button.setProperty("primary", primary)
        button.style().unpolish(button)
        button.style().polish(button)
