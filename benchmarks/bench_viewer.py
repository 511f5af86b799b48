"""Viewer latency: open -> image shown, open -> mask shown, and the longest GUI stall meanwhile.

Drives the real MainWindow offscreen with the real default model on a real DICOM (RG1_UNCR.dcm,
1841x1955, 15-bit CR). The model is loaded before the timed runs (a once-per-session cost, reported
separately), and one cold start (window + model load + open) is reported on its own. The stall is the
longest gap between ticks of a 10 ms QTimer on the GUI thread from the open until the mask is shown: what
a user would feel as a frozen window.

Launch -> window and launch -> first mask are timed on fresh processes running the real entry point
(``adaqat-viewer FILE``), from just before the process starts: the interpreter, imports, window,
model load (in its thread) and the first mask, as a reader would wait for them.

    python -m benchmarks.bench_viewer [--runs 3] [--launches 3] [--json-out benchmarks/results/viewer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("ADAQAT_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


class StallMeter:
    """Longest interval between 10 ms timer ticks while armed."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.max_gap = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        self._tick()
        return self.max_gap

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now


def wait_for(app, condition, timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def cold_start(app, path: Path) -> dict:
    """First use: the window loads the model itself (model thread) while the file is opened."""
    from app.main_window import MainWindow
    from app.services.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ADAQAT_SETTINGS"] = str(Path(tmp) / "settings.ini")
        meter = StallMeter()
        meter.start()
        started = time.perf_counter()
        window = MainWindow(store_path=Path(tmp) / "store", settings=Settings())
        window.resize(1600, 1000)
        window.show()
        marks: dict[str, float] = {}
        window.image_shown.connect(lambda _k: marks.setdefault("image", time.perf_counter()))
        window.mask_shown.connect(lambda _k: marks.setdefault("mask", time.perf_counter()))
        window.open_paths([path])
        if not wait_for(app, lambda: "mask" in marks, 120):
            raise SystemExit("mask not shown within 120 s (cold start)")
        stall = meter.stop()
        window.close()
        app.processEvents()
    return {"start_to_image_s": marks["image"] - started, "start_to_mask_s": marks["mask"] - started,
            "max_stall_ms": stall * 1000}


def launch_child(path: str, store: str) -> int:
    """Inside the launched process: the real ``adaqat-viewer FILE --screenshot`` start, with two clocks.

    Prints one JSON line of wall-clock times (``time.time()``, comparable with the parent's clock):
    the main window's first paint and its first mask shown. Only observes: the window, model thread
    and I/O thread are the product's own, started by ``app.main.main``.
    """
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QMainWindow

    marks: dict[str, float] = {}

    class FirstPaint(QObject):
        def eventFilter(self, watched, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint and isinstance(watched, QMainWindow) and "window" not in marks:
                marks["window"] = time.time()
                watched.image_shown.connect(lambda _key: marks.setdefault("image", time.time()))
                watched.segmentation.model_ready.connect(lambda _info: marks.setdefault("model", time.time()))
                watched.mask_shown.connect(lambda _key: marks.setdefault("mask", time.time()))
            return False

    app = QApplication.instance() or QApplication([sys.argv[0]])
    spy = FirstPaint()
    app.installEventFilter(spy)
    from app.main import main as viewer_main

    with tempfile.TemporaryDirectory() as tmp:
        code = viewer_main([path, "--store", store, "--screenshot", str(Path(tmp) / "shot.png")])
    print("LAUNCH " + json.dumps(marks), flush=True)
    return code


def launch(path: Path, runs: int) -> list[dict]:
    """Launch to window and launch to first mask, from the process start (interpreter included)."""
    import subprocess

    import resource

    rows = []
    for index in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, ADAQAT_SETTINGS=str(Path(tmp) / "settings.ini"), QT_QPA_PLATFORM="offscreen")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.time()
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--launch-child", str(path),
                                   "--store", str(Path(tmp) / "store")], env=env, capture_output=True, text=True,
                                  timeout=300)
            ended = time.time()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        line = next((x for x in done.stdout.splitlines() if x.startswith("LAUNCH ")), None)
        marks = json.loads(line[len("LAUNCH "):]) if line else {}
        if done.returncode != 0 or "mask" not in marks:
            raise SystemExit(f"launch {index + 1} failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
        rows.append({"run": index + 1, "launch_to_window_s": marks["window"] - started,
                     "launch_to_image_s": marks.get("image", float("nan")) - started,
                     "launch_to_model_ready_s": marks.get("model", float("nan")) - started,
                     "launch_to_mask_s": marks["mask"] - started, "process_s": ended - started,
                     # CPU seconds of the whole process (to exit, 0.3 s after the mask): what a busy machine cannot hide
                     "process_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)})
    return rows


def ready_window(app, tmp: Path, loaded):
    """A shown MainWindow on a fresh store and settings under ``tmp``, its (preloaded) model ready."""
    from app.main_window import MainWindow
    from app.services.settings import Settings

    os.environ["ADAQAT_SETTINGS"] = str(tmp / "settings.ini")
    window = MainWindow(store_path=tmp / "store", loaded_model=loaded, settings=Settings())
    window.resize(1600, 1000)
    window.show()
    if not wait_for(app, lambda: window.segmentation.model_info is not None, 60):
        raise SystemExit("model did not become ready")
    return window


def run(path: Path, runs: int) -> dict:
    from PySide6.QtWidgets import QApplication

    from core.models.loading import load_model

    app = QApplication.instance() or QApplication([])
    cold = cold_start(app, path)
    start = time.perf_counter()
    loaded = load_model("default", "cpu")
    model_load_s = time.perf_counter() - start
    rows = []
    for index in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            window = ready_window(app, Path(tmp), loaded)
            marks: dict[str, float] = {}
            window.image_shown.connect(lambda _k: marks.setdefault("image", time.perf_counter()))
            window.mask_shown.connect(lambda _k: marks.setdefault("mask", time.perf_counter()))
            meter = StallMeter()
            meter.start()
            opened = time.perf_counter()
            window.open_paths([path])
            if not wait_for(app, lambda: "mask" in marks, 120):
                raise SystemExit("mask not shown within 120 s")
            stall = meter.stop()
            rows.append({
                "run": index + 1,
                "open_to_image_s": marks["image"] - opened,
                "open_to_mask_s": marks["mask"] - opened,
                "max_stall_ms": stall * 1000,
            })
            window.close()
            app.processEvents()
    return {"model_load_s": model_load_s, "cold_start": cold, "runs": rows}


AIMS_S = {"launch_to_window_s": 2.0, "launch_to_mask_s": 4.0}


def summary_table(launches: list[dict], runs: list[dict]) -> list[dict]:
    """One row per measure: median, best, worst over its runs, and the aim where there is one."""
    measures = [("launch -> window", "launch_to_window_s", launches),
                ("launch -> image", "launch_to_image_s", launches),
                ("launch -> model ready", "launch_to_model_ready_s", launches),
                ("launch -> first mask", "launch_to_mask_s", launches), ("launch CPU time", "process_cpu_s", launches),
                ("open -> image", "open_to_image_s", runs), ("open -> mask", "open_to_mask_s", runs)]
    table = []
    for label, key, rows in measures:
        values = [r[key] for r in rows]
        if values:
            table.append({"measure": label, "key": key, "n": len(values), "median_s": statistics.median(values),
                          "min_s": min(values), "max_s": max(values), "aim_s": AIMS_S.get(key)})
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=None, help="study to open (default: shared RG1_UNCR.dcm)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--launches", type=int, default=3, help="fresh processes for launch -> window / first mask")
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "viewer.json")
    parser.add_argument("--precompute", type=int, nargs="?", const=20, default=None, metavar="N",
                        help="only the masks-ready-in-advance measure: a folder of N (20) images "
                             "(viewer_precompute.py)")
    parser.add_argument("--launch-child", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.launch_child:
        return launch_child(args.launch_child, args.store)
    if args.precompute:
        return precompute_main(args)
    path = args.file or shared_data_dir() / "dicom" / "RG1_UNCR.dcm"
    launches = launch(path, args.launches)
    result = run(path, args.runs)
    rows = result["runs"]
    summary = {key: statistics.median(r[key] for r in rows)
               for key in ("open_to_image_s", "open_to_mask_s", "max_stall_ms")}
    summary["max_stall_ms_worst"] = max(r["max_stall_ms"] for r in rows)
    table = summary_table(launches, rows)

    report = {
        "file": path.name,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                    "qpa": os.environ.get("QT_QPA_PLATFORM", "")},
        "model_load_s": result["model_load_s"],
        "launches": launches,
        "cold_start": result["cold_start"],
        "runs": rows,
        "median": summary,
        "table": table,
    }
    print(f"viewer benchmark on {path.name} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"model loaded in {result['model_load_s']:.2f} s)")
    print(f"{'measure':<22} {'n':>3} {'median (s)':>11} {'best (s)':>9} {'worst (s)':>10} {'aim (s)':>8}")
    for row in table:
        aim = f"{row['aim_s']:.1f}" if row["aim_s"] is not None else "-"
        print(f"{row['measure']:<22} {row['n']:>3} {row['median_s']:>11.3f} {row['min_s']:>9.3f} "
              f"{row['max_s']:>10.3f} {aim:>8}")
    print(f"launch = a fresh `adaqat-viewer FILE` process (interpreter start included); open = the file opened in a "
          f"window whose model is loaded; longest GUI stall while opening: {summary['max_stall_ms']:.1f} ms median, "
          f"{summary['max_stall_ms_worst']:.1f} ms worst")
    cold = result["cold_start"]
    print("in-process cold start (window created, model loaded in its thread, file opened): "
          f"image {cold['start_to_image_s']:.3f} s, "
          f"mask {cold['start_to_mask_s']:.3f} s, max stall {cold['max_stall_ms']:.1f} ms")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"written {args.json_out}")
    return 0


def precompute_main(args) -> int:
    """``--precompute``: the background-pass measure alone, written to its own JSON."""
    from PySide6.QtWidgets import QApplication

    from benchmarks.viewer_precompute import precompute_session, print_precompute

    app = QApplication.instance() or QApplication([])
    result = precompute_session(app, shared_data_dir(), args.precompute, StallMeter, wait_for, ready_window)
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    print_precompute(result)
    out = args.json_out.with_name("viewer_precompute.json") if args.json_out.name == "viewer.json" else args.json_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
