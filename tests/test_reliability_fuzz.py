"""Bad input at scale: a mutation fuzzer over the real shared files and over files built feature by
feature (padding, 32-bit, deflate, EXIF, JPEG size header, duplicate UIDs, odd names, FIFOs; see
tests/reliability_files.py), header fuzzing, a very large image.

tests/test_io_bad_input.py covers the named bad inputs and a small in-process fuzz. Here each case
runs in a worker *process* with a per-case time bound, so a hang or a hard crash (segfault in a
decoder, memory blow-up) is caught and counted instead of taking the test run down:

- loaded: ``load_study`` returned a valid Study and the display and model-input paths ran on it;
- refused: ``StudyReadError`` with a one-line message naming the file;
- bad_message / error: refused without naming the file, or any other exception (must be 0);
- crashed: the worker process died (must be 0); hung: over the time bound (must be 0).

Every loaded study is also registered in the worker's annotation store and given a mask: a record
that already has a mask must have been made on the same pixels (mutated copies share their
source's SOPInstanceUID, so this checks the store's content keys over thousands of collisions).

The same harness runs thousands of cases in ``benchmarks/bench_reliability.py``.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.io import Study, StudyReadError, load_study
from core.safe_text import one_line
from tests.reliability_files import FEATURES, LOADABLE_FEATURES
from tests.shared_data import shared_data_dir, write_dicom

REPO = Path(__file__).resolve().parents[1]
CASE_TIMEOUT_S = 10.0  # per file: the slowest real file decodes in < 1 s here
WORKER_MEMORY_LIMIT = 4 << 30  # address-space cap for the worker: a blow-up becomes MemoryError, not a dead host

# Tags whose values steer parsing and decoding (group, element), as they appear little-endian in the file.
HEADER_TAGS = {
    "TransferSyntaxUID": (0x0002, 0x0010),
    "Modality": (0x0008, 0x0060),
    "ImagerPixelSpacing": (0x0018, 0x1164),
    "SamplesPerPixel": (0x0028, 0x0002),
    "PhotometricInterpretation": (0x0028, 0x0004),
    "PlanarConfiguration": (0x0028, 0x0006),
    "NumberOfFrames": (0x0028, 0x0008),
    "Rows": (0x0028, 0x0010),
    "Columns": (0x0028, 0x0011),
    "PixelSpacing": (0x0028, 0x0030),
    "BitsAllocated": (0x0028, 0x0100),
    "BitsStored": (0x0028, 0x0101),
    "HighBit": (0x0028, 0x0102),
    "PixelRepresentation": (0x0028, 0x0103),
    "WindowCenter": (0x0028, 0x1050),
    "WindowWidth": (0x0028, 0x1051),
    "RescaleIntercept": (0x0028, 0x1052),
    "RescaleSlope": (0x0028, 0x1053),
    "PixelData": (0x7FE0, 0x0010),
}
LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UT", b"UN", b"UC", b"UR", b"SV", b"UV"}

# Semantic mutations: a header attribute set to a hostile value through pydicom, file re-written.
INTERESTING = {
    "Rows": [0, 1, 2, 3, 65535, 30000],
    "Columns": [0, 1, 7, 65535, 30000],
    "BitsAllocated": [0, 1, 8, 12, 16, 32, 64, 255],
    "BitsStored": [0, 1, 7, 12, 16, 33, 255],
    "HighBit": [0, 7, 15, 31, 200],
    "PixelRepresentation": [0, 1, 2],
    "SamplesPerPixel": [0, 2, 3, 4, 65535],
    "PlanarConfiguration": [0, 1, 7],
    "NumberOfFrames": ["0", "-1", "2", "1000000", "x"],
    "PhotometricInterpretation": ["MONOCHROME1", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "HSV", ""],
    "RescaleSlope": ["0", "-1", "1e308", "NaN", "inf"],
    "RescaleIntercept": ["-1e308", "NaN", "3e38"],
    "WindowCenter": ["NaN", "1e308", "-5"],
    "WindowWidth": ["0", "-1", "NaN", "1e-30"],
    "ImagerPixelSpacing": [["0", "0"], ["-1", "1"], ["NaN", "1"]],
    "Modality": ["DX", "CR", "", "MG", "OT"],
    "TransferSyntaxUID": [
        "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.1.99", "9.9.9",
    ],
}
DELETABLE = ["Rows", "Columns", "BitsAllocated", "BitsStored", "PhotometricInterpretation", "SamplesPerPixel",
             "PixelRepresentation", "TransferSyntaxUID", "WindowCenter", "RescaleSlope", "Modality", "PixelData"]

MUTATIONS = ("flip", "truncate", "duplicate", "delete", "tag_bytes", "tag_value")
IMAGE_MUTATIONS = ("flip", "truncate", "duplicate", "delete")


# --- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str
    data: bytes
    suffix: str  # ".dcm", ".png", ".jpg"

    @property
    def is_dicom(self) -> bool:
        return self.suffix == ".dcm"


def corpus(work_dir: Path) -> list[Source]:
    """The 9 shared DICOMs, the 3 non-radiographs relabelled DX (so fuzzing reaches their JPEG-LS, RLE
    and JPEG 2000 decoders instead of stopping at the modality check), a real chest JPEG, a real
    8-bit mask PNG and a 16-bit PNG made from the uncompressed radiograph."""
    import cv2

    data = shared_data_dir()
    dicoms = sorted((data / "dicom").glob("*.dcm"))
    if len(dicoms) < 9:
        pytest.skip(f"shared DICOMs not found in {data / 'dicom'} (set ADAQAT_SHARED_DATA)")
    sources = [Source(p.stem, p.read_bytes(), ".dcm") for p in dicoms]
    for path in dicoms:
        ds = pydicom.dcmread(path)
        if str(ds.get("Modality", "")) not in ("CR", "DX"):
            ds.Modality = "DX"
            out = work_dir / f"{path.stem}_as_DX.dcm"
            ds.save_as(out)
            sources.append(Source(out.stem, out.read_bytes(), ".dcm"))
    jpeg = sorted((data / "cxr-lungs" / "images").glob("*.jpg"))[0]
    mask = sorted((data / "cxr-lungs" / "masks").glob("*.png"))[0]
    sources += [Source("cxr_jpeg", jpeg.read_bytes(), ".jpg"), Source("cxr_mask_png", mask.read_bytes(), ".png")]
    grey16 = pydicom.dcmread(data / "dicom" / "RG1_UNCR.dcm").pixel_array[::4, ::4].astype(np.uint16)
    ok, encoded = cv2.imencode(".png", grey16)
    assert ok
    sources.append(Source("png16", encoded.tobytes(), ".png"))
    return sources


# --- mutations ---------------------------------------------------------------------------------


def _pixel_data_offset(data: bytes) -> int:
    """Offset of the last (7FE0,0010) tag: everything before it is the header."""
    offset = data.rfind(b"\xe0\x7f\x10\x00")
    return offset if offset > 0 else len(data)


def _tag_offsets(data: bytes, tag: tuple[int, int]) -> list[int]:
    pattern = tag[0].to_bytes(2, "little") + tag[1].to_bytes(2, "little")
    limit = _pixel_data_offset(data) + 4
    found, start = [], 0
    while True:
        at = data.find(pattern, start, limit)
        if at < 0:
            return found
        found.append(at)
        start = at + 1


def _corrupt_tag_bytes(data: bytearray, rng: random.Random) -> str:
    """Overwrite the VR, the length field or the value of one parsing-critical element."""
    candidates = [(name, at) for name, tag in HEADER_TAGS.items() for at in _tag_offsets(bytes(data), tag)]
    if not candidates:
        return _flip(data, rng)
    name, at = rng.choice(candidates)
    vr = bytes(data[at + 4 : at + 6])
    explicit = len(vr) == 2 and vr.isalpha() and vr.isupper()
    length_at, length_size, value_at = _element_layout(bytes(data), at)
    length = int.from_bytes(data[length_at : length_at + length_size], "little")
    what = rng.choice(("vr", "length", "value", "value", "extreme"))
    if what == "vr" and explicit:
        data[at + 4 : at + 6] = rng.choice([b"UN", b"SQ", b"OB", b"US", b"XX", b"\0\0"])
    elif what == "length":
        new = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, length + 1, max(0, length - 1), rng.getrandbits(8 * length_size)])
        data[length_at : length_at + length_size] = (new & ((1 << (8 * length_size)) - 1)).to_bytes(length_size, "little")
    else:
        span = max(1, min(length if length != 0xFFFFFFFF else 8, 16, len(data) - value_at))
        if what == "extreme":
            fill = rng.choice([b"\xff", b"\x00", b"9", b"-"])
            data[value_at : value_at + span] = fill * span
        else:
            data[value_at : value_at + span] = bytes(rng.getrandbits(8) for _ in range(span))
    return f"tag_bytes:{name}:{what}"


def _semantic(source: Source, rng: random.Random, work_dir: Path) -> tuple[bytes, str]:
    """Set one header attribute to a hostile value (or delete it) with pydicom and write the file."""
    with warnings.catch_warnings():  # pydicom complains about the values we are about to write: intended
        warnings.simplefilter("ignore")
        return _semantic_quiet(source, rng, work_dir)


def _semantic_quiet(source: Source, rng: random.Random, work_dir: Path) -> tuple[bytes, str]:
    path = work_dir / "semantic_source.dcm"
    path.write_bytes(source.data)
    ds = pydicom.dcmread(path, force=True)
    if rng.random() < 0.2:
        keyword = rng.choice(DELETABLE)
        target = ds.file_meta if keyword == "TransferSyntaxUID" else ds
        if keyword in target:
            delattr(target, keyword)
        label = f"tag_value:del {keyword}"
    else:
        keyword = rng.choice(sorted(INTERESTING))
        value = rng.choice(INTERESTING[keyword])
        label = f"tag_value:{keyword}={value}"
        try:
            if keyword == "TransferSyntaxUID":
                ds.file_meta.TransferSyntaxUID = value
            else:
                setattr(ds, keyword, value)
        except Exception:  # pydicom will not hold it (e.g. "x" as an integer string): write the bytes raw
            return _raw_value(source.data, HEADER_TAGS[keyword], value), label + " (raw bytes)"
    out = work_dir / "semantic_out.dcm"
    try:
        ds.save_as(out, enforce_file_format=False)
    except Exception:  # a value pydicom cannot even write (e.g. a big-endian switch of compressed data)
        if label.startswith("tag_value:del"):
            return source.data, label + " (unwritable; original kept)"
        return _raw_value(source.data, HEADER_TAGS[keyword], value), label + " (raw bytes)"
    return out.read_bytes(), label


def _element_layout(data: bytes, at: int) -> tuple[int, int, int]:
    """(length offset, length size, value offset) of the element whose tag is at ``at``."""
    vr = bytes(data[at + 4 : at + 6])
    explicit = len(vr) == 2 and vr.isalpha() and vr.isupper()
    if explicit and vr in LONG_VRS:
        return at + 8, 4, at + 12
    if explicit:
        return at + 6, 2, at + 8
    return at + 4, 4, at + 8


def _raw_value(data: bytes, tag: tuple[int, int], value) -> bytes:
    """The element's value bytes overwritten with ``value`` as text (its length field kept)."""
    offsets = _tag_offsets(data, tag)
    if not offsets:
        return data
    out = bytearray(data)
    length_at, length_size, value_at = _element_layout(data, offsets[0])
    length = int.from_bytes(out[length_at : length_at + length_size], "little")
    if length == 0xFFFFFFFF:
        return data
    text = ("\\".join(value) if isinstance(value, list) else str(value)).encode("ascii", "replace")
    out[value_at : value_at + length] = text[:length].ljust(length, b" ")
    return bytes(out)


