"""Codec-mutation fuzz: damage only the compressed pixel stream of the shared DICOMs.

The header stays valid, so every case reaches a decoder (libjpeg, OpenJPEG, CharLS, RLE, and the
fallbacks pydicom would try after them). Each mutated file is read by ``load_study`` in a worker
process (a pool of them, each case bounded in time) whose stderr and every log record (DEBUG, all
loggers) are checked for tracebacks and library error lines. A loaded image is compared with the
same worker's reading of the undamaged source: identical, shown with a "pixel data damaged"
warning, or *changed silently* (counted, with how much changed). Used by
tests/test_reliability_codecs.py (a small CI version) and benchmarks/bench_reliability.py (1000+).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.encaps import encapsulate, generate_frames

from tests.shared_data import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
CASE_TIMEOUT_S = 20.0
OPERATORS = ("flip", "bytes", "zeros", "truncate", "delete", "duplicate")
# The compressed shared files; NM/MR/US are relabelled DX (US also made MONOCHROME2) so the
# modality and palette checks do not stop them before their decoders.
CODEC_FILES = (
    "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",  # JPEG baseline
    "Fake_MONOHR1.dcm",  # JPEG baseline, MONOCHROME1
    "JPEG-LL.dcm",  # JPEG lossless (process 14)
    "RG1_J2KR.dcm",  # JPEG 2000 lossless
    "RG1_J2KI.dcm",  # JPEG 2000
    "RG3_J2KI.dcm",  # JPEG 2000 (extremity: opens with a warning)
    "MR2_J2KI.dcm",  # JPEG 2000
    "OBXXXX1A_rle.dcm",  # RLE lossless
)

WORKER = r"""
import json, logging, sys, os, io, time
import numpy as np
records = []
class Keep(logging.Handler):
    def emit(self, record):
        text = record.getMessage()
        if record.exc_info or record.stack_info or "Traceback" in text or record.levelno >= logging.ERROR:
            records.append(f"{record.name}: {text[:200]}")
root = logging.getLogger(); root.setLevel(logging.DEBUG); root.addHandler(Keep())
from core.io import load_study
from core.io.errors import StudyReadError
originals = {}
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    path, original = line.rstrip("\n").split("\t")
    started = time.perf_counter(); del records[:]
    result = {}
    try:
        if original not in originals:
            originals[original] = load_study(original).pixels
        study = load_study(path)
        base = originals[original]
        if study.pixels.shape == base.shape and np.array_equal(study.pixels, base):
            result = {"status": "identical"}
        elif any("pixel data damaged" in w for w in study.warnings):
            result = {"status": "warned"}
        else:
            same = study.pixels.shape == base.shape
            changed = float(np.mean(study.pixels != base)) if same else 1.0
            span = float(np.ptp(base)) or 1.0
            largest = float(np.abs(study.pixels.astype(np.float64) - base).max()) / span if same else 1.0
            result = {"status": "changed_silently", "changed_fraction": round(changed, 4),
                      "largest_change_of_range": round(largest, 4)}
    except StudyReadError as exc:
        result = {"status": "refused", "message": str(exc)}
    except BaseException as exc:
        result = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:300]}
    result["log_errors"] = list(records)
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)
"""


@dataclass
class CodecSource:
    name: str
    path: Path  # the relabelled, undamaged file
    frame: bytes
    syntax: str


def codec_sources(work: Path) -> list[CodecSource]:
    """The shared compressed DICOMs written (relabelled where needed) into ``work``; [] when absent."""
    folder = shared_data_dir() / "dicom"
    sources = []
    for name in CODEC_FILES:
        if not (folder / name).is_file():
            return []
        ds = pydicom.dcmread(folder / name)
        if str(ds.get("Modality", "")) not in ("CR", "DX"):
            ds.Modality = "DX"
        if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
            ds.PhotometricInterpretation = "MONOCHROME2"
            for keyword in [k for k in ds.dir() if "Palette" in k]:
                delattr(ds, keyword)
        out = work / f"orig-{Path(name).stem[:24]}.dcm"
        ds.save_as(out)
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
        sources.append(CodecSource(Path(name).stem[:24], out, frame, ds.file_meta.TransferSyntaxUID.name))
    return sources


def mutate(frame: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One damage of the compressed stream; the first 2 % (codec headers) are mostly spared."""
    data = bytearray(frame)
    size = len(data)
    start = max(2, size // 50)
    op = rng.choice(OPERATORS)
    if op == "flip":
        for _ in range(rng.choice((1, 1, 2, 4))):
            data[rng.randrange(start, size)] ^= 1 << rng.randrange(8)
    elif op == "bytes":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(start, size)] = rng.randrange(256)
    elif op == "zeros":
        at = rng.randrange(start, size)
        length = rng.randint(16, 512)
        data[at:at + length] = bytes(len(data[at:at + length]))
    elif op == "truncate":
        data = data[: rng.randrange(start, size)]
    elif op == "delete":
        at = rng.randrange(start, size)
        del data[at:at + rng.randint(1, 256)]
    else:  # duplicate
        at = rng.randrange(start, size)
        data[at:at] = data[at:at + rng.randint(1, 256)]
    if len(data) % 2:
        data.append(0)
    return bytes(data), op


