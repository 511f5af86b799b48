"""``adaqat train`` in a child process, observed through QProcess.

Training runs in its own Python process (``sys.executable -m core.cli train … --progress-json``; in the
PyInstaller bundle ``sys.executable --engine train …``, see ``core.bundle``):
its GPU memory, its threads and any crash stay out of the viewer. This module only builds the
command line, turns the engine's JSON lines into ``ProgressEvent`` objects, and classifies the way
the process ended; all training logic is the engine's.

Engine contract (``core/cli/train_command.py``): one JSON object per stdout line (the fields of
``ProgressEvent``, then ``{"stage": "done", "kind": "fp32"|"int8", "path": …}`` per model written,
then ``{"stage": "comparison", "better": …}`` when the run compared its model with the active one;
``--estimate`` prints one ``{"stage": "estimate", "total_s": …, "summary": …}`` line instead);
human-readable warnings and errors on stderr (``error: …`` lines are the failure reason); exit status
0 ok, 2 bad input, 3 diverged, 4 out of memory, 130 cancelled. SIGTERM cancels between steps and keeps the last
epoch checkpoint, which ``--resume`` continues from.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from core.bundle import engine_prefix
from core.training.exit_codes import (  # noqa: F401  (re-exported for the dialog)
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_DIVERGED,
    EXIT_OK,
    EXIT_OUT_OF_MEMORY,
)
from core.training.progress import ProgressEvent

log = logging.getLogger(__name__)

KILL_AFTER_MS = 120_000  # a cancelled run finishes its current step first; a CPU step can take a while
MAX_STDERR_LINES = 4000
_EVENT_FIELDS = {f.name for f in fields(ProgressEvent)}


@dataclass
class TrainingRequest:
    """Everything one ``adaqat train`` run needs; ``arguments()`` is its command line."""

    store_dir: Path
    out_dir: Path
    time_budget_s: float | None = 15 * 60
    device: str = "cpu"
    threads: int = 0  # 0: leave torch's default
    stages: str = "both"
    resume: bool = False
    from_model: str | None = None  # the model to continue (the viewer's model); None: the engine's active one
    estimate: bool = False  # only measure and print the plan (``--estimate``)
    extra_args: list[str] = field(default_factory=list)  # advanced engine options, appended last (they win)

    def arguments(self) -> list[str]:
        args = [*engine_prefix(), "train", "--data", str(self.store_dir), "--out", str(self.out_dir),
                "--stages", self.stages, "--progress-json", "--device", self.device]
        if self.from_model:
            args += ["--from", str(self.from_model)]
        if self.estimate:
            args.append("--estimate")
        if self.time_budget_s:
            args += ["--time-budget", f"{float(self.time_budget_s):g}"]
        if self.threads > 0:
            args += ["--threads", str(int(self.threads))]
        if self.resume:
            args.append("--resume")
        return args + list(self.extra_args)

    def command_text(self) -> str:
        return shlex.join(["adaqat", *self.arguments()[len(engine_prefix()):]])


def parse_extra_args(text: str) -> list[str]:
    """Split the 'advanced options' field like a shell would; ValueError names the problem."""
    try:
        return shlex.split(text)
    except ValueError as error:
        raise ValueError(f"advanced options: {error}") from None


@dataclass
class TrainingOutcome:
    """How a run ended. ``state``: "succeeded", "cancelled" or "failed"."""

    state: str
    exit_code: int | None
    models: dict[str, str]  # kind ("fp32"/"int8") -> model directory, from the engine's "done" lines
    error: str = ""  # the engine's last "error:" line (without the prefix), else a one-line summary
    out_dir: str = ""
    comparison: dict | None = None  # the run's held-out comparison with the active model
    estimate: dict | None = None  # the plan an ``--estimate`` run printed

    @property
    def better(self) -> bool:
        """Offered for activation only when the run showed it beats the active model."""
        return bool(self.comparison and self.comparison.get("better"))

    @property
    def model_path(self) -> str | None:
        """The model to use: INT8 when stage 2 produced one, else FP32."""
        return self.models.get("int8") or self.models.get("fp32")


class TrainingProcess(QObject):
    """One training run at a time. Signals arrive on the GUI thread; nothing here blocks it."""

    started = Signal()
    progress = Signal(object)  # ProgressEvent
    model_written = Signal(str, str)  # kind, path
    log_line = Signal(str)  # stdout lines that are not JSON, stderr lines (warnings, errors)
    finished = Signal(object)  # TrainingOutcome

    def __init__(self, parent: QObject | None = None, python: str | None = None) -> None:
        super().__init__(parent)
        self.python = python or sys.executable
        self.request: TrainingRequest | None = None
        self._process: QProcess | None = None
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self._stderr_lines: list[str] = []
        self._models: dict[str, str] = {}
        self._reports: dict[str, dict] = {}
        self._cancel_requested = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)

    # -- state ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    @property
    def stderr_text(self) -> str:
        return "\n".join(self._stderr_lines)

    # -- control ----------------------------------------------------------------------------------
    def start(self, request: TrainingRequest) -> None:
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self.request = request
        self._stdout_buffer = self._stderr_buffer = b""
        self._stderr_lines = []
        self._models = {}
        self._reports = {}
        self._cancel_requested = False
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        environment.insert("PYTHONIOENCODING", "utf-8")
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        process.started.connect(self.started)
        self._process = process
        log.info("starting training: %s", request.command_text())
        process.start(self.python, request.arguments())

    def cancel(self) -> None:
        """Ask the engine to stop between steps (SIGTERM); it keeps the last epoch's checkpoint.

        If it has not stopped after ``KILL_AFTER_MS`` it is killed (the checkpoint on disk is still
        the last complete one: the engine replaces it atomically).
        """
        if not self.running:
            return
        self._cancel_requested = True
        self._process.terminate()
        self._kill_timer.start(KILL_AFTER_MS)

    def kill(self) -> None:
        """Stop at once (the user asked twice, or SIGTERM went unanswered)."""
        if self.running:
            self._cancel_requested = True
            self._process.kill()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the process ends (only for shutdown and tests)."""
        if self._process is None:
            return True
        return self._process.waitForFinished(timeout_ms) or not self.running

    def shutdown(self, timeout_ms: int = 20_000) -> None:
        """The viewer is closing: cancel gracefully, then kill; never leave an orphan process."""
        process = self._process
        if process is None or not self.running:
            return
        self.cancel()
        if not process.waitForFinished(timeout_ms) and process.state() != QProcess.ProcessState.NotRunning:
            process.kill()
            process.waitForFinished(5_000)

    # -- output ---------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self._process is None:
            return
        self._stdout_buffer += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for line in lines:
            self._handle_stdout_line(line.decode("utf-8", "replace").strip())

    def _read_stderr(self) -> None:
        if self._process is None:
            return
        self._stderr_buffer += bytes(self._process.readAllStandardError())
        *lines, self._stderr_buffer = self._stderr_buffer.split(b"\n")
        for line in lines:
            self._handle_stderr_line(line.decode("utf-8", "replace"))

    def _handle_stdout_line(self, line: str) -> None:
        if not line:
            return
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or "stage" not in data:
            self.log_line.emit(line)
            return
        if data["stage"] in ("comparison", "estimate"):
            self._reports[data["stage"]] = data
            return
        if data["stage"] == "done":
            kind, path = str(data.get("kind", "")), str(data.get("path", ""))
            self._models[kind] = path
            self.model_written.emit(kind, path)
            return
        try:
            event = ProgressEvent(**{k: v for k, v in data.items() if k in _EVENT_FIELDS})
        except TypeError:  # a field is missing: show the line rather than guess
            self.log_line.emit(line)
            return
        self.progress.emit(event)

    def _handle_stderr_line(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if "\r" in line:  # progress-bar style redraws: keep the last state only
            line = line.rsplit("\r", 1)[-1]
        if not line.strip():
            return
        self._stderr_lines.append(line)
        if len(self._stderr_lines) > MAX_STDERR_LINES:
            del self._stderr_lines[: len(self._stderr_lines) - MAX_STDERR_LINES]
        self.log_line.emit(line)

    # -- end --------------------------------------------------------------------------------------
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish(TrainingOutcome("failed", None, {}, f"could not start the training engine ({self.python}): "
                                         f"{self._process.errorString()}", self._out_dir()))

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        stdout_rest, stderr_rest = self._stdout_buffer, self._stderr_buffer  # last lines without a newline
        self._stdout_buffer = self._stderr_buffer = b""
        self._handle_stdout_line(stdout_rest.decode("utf-8", "replace").strip())
        self._handle_stderr_line(stderr_rest.decode("utf-8", "replace"))
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        code = None if crashed else int(exit_code)
        models = dict(self._models)
        error = self._failure_reason()
        if code == EXIT_OK and self.request is not None and self.request.estimate and "estimate" in self._reports:
            outcome = TrainingOutcome("estimated", code, {}, "", self._out_dir(), estimate=self._reports["estimate"])
        elif code == EXIT_OK and models:
            outcome = TrainingOutcome("succeeded", code, models, "", self._out_dir(),
                                      comparison=self._reports.get("comparison"))
        elif code == EXIT_CANCELLED or (self._cancel_requested and code != EXIT_OK):
            outcome = TrainingOutcome("cancelled", code, models, error, self._out_dir())
        elif code == EXIT_OK:
            outcome = TrainingOutcome("failed", code, models, "the engine finished without writing a model",
                                      self._out_dir())
        else:
            if not error:
                error = ("the training process stopped unexpectedly" if crashed
                         else f"the training engine failed (exit status {code})")
            outcome = TrainingOutcome("failed", code, models, error, self._out_dir())
        self._finish(outcome)

    def _failure_reason(self) -> str:
        """The last ``error:`` line; else the last line of an uncaught exception (never the traceback)."""
        for line in reversed(self._stderr_lines):
            if line.startswith("error:"):
                return line[len("error:"):].strip()
        in_traceback = any(line.startswith("Traceback (most recent call last)") for line in self._stderr_lines)
        if in_traceback:
            for line in reversed(self._stderr_lines):
                if line.strip() and not line.startswith((" ", "\t")):
                    return line.strip()
        return ""

    def _out_dir(self) -> str:
        return str(self.request.out_dir) if self.request else ""

    def _finish(self, outcome: TrainingOutcome) -> None:
        self._kill_timer.stop()
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        self.finished.emit(outcome)
