"""Privacy and offline operation, end to end, on a real radiograph carrying a patient's identifiers.

The DICOM is RG1_UNCR.dcm with PatientName "Doe^Jane", PatientID "PID-12345" and PatientBirthDate
"19600101". None of them (nor "Doe" or "Jane" alone) may appear in what leaves the annotation store:

- ``adaqat -v segment`` (stdout, stderr with INFO logging, the mask), run as a user runs it, in a
  process whose sockets are disabled by its own guard (the explicit offline test);
- the viewer opening the file (every log record, stdout/stderr, the settings file), a crash report
  from the viewer's exception hook while the patient is open, and the viewer's CSV export;
- the lines the training engine prints about reviewed images it cannot use.

tests/test_export.py already checks the store's CSV export, the PNG mask and that DICOM SEG export
copies the source's patient/study identifiers and invents none; tests/test_app_settings.py the
exception hook on its own.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QTimer

from tests.shared_data import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
PHI = ("Doe^Jane", "PID-12345", "19600101")
SECRETS = (*PHI, "Doe", "Jane", "1960-01-01", "01/01/1960")


def assert_no_phi(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} found in {where}"


def write_phi_dicom(path: Path) -> Path:
    source = shared_data_dir() / "dicom" / "RG1_UNCR.dcm"
    if not source.is_file():
        pytest.skip(f"shared DICOM not found: {source} (set ADAQAT_SHARED_DATA)")
    ds = pydicom.dcmread(source)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI
    ds.save_as(path)
    return path


@pytest.fixture
def phi_dicom(tmp_path) -> Path:
    return write_phi_dicom(tmp_path / "chest.dcm")


# --- adaqat segment, offline, with its logs -------------------------------------------------------

OFFLINE_SITECUSTOMIZE = textwrap.dedent(
    '''
    """Installed by tests/test_reliability_privacy.py: this interpreter has no network at all."""
    import os, socket

    _LOG = os.environ["OFFLINE_GUARD_LOG"]

    def _note(line):
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(line + "\\n")

    def _refuse(what):
        def refuse(*args, **kwargs):
            _note(f"attempt {what} {args[1:2] or args[:1]!r}")
            raise OSError(f"network disabled by the offline test: {what}")
        return refuse

    _create = socket.socket.__init__

    def _init(self, family=-1, *args, **kwargs):
        if family in (socket.AF_INET, socket.AF_INET6):
            _note(f"attempt socket() family {family}")
            raise OSError("network disabled by the offline test: socket()")
        _create(self, family, *args, **kwargs)

    socket.socket.__init__ = _init
    for name in ("connect", "connect_ex", "bind", "sendto"):
        setattr(socket.socket, name, _refuse("socket." + name))
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "create_connection"):
        setattr(socket, name, _refuse("socket." + name))
    _note(f"guard installed in pid {os.getpid()}")
    '''
)


@functools.lru_cache(maxsize=1)
def offline_segment_run() -> tuple[subprocess.CompletedProcess, str, Path]:
    """``adaqat -v segment chest.dcm --json`` once, with sockets disabled in the engine's process."""
    work = Path(tempfile.mkdtemp(prefix="adaqat-offline-"))
    dicom = write_phi_dicom(work / "chest.dcm")
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(OFFLINE_SITECUSTOMIZE, encoding="utf-8")
    log = work / "guard.log"
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(guard), str(REPO)]), OFFLINE_GUARD_LOG=str(log))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy"):
        env.pop(proxy, None)
    result = subprocess.run([sys.executable, "-m", "core.cli", "-v", "segment", str(dicom), "--out",
                             str(work / "masks"), "--json", "--threads", "2"],
                            cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600)
    return result, log.read_text(encoding="utf-8") if log.exists() else "", work


def test_segment_runs_with_networking_disabled():
    result, guard_log, work = offline_segment_run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "guard installed" in guard_log  # the guard really ran in the engine's process
    assert "attempt" not in guard_log, guard_log
    mask = cv2.imread(str(work / "masks" / "chest.png"), cv2.IMREAD_UNCHANGED)
    assert mask is not None and mask.shape == (1955, 1841) and 0.15 < (mask > 0).mean() < 0.6


def test_segment_output_and_verbose_logs_carry_no_identifiers():
    result, _, work = offline_segment_run()
    assert result.returncode == 0
    assert_no_phi(result.stdout, "adaqat segment stdout")
    assert_no_phi(result.stderr, "adaqat -v segment stderr")
    assert [p.name for p in (work / "masks").iterdir()] == ["chest.png"]


# --- the viewer -----------------------------------------------------------------------------------