def silently_decoded(work: Path, source_name: str, operator: str, seed: int) -> Path | None:
    """A mutation of ``source_name`` that pydicom decodes without any error into other pixels (the damage a
    decoder never notices), written into ``work``; None without the shared files or after 300 tries."""
    import numpy as np

    sources = {s.name: s for s in codec_sources(work)}
    source = next((s for name, s in sources.items() if name.startswith(source_name)), None)
    if source is None:
        return None
    original = pydicom.dcmread(source.path).pixel_array
    rng = random.Random(seed)
    with _quiet_pydicom():
        for attempt in range(300):
            frame, op = mutate(source.frame, rng)
            if op != operator:
                continue
            ds = pydicom.dcmread(source.path)
            ds.PixelData = encapsulate([frame])
            try:
                pixels = ds.pixel_array
            except Exception:  # noqa: BLE001 - a decoder that notices is not the case wanted here
                continue
            if pixels.shape == original.shape and not np.array_equal(pixels, original):
                path = work / f"{source_name}-{operator}-{attempt}.dcm"
                ds.save_as(path)
                return path
    return None


def dc_shifted_jpeg(work: Path, near_side_edge: bool = False) -> Path | None:
    """The shared chest JPEG with a bit flipped so that every decoder, libjpeg-turbo's strict mode included,
    accepts it, and the rest of the picture is shifted by a damaged DC coefficient; with ``near_side_edge``,
    one whose shift starts within 6 blocks of the left or right edge; None if not found."""
    import numpy as np

    def shifted(difference: np.ndarray, _original: np.ndarray) -> bool:
        changed = difference != 0
        if changed.mean() <= 0.05 or abs(np.median(difference[changed])) < 5:
            return False
        if not near_side_edge:
            return True
        step = np.median(difference[changed])
        rows, columns = difference.shape[0] // 8, difference.shape[1] // 8
        block_means = difference[:rows * 8, :columns * 8].reshape(rows, 8, columns, 8).mean(axis=(1, 3)).ravel()
        on_step = np.abs(block_means - step) <= max(1.0, 0.2 * abs(step))
        corner = next((k for k in range(len(on_step) - 8) if on_step[k:k + 8].all() and on_step[k:].mean() > 0.9), None)
        return corner is not None and min(corner % columns, columns - 1 - corner % columns) < 6

    return _damaged_chest_jpeg(work, "dc-shift", 5 if not near_side_edge else 11, shifted)


def block_shifted_jpeg(work: Path) -> Path | None:
    """The shared chest JPEG with a few bytes changed so that every decoder accepts it and the lower part of the
    picture is drawn a whole number of blocks to the side (blocks lost or gained); None if not found.
    Chosen by the difference from the original (below the first mostly changed row, it matches the original
    best slid sideways), not by the check under test."""
    import numpy as np

    def displaced(difference: np.ndarray, original: np.ndarray) -> bool:
        rows = np.flatnonzero((difference != 0).mean(axis=1) > 0.5)
        if len(rows) == 0 or rows[0] + 80 > difference.shape[0]:
            return False
        band = slice(rows[0] + 8, rows[0] + 72)  # 64 rows below where most of each row changed
        damaged, intact = (original + difference)[band, 64:-64], original[band]
        errors = {}
        for shift in range(-32, 33, 8):
            offset = damaged - intact[:, 64 + shift:intact.shape[1] - 64 + shift]
            errors[shift] = np.abs(offset - np.median(offset)).mean()  # brighter or darker too: does not count
        best = min(errors, key=errors.get)
        return best != 0 and errors[best] < 0.25 * errors[0]

    return _damaged_chest_jpeg(work, "block-shift", 7, displaced, changed_bytes=True)