def _flip(data: bytearray, rng: random.Random) -> str:
    count = rng.choice([1, 1, 2, 4, 16, 64])
    header_bias = rng.random() < 0.7  # most decisions are taken in the first KB: flip there more often
    limit = min(len(data), _pixel_data_offset(bytes(data)) + 64) if header_bias else len(data)
    for _ in range(count):
        at = rng.randrange(max(1, limit))
        data[at] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    return f"flip:{count}{' header' if header_bias else ''}"


def mutate(source: Source, rng: random.Random, kind: str, work_dir: Path) -> tuple[bytes, str]:
    data = bytearray(source.data)
    if kind == "flip":
        label = _flip(data, rng)
    elif kind == "truncate":
        cut = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(min(len(data), 4096))
        data = data[:cut]
        label = f"truncate:{cut}"
    elif kind == "duplicate":
        start = rng.randrange(len(data))
        chunk = data[start : start + rng.choice([1, 4, 16, 256, 4096])]
        at = rng.randrange(len(data))
        data[at:at] = chunk
        label = f"duplicate:{len(chunk)}@{at}"
    elif kind == "delete":
        start = rng.randrange(len(data))
        size = rng.choice([1, 2, 4, 16, 256, 4096])
        del data[start : start + size]
        label = f"delete:{size}@{start}"
    elif kind == "tag_bytes":
        label = _corrupt_tag_bytes(data, rng)
    elif kind == "tag_value":
        return _semantic(source, rng, work_dir)
    else:
        raise ValueError(kind)
    return bytes(data), label


