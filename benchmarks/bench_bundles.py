"""Reader vs annotator bundle: size on disk, cold and warm start to the first mask, peak memory.

For each built bundle (``dist/adaqat-reader``, ``dist/adaqat-annotator``, and any ``--bundle NAME=DIR``,
e.g. an older build kept for comparison) this measures, in the same run and interleaved so that the
machine's load hits every bundle alike:

* size: bytes of the unpacked folder (files, links not followed) and of its ``.tar.gz`` when present;
* ``segment``: ``adaqat segment`` of the sample DICOM (process start to mask written and exit);
* ``viewer``: ``adaqat-viewer FILE --screenshot`` (start, open the DICOM, first mask on screen, exit);

each once **cold** (the whole page cache dropped first, ``sync; echo 3 > /proc/sys/vm/drop_caches``,
as after a reboot, where this process may write it, i.e. as root; otherwise, or with ``--evict-only``, only
the bundle's own files with ``posix_fadvise(DONTNEED)``) and ``--warm`` times warm (page cache kept, but each run in a fresh ``$ADAQAT_HOME``, so that every run computes
its mask), under ``/usr/bin/time -v`` for the peak resident set and the CPU seconds (user + system,
a figure the machine's load barely moves, unlike the wall time). Runs offline-equivalent (the
commands make no network call). Prints a table and writes
``benchmarks/results/bundles.json``.

    python benchmarks/bench_bundles.py [--rounds 2] [--warm 2] [--bundle today=/path/to/adaqat]
                                       [--checkout before=/path/to/old/checkout --checkout now=.]

``--checkout NAME=DIR`` runs a source checkout with this interpreter instead of a bundle (``python -m
core.cli segment``, ``python -m app``; warm runs only: its libraries are the shared venv's), e.g. the
code before the torch-free route against today's, to see what the import path alone costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path("_internal") / "resources" / "samples" / "chest_cr_RG1_J2KR.dcm"
TASKS = ("segment", "viewer")


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``folder`` (links not followed)."""
    total = count = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
                count += 1
    return total, count


def evict(folder: Path) -> None:
    """Drop the folder's files from the page cache (clean pages only; nothing else is touched)."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_caches(folder: Path, evict_only: bool) -> str:
    """Make the next start cold: the whole page cache where allowed, else the folder's files. Returns which."""
    if not evict_only and os.access(DROP_CACHES, os.W_OK):
        os.sync()
        DROP_CACHES.write_text("3\n")
        return "drop_caches"
    evict(folder)
    return "fadvise"


def is_checkout(folder: Path) -> bool:
    return (folder / "core" / "cli").is_dir() and not (folder / "adaqat-viewer").exists()


def command(bundle: Path, task: str, out: Path) -> list[str]:
    if is_checkout(bundle):
        sample = str(bundle / "resources" / "samples" / SAMPLE.name)
        if task == "segment":
            return [sys.executable, "-m", "core.cli", "segment", sample, "--out", str(out / "masks")]
        return [sys.executable, "-m", "app", sample, "--screenshot", str(out / "screenshot.png")]
    sample = str(bundle / SAMPLE)
    if task == "segment":
        return [str(bundle / "adaqat"), "segment", sample, "--out", str(out / "masks")]
    return [str(bundle / "adaqat-viewer"), sample, "--screenshot", str(out / "screenshot.png")]


def timed(cmd: list[str], env: dict, cwd: Path) -> dict:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one run under /usr/bin/time -v; raises on failure."""
    report = cwd / "time.txt"
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", "-o", str(report), *cmd], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=1800, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    text = report.read_text()
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([0-9.]+)", text).group(1)) for kind in ("User", "System"))
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mib": round(rss_kib / 1024)}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def fresh_env(bundle: Path, home: Path) -> dict:
    """A new user folder for every run: a warm viewer run must compute its mask too, not find the last run's."""
    home.mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "ADAQAT_HOME": str(home / "home"),
           "ADAQAT_SETTINGS": str(home / "viewer.ini"), "QT_QPA_PLATFORM": "offscreen"}
    if is_checkout(bundle):
        env["PYTHONPATH"] = str(bundle)
    return env