@pytest.mark.qt_no_exception_capture  # the viewer's own exception hook must see the error, not pytest-qt's
def test_viewer_logs_crash_report_and_csv_carry_no_identifiers(qtbot, make_window, phi_dicom, tmp_path, caplog,
                                                              capfd, viewer_settings):
    from app.excepthook import install_excepthook

    caplog.set_level(logging.DEBUG)
    window = make_window()
    window.open_paths([phi_dicom])
    qtbot.waitUntil(lambda: window.document.mask is not None and window.document.path == phi_dicom, timeout=60_000)
    study = window.document.study
    assert study.identifiers.patient_name == "Doe^Jane"  # the viewer does hold them, in memory and the store

    # a crash while this patient is open: an error whose message quotes the patient, in a Qt slot
    shown = []
    previous = install_excepthook(shown.append)
    try:
        def failing_slot():
            ids = study.identifiers
            raise ValueError(f"cannot process {ids.patient_name} {ids.patient_id} born {ids.patient_birth_date}")

        QTimer.singleShot(0, failing_slot)
        qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    finally:
        sys.excepthook = previous
    assert "ValueError" in caplog.text and "failing_slot" in caplog.text  # the crash report has the code path

    window.set_review("accepted", note="left base clear")
    csv_path = window.exports.export_csv(tmp_path / "review.csv")
    png_path = window.exports.export_png(tmp_path / "mask.png")
    assert csv_path is not None and png_path is not None
    window.close()
    viewer_settings.sync()

    captured = capfd.readouterr()
    assert_no_phi(caplog.text, "the viewer's log records")
    assert_no_phi(captured.out + captured.err, "the viewer's stdout/stderr")
    assert_no_phi(" ".join(shown), "the crash message shown to the user")
    assert_no_phi(csv_path.read_text(encoding="utf-8-sig"), "the viewer's CSV export")
    assert "chest.dcm" in csv_path.read_text(encoding="utf-8-sig")
    settings_file = tmp_path / "viewer.ini"  # the viewer_settings fixture's file (ADAQAT_SETTINGS)
    assert settings_file.is_file()
    assert_no_phi(settings_file.read_text(errors="replace"), "the viewer's settings file")
    assert cv2.imread(str(png_path), cv2.IMREAD_UNCHANGED).shape == (1955, 1841)


def test_training_engine_messages_about_a_patient_image_carry_no_identifiers(tmp_path, phi_dicom, caplog):
    """``adaqat train --data STORE`` prints one line per reviewed image it cannot use; the viewer's
    training dialog writes those lines to its log file."""
    from core.io import load_study
    from core.store import AnnotationStore
    from core.training.store_source import examples_from_store

    caplog.set_level(logging.DEBUG)
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(load_study(phi_dicom)).key
        store.set_review(key, "accepted", reader="r")  # reviewed, but no mask
    _, problems = examples_from_store(tmp_path / "store", 256)
    phi_dicom.write_bytes(b"not a dicom any more")
    with AnnotationStore(tmp_path / "store") as store:
        mask = np.zeros((1955, 1841), np.uint8)
        mask[500:900, 300:800] = 255
        store.save_mask(key, mask, source="edit", reader="r")
    _, more = examples_from_store(tmp_path / "store", 256)  # the file became unreadable
    problems += more
    assert len(problems) == 2 and "no mask" in problems[0] and "not a DICOM file" in problems[1]
    assert_no_phi("\n".join(problems) + caplog.text, "the training engine's messages")


def test_reader_messages_about_a_damaged_patient_file_carry_no_identifiers(tmp_path, phi_dicom, caplog):
    """Damage around the patient module (VRs, lengths, values of the identifier elements, cuts inside
    them): every refusal and warning the reader produces still names no identifier."""
    import random

    from core.io import StudyReadError, load_study

    caplog.set_level(logging.DEBUG)
    data = phi_dicom.read_bytes()
    header_end = data.rfind(b"\xe0\x7f\x10\x00")
    targets = [data.find(tag) for tag in (b"\x10\x00\x10\x00", b"\x10\x00\x20\x00", b"\x10\x00\x30\x00")]
    assert all(0 < at < header_end for at in targets)
    rng = random.Random(11)
    messages = []
    for case in range(60):
        mutated = bytearray(data)
        at = rng.choice(targets)
        how = case % 4
        if how == 0:  # a wrong VR
            mutated[at + 4 : at + 6] = rng.choice([b"SQ", b"UN", b"OB", b"US", b"\x00\x00"])
        elif how == 1:  # a wrong length
            mutated[at + 6 : at + 8] = rng.getrandbits(16).to_bytes(2, "little")
        elif how == 2:  # bytes flipped anywhere in the header
            for _ in range(8):
                mutated[rng.randrange(132, header_end)] ^= rng.randrange(1, 256)
        else:  # cut inside the patient module
            mutated = mutated[: at + rng.randrange(4, 40)]
        path = tmp_path / f"damaged{case}.dcm"
        path.write_bytes(bytes(mutated))
        try:
            study = load_study(path)
            messages.extend(study.warnings)
        except StudyReadError as error:
            messages.append(str(error))
        path.unlink()
    assert len(messages) >= 40
    assert_no_phi("\n".join(messages) + caplog.text, "the reader's messages about damaged files")