def make_case(sources: list[Source], seed: int, index: int, work_dir: Path) -> tuple[Path, str]:
    """Case ``index``: a deterministic source, mutation and file (reproducible from seed and index)."""
    rng = random.Random(seed * 1_000_003 + index)
    source = sources[index % len(sources)]
    kinds = MUTATIONS if source.is_dicom else IMAGE_MUTATIONS
    kind = kinds[(index // len(sources)) % len(kinds)]
    data, label = mutate(source, rng, kind, work_dir)
    suffix = source.suffix if rng.random() < 0.85 else ""  # readers must sniff content, not trust names
    path = work_dir / f"case{index:05d}_{source.name[:24]}{suffix}"
    path.write_bytes(data)
    return path, f"{source.name} {label}"


FEATURE_NAMES = sorted(FEATURES)
FEATURE_STEPS = ("intact", *MUTATIONS)  # each feature intact, then under every mutation


def make_feature_case(seed: int, index: int, work_dir: Path) -> tuple[Path, str]:
    """Case ``index`` of the feature fuzz: a file built with one feature, intact or mutated once."""
    rng = random.Random(seed * 1_000_003 + index)
    feature = FEATURE_NAMES[index % len(FEATURE_NAMES)]
    step = FEATURE_STEPS[(index // len(FEATURE_NAMES)) % len(FEATURE_STEPS)]
    path = FEATURES[feature](work_dir, rng)
    source = Source(feature, b"", path.suffix.lower() if path.suffix.lower() in (".png", ".jpg") else ".dcm")
    if step == "intact" or feature == "fifo" or (not source.is_dicom and step not in IMAGE_MUTATIONS):
        return path, f"{feature} intact"
    built = Source(feature, path.read_bytes(), source.suffix)
    try:
        data, label = mutate(built, rng, step, work_dir)
    except Exception:  # pydicom cannot parse this file to set a value (a cut deflate stream): flip bytes instead
        data, label = mutate(built, rng, "flip", work_dir)
    path.write_bytes(data)
    return path, f"{feature} {label}"


# --- the worker process -------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, resource, sys, tempfile, time, traceback
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np
    from core.io import Study, StudyReadError, load_study
    from core.io.display import render
    from core.io.model_input import model_gray
    from core.store import AnnotationStore
    from core.store.image_key import content_key
    store, masked = AnnotationStore(tempfile.mkdtemp(prefix="fuzz-store-")), set()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            path = os.fsdecode(bytes.fromhex(line.strip()))  # hex: names may hold CR, LF, any byte
        except ValueError:
            path = line.rstrip("\\n")  # a plain path typed by hand
        started = time.perf_counter()
        try:
            study = load_study(path)
            assert isinstance(study, Study), type(study)
            assert study.pixels.ndim == 2 and study.pixels.dtype in (np.float32, np.float64), (study.pixels.shape, study.pixels.dtype)
            assert np.isfinite(study.pixels).all(), "non-finite pixels"
            shown = render(study)
            gray = model_gray(study)
            assert shown.dtype == np.uint8 and gray.dtype == np.uint8 and gray.shape == study.pixels.shape
            record = store.register_image(study)
            assert record.made_on(study) and (not record.has_mask or content_key(study) in masked), "mask of another image"
            if not record.has_mask:
                store.save_mask(record.key, np.ones((study.height, study.width), np.uint8), source="edit", reader="fuzz")
                masked.add(content_key(study))
            status, message = "loaded", ";".join(study.warnings)
        except StudyReadError as error:
            status, message = "refused", str(error)
        except BaseException as error:
            status, message = "error", type(error).__name__ + ": " + str(error) + " | " + traceback.format_exc(limit=-3)
        print(json.dumps({"status": status, "message": message, "seconds": time.perf_counter() - started}), flush=True)
    """
)


@dataclass
class FuzzReport:
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    by_kind: dict[str, Counter] = field(default_factory=dict)
    refusal_examples: dict[str, str] = field(default_factory=dict)
    by_source: dict[str, Counter] = field(default_factory=dict)  # source file, or built feature
    intact: dict[str, Counter] = field(default_factory=dict)  # feature fuzz: unmutated files per feature

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict:
        ordered = sorted(self.seconds)
        return {
            "cases": self.cases,
            "loaded": self.counts["loaded"],
            "refused_with_message": self.counts["refused"],
            "refused_without_file_name": self.counts["bad_message"],
            "unexpected_exception": self.counts["error"],
            "crashed": self.counts["crashed"],
            "hung": self.counts["hung"],
            "max_case_seconds": round(ordered[-1], 3) if ordered else None,
            "p99_case_seconds": round(ordered[int(0.99 * (len(ordered) - 1))], 3) if ordered else None,
            "by_mutation": {k: dict(v) for k, v in sorted(self.by_kind.items())},
            "by_source": {k: dict(v) for k, v in sorted(self.by_source.items())},
            "intact_by_feature": {k: dict(v) for k, v in sorted(self.intact.items())},
            "failures": self.failures[:50],
        }


class FuzzWorker:
    """A long-lived reader process; restarted after a crash or a hang."""

    def __init__(self, timeout_s: float = CASE_TIMEOUT_S, memory_limit: int = WORKER_MEMORY_LIMIT) -> None:
        self.timeout_s = timeout_s
        self.memory_limit = memory_limit
        self.process: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.stderr_file = tempfile.TemporaryFile()

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(self.memory_limit)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr_file, env=env, cwd=str(REPO), text=True, bufsize=1,
        )
        self.lines = queue.Queue()
        process, lines = self.process, self.lines

        def pump() -> None:
            for line in process.stdout:
                lines.put(line)
            lines.put(None)  # EOF: the process ended

        threading.Thread(target=pump, daemon=True).start()
        ready = self.lines.get(timeout=60)
        assert ready and json.loads(ready).get("ready"), self._stderr_tail()

    def _stderr_tail(self) -> str:
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def run(self, path: Path) -> dict:
        if self.process is None:
            self.start()
        started = time.perf_counter()
        try:
            self.process.stdin.write(os.fsencode(path).hex() + "\n")
            self.process.stdin.flush()
            line = self.lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self.stop()
            return {"status": "hung", "message": f"no answer in {self.timeout_s:.0f} s", "seconds": time.perf_counter() - started}
        except (BrokenPipeError, OSError):
            line = None
        if line is None:
            code = self.process.wait(timeout=10)
            self.process = None
            return {"status": "crashed", "message": f"reader process died (status {code}): {self._stderr_tail()[-500:]}",
                    "seconds": time.perf_counter() - started}
        return json.loads(line)


def run_fuzz(sources: list[Source] | None, cases: int, work_dir: Path, seed: int = 0, worker: FuzzWorker | None = None,
             progress=None, make=None) -> FuzzReport:
    """``cases`` files from ``make(seed, index, work_dir)`` (default: mutations of ``sources``), each read by the worker."""
    report = FuzzReport()
    own = worker is None
    worker = worker or FuzzWorker()
    make = make or (lambda seed, index, work: make_case(sources, seed, index, work))
    try:
        for index in range(cases):
            path, label = make(seed, index, work_dir)
            result = worker.run(path)
            status = result["status"]
            if status == "refused":
                message = result["message"]
                if "\n" in message or "\r" in message or one_line(path.name) not in message:
                    status = "bad_message"
                else:
                    report.refusal_examples.setdefault(message.split(": ", 1)[-1][:60], message)
            kind = label.split()[1].split(":")[0]
            report.counts[status] += 1
            report.by_kind.setdefault(kind, Counter())[status] += 1
            report.by_source.setdefault(label.split()[0], Counter())[status] += 1
            if kind == "intact":
                report.intact.setdefault(label.split()[0], Counter())[status] += 1
            report.seconds.append(float(result["seconds"]))
            if status not in ("loaded", "refused"):
                report.failures.append(f"[{status}] case {index} seed {seed} ({label}): {result['message'][:400]}")
            path.unlink(missing_ok=True)
            if progress is not None:
                progress(index + 1, report)
    finally:
        if own:
            worker.stop()
    return report


# --- tests --------------------------------------------------------------------------------------

CI_CASES = 300  # ~45 cases/s on the 2-core CI machine; the benchmark runs 10 000


def test_mutation_fuzz_of_real_files_never_crashes_or_hangs(tmp_path):
    sources = corpus(tmp_path)
    assert len([s for s in sources if s.is_dicom]) >= 12 and len(sources) >= 15
    started = time.monotonic()
    report = run_fuzz(sources, CI_CASES, tmp_path, seed=int(os.environ.get("ADAQAT_FUZZ_SEED", "0")))
    summary = report.to_json()
    assert report.counts["crashed"] == 0 and report.counts["hung"] == 0, report.failures
    assert report.counts["error"] == 0 and report.counts["bad_message"] == 0, report.failures
    assert report.cases == CI_CASES
    assert report.counts["loaded"] >= 30 and report.counts["refused"] >= 100, summary  # both paths exercised
    assert set(summary["by_mutation"]) == set(MUTATIONS)
    assert summary["max_case_seconds"] < CASE_TIMEOUT_S
    assert time.monotonic() - started < 60


FEATURE_CI_CASES = len(FEATURE_NAMES) * len(FEATURE_STEPS) * 3  # every feature x step three times: 168


def test_feature_fuzz_of_built_files_never_crashes_hangs_or_mixes_masks(tmp_path):
    """Files built feature by feature (tests/reliability_files.FEATURES), intact and mutated."""
    report = run_fuzz(None, FEATURE_CI_CASES, tmp_path, seed=int(os.environ.get("ADAQAT_FUZZ_SEED", "0")),
                      make=make_feature_case)
    summary = report.to_json()
    assert report.counts["crashed"] == 0 and report.counts["hung"] == 0, report.failures
    assert report.counts["error"] == 0 and report.counts["bad_message"] == 0, report.failures
    assert set(summary["by_source"]) == set(FEATURES)
    for feature, counts in summary["intact_by_feature"].items():
        expected = "loaded" if feature in LOADABLE_FEATURES else None
        if expected:
            assert counts == {"loaded": counts.get("loaded", 0)}, (feature, counts)
        elif feature != "deflate":  # intact deflate opens, cut deflate is refused
            assert counts == {"refused": counts.get("refused", 0)}, (feature, counts)
    assert summary["max_case_seconds"] < CASE_TIMEOUT_S


def test_worker_detects_hangs_and_crashes(tmp_path):
    """The harness itself: a reader that never answers counts as hung, one that dies as crashed."""
    worker = FuzzWorker(timeout_s=2.0)
    try:
        worker.start()
        worker.process.stdin.write("import-time sanity\n")  # a missing file: refused, proves the loop works
        worker.process.stdin.flush()
        assert json.loads(worker.lines.get(timeout=10))["status"] == "refused"
        os.kill(worker.process.pid, 19)  # SIGSTOP: the reader stops answering
        assert worker.run(tmp_path / "x.dcm")["status"] == "hung"
        worker.start()
        os.kill(worker.process.pid, 9)
        time.sleep(0.2)
        assert worker.run(tmp_path / "x.dcm")["status"] == "crashed"
    finally:
        worker.stop()


# --- header fuzzing with hypothesis: hostile values on a small valid DICOM, in process ----------

HEADER_FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HEADER_FUZZ
@given(
    overrides=st.dictionaries(
        st.sampled_from(sorted(k for k in INTERESTING if k not in ("TransferSyntaxUID", "ImagerPixelSpacing"))),
        st.integers(-3, 70000) | st.sampled_from(["0", "NaN", "-1", "1e308", "x", ""]),
        min_size=1, max_size=4,
    ),
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's complaints while the test writes bad values
def test_hostile_header_values(tmp_path, overrides, shape):
    pixels = (np.arange(shape[0] * shape[1], dtype=np.uint16) * 37 % 4096).reshape(shape)
    path = write_dicom(tmp_path / "hostile.dcm", pixels)
    ds = pydicom.dcmread(path)
    for keyword, value in overrides.items():
        try:
            setattr(ds, keyword, value)
            ds.save_as(path, enforce_file_format=True)
        except Exception:  # pydicom refuses to write it: nothing to read back
            ds = pydicom.dcmread(path)
    started = time.perf_counter()
    try:
        study = load_study(path)
    except StudyReadError as error:
        assert "\n" not in str(error) and path.name in str(error)
    else:
        assert isinstance(study, Study) and study.pixels.ndim == 2 and np.isfinite(study.pixels).all()
        from core.io.display import render
        from core.io.model_input import model_gray

        assert render(study).shape == model_gray(study).shape == study.pixels.shape
    assert time.perf_counter() - started < CASE_TIMEOUT_S


# --- very large image: memory stays bounded ------------------------------------------------------

LARGE_SIDE = 8000
LARGE_RSS_LIMIT = int(2.5 * (1 << 30))  # the whole reader process, torch runtime included
LARGE_BYTES_PER_PIXEL = 20  # what opening adds, per pixel (see the test's docstring)

LARGE_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from core.io import load_study
    from core.io.display import render
    from core.io.model_input import model_gray
    from core.segment.preprocess import letterbox_image

    def peak():
        # VmHWM: the peak RSS of this process's own address space. getrusage's ru_maxrss would also
        # count the parent's RSS at fork time (Linux carries it across exec), e.g. pytest's.
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    out = {"after_imports": peak()}
    t = time.perf_counter(); study = load_study(sys.argv[1]); out["load_s"] = time.perf_counter() - t
    out["after_load"] = peak(); out["shape"] = list(study.pixels.shape); out["warnings"] = study.warnings
    t = time.perf_counter(); gray = model_gray(study); out["model_gray_s"] = time.perf_counter() - t
    out["after_model_gray"] = peak()
    t = time.perf_counter(); padded, box = letterbox_image(gray, 256); out["letterbox_s"] = time.perf_counter() - t
    out["after_letterbox"] = peak(); out["padded"] = list(padded.shape)
    t = time.perf_counter(); shown = render(study); out["render_s"] = time.perf_counter() - t
    out["after_render"] = peak(); out["rendered"] = list(shown.shape)
    print(json.dumps(out))
    """
)


def write_large_dicom(path: Path, side: int = LARGE_SIDE) -> Path:
    """A ``side`` x ``side`` 16-bit uncompressed DX (128 MB at 8000 px): a gradient with a dark "lung",
    rescale slope/intercept (as CR/DX files carry) and no window, so the model input takes the
    percentile path."""
    rows = np.arange(side, dtype=np.uint32)[:, None]
    cols = np.arange(side, dtype=np.uint32)[None, :]
    pixels = ((rows * 3 + cols * 5) % 4096).astype(np.uint16)
    pixels[side // 4 : side // 2, side // 5 : side // 2] //= 3
    return write_dicom(path, pixels, ImagerPixelSpacing=[0.05, 0.05], RescaleSlope="1.5", RescaleIntercept="-1024")


def measure_large_image(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", LARGE_CHILD, str(path)], capture_output=True, text=True, env=env,
                            cwd=str(REPO), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_8000px_16bit_dicom_stays_within_memory(tmp_path):
    """Open, model input, letterbox to 256 and display of an 8000x8000 16-bit DICOM, peak RSS measured.

    Bound, justified per pixel: the file's bytes (2 B) and the decoded uint16 array (2 B) are held
    while pydicom applies the rescale in float64 (8 B), which becomes the contract's float32 modality
    values (4 B): 16 B/px, ~1 GiB at 64 Mpx. The model-input and display paths work in 1 M-value
    blocks (core/io/voi.py), so they add only their uint8 outputs. 20 B/px leaves allocator slack.
    The whole process, with the torch runtime the predictor needs (~0.6 GiB), must stay under
    2.5 GiB: it fits next to the viewer on the 8 GB laptops the product targets. Before the blockwise
    VOI (full-size float64 temporaries) the model input alone added ~1.1 GiB."""
    path = write_large_dicom(tmp_path / "large.dcm")
    assert path.stat().st_size > 128_000_000
    figures = measure_large_image(path)
    assert figures["shape"] == [LARGE_SIDE, LARGE_SIDE] and figures["padded"] == [256, 256]
    peak = max(figures["after_letterbox"], figures["after_render"])
    assert peak < LARGE_RSS_LIMIT, figures
    assert peak - figures["after_imports"] < LARGE_BYTES_PER_PIXEL * LARGE_SIDE**2, figures
    assert figures["after_model_gray"] - figures["after_load"] < 0.1 * (1 << 30), figures  # blockwise VOI
