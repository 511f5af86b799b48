"""The DICOM listener under load: N studies pushed to it, each stored atomically and segmented.

Real chest X-rays (the first N test-split images of ``cxr-lungs``) are wrapped as CR DICOM files, one
study each (fresh UIDs, synthetic patient), and pushed with C-STORE (pynetdicom, one association per
study, as a PACS forwards studies) to a real ``StorageListener`` on 127.0.0.1 feeding the real
``ArrivalSegmenter`` (default model, annotation store on disk). Reported: studies per minute from the
first push to the last mask saved, the push alone, the time from a study's arrival to its mask
(median, max), the CPU seconds the process spent per study (all threads: the work itself, which
other load on the machine does not change, unlike the wall-clock rate), the model load (once,
before the clock starts) and the peak resident memory of the process during the run (sampled every
20 ms from /proc) and over its life (ru_maxrss).

    python benchmarks/bench_pacs_listener.py [--studies 50] [--threads N] [--json-out benchmarks/results/pacs_listener.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SENDER_AE = "BENCHPACS"


def shared_data_dir() -> Path:
    env = os.environ.get("ADAQAT_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def make_studies(count: int, folder: Path) -> list[Path]:
    """``count`` one-image CR studies from real chest X-rays (8-bit JPEGs -> uncompressed DICOM)."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    data = shared_data_dir() / "cxr-lungs"
    with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"][:count]
    if len(rows) < count:
        raise SystemExit(f"only {len(rows)} test images in {data}; ask for fewer --studies")
    paths = []
    for index, row in enumerate(rows):
        pixels = cv2.imread(str(data / row["image"]), cv2.IMREAD_GRAYSCALE)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientName, ds.PatientID = f"BENCH^{index:03d}", f"BENCH{index:03d}"
        ds.StudyDate, ds.Modality, ds.BodyPartExamined = "20260101", "CR", "CHEST"
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = pixels.tobytes()
        path = folder / f"study{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RssSampler:
    """Peak VmRSS of this process, sampled every 20 ms while running."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current_kb() -> int:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.current_kb())
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self.current_kb())


def run(count: int, threads: int | None) -> dict:
    from core.models.loading import load_model
    from core.pacs import PacsConfig
    from core.pacs.arrivals import ArrivalSegmenter
    from core.pacs.listener import StorageListener
    from core.pacs.send import send_files
    from core.compute import set_threads
    from core.segment.predictor import Predictor
    from core.store import AnnotationStore

    used_threads = set_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="adaqat-bench-pacs-"))
    studies = make_studies(count, work / "outgoing")
    start = time.perf_counter()
    loaded = load_model("default", "cpu")
    model_load_s = time.perf_counter() - start
    Predictor(loaded).segment(__import__("numpy").zeros((256, 256), "uint8"))  # warm-up, off the clock

    store = AnnotationStore(work / "store")
    stored_at: dict[str, float] = {}
    done_at: dict[str, float] = {}
    errors: list[str] = []
    finished = threading.Event()

    def on_done(arrival) -> None:
        done_at[arrival.path.name] = time.perf_counter()
        if arrival.error:
            errors.append(arrival.error)
        if len(done_at) == count:
            finished.set()

    segmenter = ArrivalSegmenter(store, lambda: Predictor(loaded), on_done=on_done)
    segmenter.start()

    def on_stored(path: Path) -> None:
        stored_at[path.name] = time.perf_counter()
        segmenter.submit(path)

    listen = PacsConfig(our_ae="ADAQAT", our_port=free_port(), accepted_calling_aes=(SENDER_AE,), timeout_s=60)
    listener = StorageListener(listen, work / "inbox", on_stored=on_stored)
    listener.start()
    push = PacsConfig(pacs_ae="ADAQAT", pacs_host="127.0.0.1", pacs_port=listener.port, our_ae=SENDER_AE, timeout_s=60)
    rss_before_kb = RssSampler.current_kb()
    cpu0 = _cpu_seconds()
    with RssSampler() as rss:
        t0 = time.perf_counter()
        for index, path in enumerate(studies):
            send_files(push, [path], f"study {index}")
        pushed_s = time.perf_counter() - t0
        finished.wait(3600)
        total_s = time.perf_counter() - t0
    cpu_s = _cpu_seconds() - cpu0
    listener.stop()
    segmenter.stop()
    saved = sum(1 for image in store.list_images() if store.latest_revision(image.key) is not None)
    store.close()
    latencies = [done_at[name] - stored_at[name] for name in done_at if name in stored_at]
    return {
        "benchmark": "pacs_listener",
        "studies": count,
        "stored": listener.stored,
        "segmented": saved,
        "errors": errors[:5],
        "model_load_s": round(model_load_s, 2),
        "push_s": round(pushed_s, 2),
        "total_s": round(total_s, 2),
        "studies_per_min": round(count / total_s * 60, 1),
        "push_studies_per_min": round(count / pushed_s * 60, 1),
        "cpu_s_per_study": round(cpu_s / count, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "arrival_to_mask_median_s": round(statistics.median(latencies), 2) if latencies else None,
        "arrival_to_mask_max_s": round(max(latencies), 2) if latencies else None,
        "rss_before_push_mb": round(rss_before_kb / 1024, 1),
        "peak_rss_during_run_mb": round(rss.peak_kb / 1024, 1),
        "peak_rss_lifetime_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model": loaded.info.label,
        "runtime": getattr(loaded, "runtime", ""),
        "threads": used_threads,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, {platform.system()}".strip(),
        "python": platform.python_version(),
    }


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): the work, whatever else the machine runs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "pacs_listener.json")
    args = parser.parse_args()
    result = run(args.studies, args.threads)
    rows = [
        ("studies pushed / stored / segmented", f"{result['studies']} / {result['stored']} / {result['segmented']}"),
        ("studies per minute (push -> last mask)", result["studies_per_min"]),
        ("push alone, studies per minute", result["push_studies_per_min"]),
        ("arrival -> mask, median / max (s)", f"{result['arrival_to_mask_median_s']} / {result['arrival_to_mask_max_s']}"),
        ("total (s)", result["total_s"]),
        ("CPU seconds per study (all threads)", result["cpu_s_per_study"]),
        ("load average (1 min) at the end", result["load_average_1min_at_end"]),
        ("model load, once (s)", result["model_load_s"]),
        ("RSS before the push (MB)", result["rss_before_push_mb"]),
        ("peak RSS during the run (MB)", result["peak_rss_during_run_mb"]),
        ("peak RSS, process lifetime (MB)", result["peak_rss_lifetime_mb"]),
        ("model / runtime / threads", f"{result['model']} / {result['runtime']} / {result['threads']}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if result["errors"]:
        print("errors:", *result["errors"], sep="\n  ")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