def measure(bundles: dict[str, Path], rounds: int, warm: int, evict_only: bool = False) -> dict:
    runs: dict[str, dict[str, dict[str, list]]] = {
        name: {task: {"cold": [], "warm": []} for task in TASKS} for name in bundles}
    with tempfile.TemporaryDirectory(prefix="bench-bundles-") as scratch:
        for round_index in range(rounds):
            for task in TASKS:
                for name, bundle in bundles.items():
                    work = Path(scratch) / f"{name}-{task}-{round_index}"
                    work.mkdir()
                    if not is_checkout(bundle):
                        how = drop_caches(bundle, evict_only)
                        cold = timed(command(bundle, task, work), fresh_env(bundle, work / "cold"), work) | {
                            "load": load_average(), "cold": how}
                        runs[name][task]["cold"].append(cold)
                        print(f"  round {round_index + 1} {task:8s} {name:10s} cold {cold['seconds']:7.2f} s "
                              f"(cpu {cold['cpu_seconds']:6.2f} s) {cold['peak_rss_mib']:5d} MiB "
                              f"(load {cold['load']}, {how})", flush=True)
                    for index in range(warm):
                        hot = timed(command(bundle, task, work), fresh_env(bundle, work / f"warm{index}"), work) | {
                            "load": load_average()}
                        runs[name][task]["warm"].append(hot)
                        print(f"  round {round_index + 1} {task:8s} {name:10s} warm {hot['seconds']:7.2f} s "
                              f"(cpu {hot['cpu_seconds']:6.2f} s) {hot['peak_rss_mib']:5d} MiB (load {hot['load']})",
                              flush=True)
    results = {}
    for name, bundle in bundles.items():
        size, files = folder_bytes(bundle) if not is_checkout(bundle) else (0, 0)
        archive = bundle.parent / f"{bundle.name}-linux-x86_64.tar.gz"
        row = {"path": str(bundle), "unpacked_bytes": size, "files": files,
               "archive_bytes": archive.stat().st_size if archive.is_file() else None}
        for task in TASKS:
            for kind in ("cold", "warm"):
                values = runs[name][task][kind]
                if values:
                    row[f"{task}_{kind}_s_median"] = round(statistics.median(v["seconds"] for v in values), 2)
                    row[f"{task}_{kind}_cpu_s_median"] = round(statistics.median(v["cpu_seconds"] for v in values), 2)
                    row[f"{task}_{kind}_peak_rss_mib_max"] = max(v["peak_rss_mib"] for v in values)
            row[f"{task}_runs"] = runs[name][task]
        results[name] = row
    return results


def table(results: dict) -> str:
    lines = ["| bundle | unpacked | archive | segment cold | segment warm | viewer cold | viewer warm | peak RSS segment / viewer |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # times: wall s (CPU s)
    for name, row in results.items():
        archive = f"{row['archive_bytes'] / 1e6:,.0f} MB" if row["archive_bytes"] else "-"
        cells = [f"{row.get(f'{task}_{kind}_s_median', float('nan')):.1f} s ({row.get(f'{task}_{kind}_cpu_s_median', float('nan')):.1f} s CPU)"
                 for task in TASKS for kind in ("cold", "warm")]
        peaks = [max(row.get(f"{task}_{kind}_peak_rss_mib_max", 0) for kind in ("cold", "warm")) for task in TASKS]
        rss = f"{peaks[0]} / {peaks[1]} MiB"  # the most of any run, cold or warm
        lines.append(f"| {name} | {row['unpacked_bytes'] / 1e6:,.0f} MB | {archive} | " + " | ".join(cells) + f" | {rss} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", default=str(ROOT / "dist"))
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=DIR", help="another bundle to compare")
    parser.add_argument("--checkout", action="append", default=[], metavar="NAME=DIR",
                        help="a source checkout run with this interpreter (warm runs only)")
    parser.add_argument("--no-dist", action="store_true", help="leave out the bundles found under --dist")
    parser.add_argument("--rounds", type=int, default=2, help="cold runs per bundle and task")
    parser.add_argument("--warm", type=int, default=2, help="warm runs after each cold one")
    parser.add_argument("--evict-only", action="store_true",
                        help="cold runs: drop only the bundle's files from the cache, never the whole page cache")
    parser.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "bundles.json"))
    args = parser.parse_args()
    bundles = {flavour: Path(args.dist) / f"adaqat-{flavour}" for flavour in ("reader", "annotator")
               if (Path(args.dist) / f"adaqat-{flavour}" / "adaqat-viewer").is_file() and not args.no_dist}
    for item in args.bundle + args.checkout:
        name, _, folder = item.partition("=")
        bundles[name] = Path(folder).resolve()
    if not bundles:
        raise SystemExit("error: no bundle found (run: bash packaging/build.sh)")
    results = measure(bundles, args.rounds, args.warm, args.evict_only)
    print(table(results))
    memory = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    record = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                          "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None},
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": args.rounds, "warm": args.warm,
              "bundles": results}
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