def _damaged_chest_jpeg(work: Path, label: str, seed: int, wanted, attempts: int = 1500,
                        changed_bytes: bool = False) -> Path | None:
    """Flip one bit of the shared chest JPEG's entropy-coded data (or, with ``changed_bytes``, set 1-8 bytes
    at random) until every decoder accepts the result and ``wanted(difference, original)`` holds; the
    file written into ``work``, or None."""
    import simplejpeg

    source = next((s for s in codec_sources(work) if s.name.startswith("1.2.276")), None)
    if source is None:
        return None
    original = pydicom.dcmread(source.path).pixel_array.astype(int)
    rng = random.Random(seed)
    with _quiet_pydicom():
        for attempt in range(attempts):
            data = bytearray(source.frame)
            if changed_bytes:
                for _ in range(rng.randint(1, 8)):
                    data[rng.randrange(len(data) // 10, len(data) - 2)] = rng.randrange(256)
            else:
                data[rng.randrange(len(data) // 10, len(data) - 2)] ^= 1 << rng.randrange(8)
            try:
                simplejpeg.decode_jpeg(bytes(data), colorspace="GRAY", strict=True)
                ds = pydicom.dcmread(source.path)
                ds.PixelData = encapsulate([bytes(data)])
                difference = ds.pixel_array.astype(int) - original
            except Exception:  # noqa: BLE001 - a decoder that notices is not the case wanted here
                continue
            if wanted(difference, original):
                path = work / f"{label}-{attempt}.dcm"
                ds.save_as(path)
                return path
    return None


def row_shifted_lossless(work: Path) -> Path | None:
    """The shared lossless JPEG with a bit flipped so that every decoder and the Huffman walk accept it, and
    one row is offset by 8 or more grey levels over its last 64+ samples (a damaged difference); None if not
    found. Chosen by the difference from the original, not by the check under test."""
    import numpy as np

    from core.io.codestream import check_jpeg_lossless

    source = next((s for s in codec_sources(work) if s.name == "JPEG-LL"), None)
    if source is None:
        return None
    original = pydicom.dcmread(source.path).pixel_array.astype(int)
    rng = random.Random(4)
    with _quiet_pydicom():
        for attempt in range(2000):
            frame, op = mutate(source.frame, rng)
            if op != "flip" or check_jpeg_lossless(frame, original.size):
                continue
            ds = pydicom.dcmread(source.path)
            ds.PixelData = encapsulate([frame])
            try:
                difference = ds.pixel_array.astype(int) - original
            except Exception:  # noqa: BLE001 - a decoder that notices is not the case wanted here
                continue
            rows = np.flatnonzero((difference[:, -64:] != 0).all(axis=1))
            if len(rows) == 1 and abs(np.median(difference[rows[0], -64:])) >= 8 and (difference != 0).sum() < 400:
                path = work / f"row-shift-{attempt}.dcm"
                ds.save_as(path)
                return path
    return None


def zeroed_jpeg2000(work: Path, name: str, length: int = 256) -> Path | None:
    """The shared JPEG 2000 file ``name`` (relabelled DX) with ``length`` bytes zeroed from its first packet
    header on, as a zeroed disk block would leave it; None without the shared files."""
    source = shared_data_dir() / "dicom" / name
    if not source.is_file():
        return None
    ds = pydicom.dcmread(source)
    ds.Modality = "DX"  # MR / extremity: past the modality checks, to the decoder
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    start = frame.find(b"\xff\x93") + 2
    ds.PixelData = encapsulate([frame[:start] + bytes(length) + frame[start + length:]])
    path = work / f"zeroed-{name}"
    ds.save_as(path)
    return path


@contextlib.contextmanager
def _quiet_pydicom():
    """pydicom logs every failed decoding plugin; the finders above expect failures."""
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 10)
    try:
        yield
    finally:
        logging.getLogger("pydicom").setLevel(logging.NOTSET)


@dataclass
class CodecReport:
    counts: Counter = field(default_factory=Counter)
    by_source: dict = field(default_factory=dict)
    by_operator: dict = field(default_factory=dict)
    silent_by_source_operator: Counter = field(default_factory=Counter)
    tracebacks_stderr: int = 0
    log_errors: int = 0
    failures: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    silent_cases: list = field(default_factory=list)
    refusals: Counter = field(default_factory=Counter)
    seconds: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "cases": sum(self.counts.values()), **{k: self.counts.get(k, 0) for k in (
                "identical", "warned", "refused", "changed_silently", "error", "bad_message", "crashed", "hung")},
            "tracebacks_on_stderr": self.tracebacks_stderr, "log_records_with_errors": self.log_errors,
            "by_source": {k: dict(v) for k, v in sorted(self.by_source.items())},
            "by_operator": {k: dict(v) for k, v in sorted(self.by_operator.items())},
            "changed_silently_by_source_operator": dict(sorted(self.silent_by_source_operator.items())),
            "changed_silently_fraction_of_pixels": sorted(self.changed),
            "changed_silently_cases": self.silent_cases,
            "refusal_kinds": dict(self.refusals.most_common()),
            "max_case_seconds": round(max(self.seconds, default=0.0), 2),
            "failures": self.failures[:50],
        }


class _Worker:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.stderr = tempfile.TemporaryFile()
        self.process = None
        self.lines: queue.Queue = queue.Queue()

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, env=env, cwd=str(REPO), text=True, bufsize=1)
        self.lines = queue.Queue()
        process, lines = self.process, self.lines

        def pump() -> None:
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        ready = self.lines.get(timeout=120)
        assert ready and json.loads(ready).get("ready"), self.stderr_text()

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def submit(self, path: Path, original: Path) -> None:
        if self.process is None:
            self.start()
        self.started = time.perf_counter()
        self.process.stdin.write(f"{path}\t{original}\n")
        self.process.stdin.flush()

    def result(self) -> dict:
        try:
            line = self.lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self.stop()
            return {"status": "hung", "message": f"no answer in {self.timeout_s:.0f} s", "log_errors": []}
        if line is None:
            code = self.process.wait(timeout=10)
            self.process = None
            return {"status": "crashed", "message": f"reader died (status {code})", "log_errors": []}
        return json.loads(line)


def run_codec_fuzz(cases: int, work: Path, seed: int = 0, workers: int = 2, timeout_s: float = CASE_TIMEOUT_S,
                   progress=None) -> CodecReport:
    """``cases`` mutations (round-robin over the sources), read by a pool of ``workers`` processes."""
    sources = codec_sources(work)
    if not sources:
        raise FileNotFoundError(f"shared DICOMs not found in {shared_data_dir() / 'dicom'}")
    report = CodecReport()
    pool = [_Worker(timeout_s) for _ in range(workers)]
    rng = random.Random(seed)
    index = 0
    try:
        while index < cases:
            batch = []
            for worker in pool:
                if index >= cases:
                    break
                source = sources[index % len(sources)]
                frame, op = mutate(source.frame, rng)
                ds = pydicom.dcmread(source.path)
                ds.PixelData = encapsulate([frame])
                path = work / f"case-{index:05d}.dcm"
                ds.save_as(path)
                worker.submit(path, source.path)
                batch.append((worker, path, source, op, index))
                index += 1
            for worker, path, source, op, number in batch:
                result = worker.result()
                report.seconds.append(time.perf_counter() - worker.started)
                status = result["status"]
                if status == "refused" and (path.name not in result["message"] or "\n" in result["message"]):
                    status = "bad_message"
                if status == "refused":
                    report.refusals[result["message"].split(": ", 1)[1][:48]] += 1
                if status == "changed_silently":
                    report.changed.append(result["changed_fraction"])
                    report.silent_by_source_operator[f"{source.name}/{op}"] += 1
                    report.silent_cases.append({
                        "case": number, "source": source.name, "operator": op,
                        "changed_fraction": result["changed_fraction"],
                        "largest_change_of_range": result.get("largest_change_of_range")})
                report.counts[status] += 1
                report.by_source.setdefault(source.name, Counter())[status] += 1
                report.by_operator.setdefault(op, Counter())[status] += 1
                if result["log_errors"]:
                    report.log_errors += len(result["log_errors"])
                    report.failures.append(f"[log] case {number} ({source.name} {op}): {result['log_errors'][0]}")
                if status in ("error", "bad_message", "crashed", "hung"):
                    message = result.get("message", "")
                    report.failures.append(f"[{status}] case {number} ({source.name} {op}): {message}")
                path.unlink(missing_ok=True)
            if progress is not None:
                progress(index, report)
    finally:
        for worker in pool:
            worker.stop()
            text = worker.stderr_text()
            report.tracebacks_stderr += text.count("Traceback")
            if text.strip():
                report.failures.append(f"[stderr] {text.strip()[:400]}")
    return report


if __name__ == "__main__":  # python -m tests.codec_mutation damaged OUT: damaged DICOMs for the bundle smoke test
    if len(sys.argv) != 3 or sys.argv[1] != "damaged":
        raise SystemExit("usage: python -m tests.codec_mutation damaged OUT_DIR")
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    written = [silently_decoded(out, "RG1_J2KR", "flip", seed=29), dc_shifted_jpeg(out), row_shifted_lossless(out),
               block_shifted_jpeg(out), zeroed_jpeg2000(out, "RG1_J2KI.dcm")]
    if None in written:
        raise SystemExit("error: shared DICOMs not found (set ADAQAT_SHARED_DATA)")
    for path in out.glob("orig-*.dcm"):
        path.unlink()
    print("\n".join(str(p) for p in written))
