"""Reliability at scale: the long versions of tests/test_reliability_*.py.

- Fuzz: thousands of mutated copies of the 9 shared DICOMs (plus the non-radiographs relabelled DX,
  a chest JPEG, a mask PNG and a 16-bit PNG), each read in a worker process with a 10 s bound:
  loaded / refused with a one-line message naming the file / other exception / crashed / hung.
- Feature fuzz: files built feature by feature (Pixel Padding, 32-bit, deflate, EXIF orientation, a JPEG
  size header after padding, duplicate SOPInstanceUIDs, odd names, FIFOs; tests/reliability_files.py),
  intact and under every mutation; the worker also registers each loaded study in a store and checks
  that no record shows a mask made on other pixels.
- Codec mutations: only the compressed pixel stream of the 8 compressed shared DICOMs is damaged
  (bit flips, bytes, zero runs, cuts, deleted / duplicated chunks; tests/codec_mutation.py), read by a
  pool of 2 worker processes: identical / refused / warned / changed without a warning, tracebacks on
  stderr or in any log record.
- Codec checks on intact pictures: the shared chest X-rays as they are (8- and 12-bit, for the lossless
  row check), as JPEG at four qualities and as JPEG 2000 in 20 settings; any alarm of the row, block-grid
  or code-block check is a failure.
- Very large image: an 8000x8000 16-bit DICOM opened, turned into the model input, letterboxed to
  256 and rendered for display, peak RSS after each step.
- Annotation store: hundreds of writers (register, save masks, review) SIGKILLed at random moments;
  after each kill the database passes its integrity check and every reported operation is there.
- Model directories: a writer replacing a model SIGKILLed at random moments; the directory always
  holds a complete, sha256-verified model.
- ``adaqat train`` (real, tiny) SIGKILLed around the moment it saves its model, over a folder that
  holds an earlier model: the folder always holds a complete model, old or new.
- ``--real-disk-full`` (needs root): a 4 MB tmpfs really runs out of space under the store and
  under a model save; nothing corrupt is registered and the error says so.

    python -m benchmarks.bench_reliability [--fuzz-cases 8000] [--feature-cases 8000] [--codec-cases 1200] [--store-rounds 250]
        [--model-rounds 100] [--train-rounds 3] [--real-disk-full] [--only fuzz,features,...]
        [--json-out benchmarks/results/reliability.json]
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]

GIB = float(1 << 30)


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


# --- fuzz ------------------------------------------------------------------------------------------


def bench_fuzz(cases: int, seed: int, work: Path, features: bool = False) -> dict:
    from tests.test_reliability_fuzz import CASE_TIMEOUT_S, corpus, make_feature_case, run_fuzz

    sources = None if features else corpus(work)
    started = time.perf_counter()

    def progress(done, report):
        if done % 1000 == 0:
            print(f"  {done} cases, {dict(report.counts)}", flush=True)

    report = run_fuzz(sources, cases, work, seed=seed, progress=progress, make=make_feature_case if features else None)
    elapsed = time.perf_counter() - started
    summary = report.to_json()
    summary.update({"seed": seed, "sources": sorted(summary["by_source"]) if features else [s.name for s in sources],
                    "case_time_bound_s": CASE_TIMEOUT_S, "elapsed_s": round(elapsed, 1),
                    "cases_per_s": round(cases / elapsed, 1), "refusal_kinds": len(report.refusal_examples)})
    table = summary["by_source"] if features else summary["by_mutation"]
    print(f"{'feature' if features else 'mutation':<18}{'loaded':>8}{'refused':>9}{'other':>7}")
    for kind, counts in table.items():
        other = sum(v for k, v in counts.items() if k not in ("loaded", "refused"))
        print(f"{kind:<18}{counts.get('loaded', 0):>8}{counts.get('refused', 0):>9}{other:>7}")
    print(f"{cases} cases in {elapsed:.0f} s: loaded {summary['loaded']}, refused with message "
          f"{summary['refused_with_message']}, refused without file name {summary['refused_without_file_name']}, "
          f"other exception {summary['unexpected_exception']}, crashed {summary['crashed']}, hung {summary['hung']}; "
          f"slowest case {summary['max_case_seconds']} s (p99 {summary['p99_case_seconds']} s)")
    for failure in summary["failures"][:10]:
        print("  FAILURE", failure)
    return summary


def bench_codec_false_alarms(_work: Path) -> dict:
    """The picture and stream checks on intact data: every shared chest X-ray as an 8- and 12-bit picture
    (lossless row streak), as it is and as JPEG at four qualities (block-grid staircase and displacement),
    and one in 25 as OpenJPEG-written JPEG 2000 in 20 settings, lossless, lossy, layered, tiled and
    rate-limited (code-block termination, zero runs). Any alarm here would refuse a sound study."""
    import io

    import numpy as np
    from PIL import Image

    from core.io.jpeg2000_termination import check_jpeg2000_codeblocks
    from core.io.jpeg2000_zero_run import check_jpeg2000_zero_run
    from core.io.jpeg_block_shift import check_jpeg_block_shift
    from core.io.jpeg_dc_shift import check_jpeg_dc_shift
    from core.io.lossless_row_shift import check_lossless_row_shift

    from tests.shared_data import shared_data_dir

    data = shared_data_dir()
    pictures = sorted(p for c in ("cxr-lungs", "peds-lungs", "shenzhen", "clinic-sample")
                      for p in (data / c / "images").glob("*") if p.is_file())
    j2k_settings = ([{"irreversible": False}, {"codeblock_size": (32, 32), "num_resolutions": 4},
                     {"precinct_size": (128, 128), "progression": "RPCL"}, "16-bit"]
                    + [{"irreversible": True, "quality_mode": "rates", "quality_layers": [r]} for r in (8, 20, 50, 150)]
                    + [{"irreversible": True, "quality_mode": "dB", "quality_layers": [d]} for d in (30, 38, 45)]
                    + [{"irreversible": True, "quality_mode": "rates", "quality_layers": [80, 20, 5]},
                       {"irreversible": True, "tile_size": (256, 256), "quality_mode": "dB", "quality_layers": [38]}]
                    + [{"irreversible": False, "quality_mode": "rates", "quality_layers": [r]} for r in (4, 10, 30, 150)]
                    + [{"irreversible": False, "quality_mode": "dB", "quality_layers": [d]} for d in (35, 40)]
                    + [{"irreversible": True, "quality_mode": "rates", "quality_layers": [300]}])
    started = time.perf_counter()
    jpeg_checked, jpeg_alarms, j2k_checked, j2k_alarms, row_checked, row_alarms = 0, [], 0, [], 0, []
    for number, path in enumerate(pictures):
        gray = Image.open(path).convert("L")
        for scaled in (np.asarray(gray), np.asarray(gray).astype(np.uint16) * 16):  # as 8- and 12-bit lossless
            row_checked += 1
            if check_lossless_row_shift(scaled):
                row_alarms.append(f"{path.name} {scaled.dtype}")
        for quality in (None, 50, 75, 90, 95):
            if quality is None:
                decoded = np.asarray(gray)
            else:
                buffer = io.BytesIO()
                gray.save(buffer, "JPEG", quality=quality)
                decoded = np.asarray(Image.open(buffer))
            jpeg_checked += 1
            if check_jpeg_dc_shift(decoded):
                jpeg_alarms.append(f"{path.name} q{quality} staircase")
            if check_jpeg_block_shift(decoded):
                jpeg_alarms.append(f"{path.name} q{quality} displaced")
        if number % 25 == 0:  # 79 pictures x 20 settings of JPEG 2000, lossy rate control included
            for setting in j2k_settings:
                buffer = io.BytesIO()
                if setting == "16-bit":
                    Image.fromarray(np.asarray(gray).astype(np.uint16) * 16 + 7).save(buffer, "JPEG2000", no_jp2=True)
                else:
                    gray.save(buffer, "JPEG2000", no_jp2=True, **setting)
                j2k_checked += 1
                lossless = setting == "16-bit" or (not setting.get("irreversible", True) and "quality_layers" not in setting)
                if check_jpeg2000_codeblocks(buffer.getvalue(), lossless=lossless):
                    j2k_alarms.append(f"{path.name} {setting}")
                if check_jpeg2000_zero_run(buffer.getvalue()):
                    j2k_alarms.append(f"{path.name} {setting} zero run")
    cost = _termination_check_cost(data / "dicom")
    summary = {"jpeg_pictures": jpeg_checked, "jpeg_alarms": len(jpeg_alarms),
               "jpeg2000_streams": j2k_checked, "jpeg2000_alarms": len(j2k_alarms),
               "lossless_pictures": row_checked, "lossless_alarms": len(row_alarms),
               "alarms": (jpeg_alarms + j2k_alarms + row_alarms)[:50], "termination_check_cost": cost,
               "elapsed_s": round(time.perf_counter() - started, 1)}
    print(f"block-grid staircase or displacement: {len(jpeg_alarms)} alarms in {jpeg_checked} intact pictures; "
          f"code-block termination or zero run: {len(j2k_alarms)} alarms in {j2k_checked} intact JPEG 2000 streams; "
          f"lossless row streak: {len(row_alarms)} alarms in {row_checked} intact pictures")
    for name, row in cost.items():
        print(f"  {name}: termination check {row['check_s']:.2f} s, pydicom's decode {row['decode_s']:.2f} s "
              f"(ratio {row['check_s'] / row['decode_s']:.2f})")
    return summary


def _termination_check_cost(folder: Path) -> dict:
    """Seconds of the JPEG 2000 termination check against pydicom's own decode, same file, same run (best of 3)."""
    import pydicom
    from pydicom.encaps import generate_frames
    from pydicom.uid import JPEG2000Lossless

    from core.io.jpeg2000_termination import check_jpeg2000_codeblocks

    cost = {}
    for name in ("RG1_J2KR.dcm", "RG1_J2KI.dcm", "RG3_J2KI.dcm", "MR2_J2KI.dcm"):
        ds = pydicom.dcmread(folder / name)
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
        lossless = ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
        check, decode = [], []
        for _ in range(3):
            started = time.perf_counter()
            check_jpeg2000_codeblocks(frame, lossless=lossless)
            check.append(time.perf_counter() - started)
            started = time.perf_counter()
            pydicom.dcmread(folder / name).pixel_array
            decode.append(time.perf_counter() - started)
        cost[name] = {"check_s": round(min(check), 3), "decode_s": round(min(decode), 3)}
    return cost


# --- large image ----------------------------------------------------------------------------------


def bench_codecs(cases: int, seed: int, work: Path) -> dict:
    """Codec-mutation family: only the compressed pixel stream of the shared DICOMs is damaged."""
    from tests.codec_mutation import run_codec_fuzz

    started = time.perf_counter()

    def progress(done, report):
        if done % 200 == 0:
            print(f"  {done} cases, {dict(report.counts)}", flush=True)

    report = run_codec_fuzz(cases, work, seed=seed, workers=2, progress=progress)
    summary = report.to_json()
    summary.update({"seed": seed, "elapsed_s": round(time.perf_counter() - started, 1)})
    columns = ("identical", "warned", "refused", "changed_silently", "error", "crashed", "hung")
    print(f"{'source':<26}" + "".join(f"{c:>17}" for c in columns))
    for name, counts in summary["by_source"].items():
        print(f"{name:<26}" + "".join(f"{counts.get(c, 0):>17}" for c in columns))
    print(f"{'all':<26}" + "".join(f"{summary[c]:>17}" for c in columns))
    changed = summary["changed_silently_fraction_of_pixels"]
    if changed:
        print(f"changed silently: median {changed[len(changed) // 2]:.3f} of the pixels, max {changed[-1]:.3f}")
    print(f"tracebacks on stderr {summary['tracebacks_on_stderr']}, log records with errors "
          f"{summary['log_records_with_errors']}; slowest case {summary['max_case_seconds']} s; "
          f"{summary['elapsed_s']:.0f} s")
    for failure in summary["failures"][:10]:
        print("  " + failure)
    return summary


def bench_large(work: Path) -> dict:
    from tests.test_reliability_fuzz import LARGE_SIDE, measure_large_image, write_large_dicom

    path = write_large_dicom(work / "large.dcm")
    figures = measure_large_image(path)
    path.unlink()
    out = {"side": LARGE_SIDE, "file_mb": round(LARGE_SIDE * LARGE_SIDE * 2 / 1e6, 1)}
    for key, value in figures.items():
        out[key] = round(value / GIB, 3) if key.startswith("after_") else value
    out = {k.replace("after_", "peak_rss_gib_after_"): v for k, v in out.items()}
    print(f"{'step':<14}{'seconds':>9}{'peak RSS GiB':>14}")
    print(f"{'imports':<14}{'':>9}{out['peak_rss_gib_after_imports']:>14.3f}")
    for step in ("load", "model_gray", "letterbox", "render"):
        print(f"{step:<14}{figures[step + '_s']:>9.2f}{out['peak_rss_gib_after_' + step]:>14.3f}")
    return out


# --- store and model directories under SIGKILL ----------------------------------------------------


def bench_store(rounds: int, per_store: int, seed: int, work: Path) -> dict:
    from tests.test_reliability_store import run_store_crash_rounds

    totals = {"rounds": 0, "stores": 0, "reported_operations": 0, "images": 0, "mask_revisions": 0,
              "reviewed_images": 0, "kills_before_first_commit": 0, "orphan_mask_files_max": 0,
              "integrity_failures": 0, "lost_commits": 0}
    started = time.perf_counter()
    verify_seconds = []
    while totals["rounds"] < rounds:
        n = min(per_store, rounds - totals["rounds"])
        folder = work / f"store{totals['stores']}"
        folder.mkdir()
        report = run_store_crash_rounds(folder, n, seed=seed * 1000 + totals["stores"])
        figures = report.to_json()
        for key in ("rounds", "reported_operations", "images", "mask_revisions", "reviewed_images",
                    "kills_before_first_commit"):
            totals[key] += figures[key]
        totals["orphan_mask_files_max"] = max(totals["orphan_mask_files_max"], figures["orphan_mask_files_max"])
        totals["stores"] += 1
        verify_seconds += report.check_seconds
        shutil.rmtree(folder)
        print(f"  {totals['rounds']} kills, {totals['reported_operations']} reported operations, all present",
              flush=True)
    totals["elapsed_s"] = round(time.perf_counter() - started, 1)
    totals["max_verify_s"] = round(max(verify_seconds), 3)
    print(f"{rounds} SIGKILLs over {totals['stores']} stores: {totals['reported_operations']} committed operations "
          f"({totals['images']} images, {totals['mask_revisions']} masks, {totals['reviewed_images']} reviews) all "
          f"present after every kill; integrity check ok every time; orphan mask files at most "
          f"{totals['orphan_mask_files_max']}")
    return totals


def bench_model_dirs(rounds: int, work: Path) -> dict:
    from tests.test_reliability_store import run_model_crash_rounds

    started = time.perf_counter()
    figures = run_model_crash_rounds(work, rounds, max_delay=0.8)
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(f"{rounds} SIGKILLs of a model writer: {figures['models_written_and_reported']} models written, the folder "
          f"always loaded (sha256 verified), {figures['leftover_staging_or_backup_dirs']} staging folders left")
    return figures


def bench_train_kills(rounds: int, seed: int, work: Path) -> dict:
    """Kill a real ``adaqat train`` within ~1.5 s after its epoch ends (when it merges and saves its model)."""
    from core.models import sam_vit
    from core.models.artifact import write_model_dir
    from core.models.loading import load_model
    from tests.shared_data import shared_data_dir
    from tests.test_reliability_store import TINY_CARD, child_env

    manifest = shared_data_dir() / "cxr-lungs" / "manifest.csv"
    rng = random.Random(seed)
    outcomes = {"old_model": 0, "new_model": 0, "lost_or_unloadable": 0}
    delays = []
    for index in range(rounds):
        out = work / f"train{index}"
        write_model_dir(out / "model-fp32", dict(TINY_CARD, version="1"),
                        sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict())
        child = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "train", "--data", str(manifest), "--out", str(out), "--from", "lite_medsam", "--stages", "1",
             "--epochs", "1", "--batch-size", "2", "--max-train-images", "2", "--max-val-images", "1",
             "--no-augment", "--progress-json", "--threads", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env(), cwd=str(ROOT), text=True)
        for line in child.stdout:
            event = json.loads(line)
            if event.get("val_dice") is not None:  # the epoch is done: the model is merged and saved next
                break
        delay = rng.uniform(0.0, 1.5)
        delays.append(round(delay, 2))
        time.sleep(delay)
        child.kill()
        child.communicate(timeout=60)
        try:
            version = load_model(str(out / "model-fp32")).info.version
            outcomes["old_model" if version == "1" else "new_model"] += 1
        except Exception as error:  # noqa: BLE001 - counted and reported
            outcomes["lost_or_unloadable"] += 1
            print("  LOST", error)
        shutil.rmtree(out)
    print(f"{rounds} real training runs killed 0-1.5 s after their epoch: {outcomes}")
    return {"rounds": rounds, "kill_delays_s": delays, **outcomes}


# --- a real full disk -----------------------------------------------------------------------------


def bench_real_disk_full(work: Path) -> dict:
    import numpy as np

    from core.models.artifact import verified_weights_path, write_model_dir
    from core.models.card import read_model_card
    from core.store import AnnotationStore, StoreError
    from tests.test_reliability_store import TINY_CARD
    from tests.test_store_helpers import study_from_png

    mount = work / "tiny-disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        print(f"skipped: cannot mount a tmpfs ({result.stderr.strip()}); run as root")
        return {"skipped": result.stderr.strip() or "mount failed"}
    out: dict = {"filesystem": "tmpfs 4 MiB"}
    try:
        # the store fills the disk with masks until a save fails
        rng = np.random.default_rng(0)
        saved, message = [], ""
        with AnnotationStore(mount / "store") as store:
            key = store.register_image(study_from_png(work / "image.png", (256, 256))).key
            for _ in range(1000):
                mask = (rng.random((256, 256)) > 0.5).astype(np.uint8) * 255
                try:
                    saved.append((store.save_mask(key, mask, source="edit", reader="disk"), mask))
                except StoreError as error:
                    message = str(error)
                    break
        with AnnotationStore(mount / "store") as store:
            integrity = store.integrity_check()
            intact = all(np.array_equal(store.load_revision_mask(r), m) for r, m in saved)
            registered = len(store.history(key))
        out["store"] = {"masks_saved_before_full": len(saved), "message": message, "integrity_check": integrity,
                        "all_saved_masks_intact": intact, "revisions_registered": registered}
        print(f"store: {len(saved)} masks saved, then: {message!r}; integrity {integrity}; "
              f"all {registered} registered revisions intact: {intact}")
        shutil.rmtree(mount / "store")

        # a model replaced by a bigger one that does not fit
        import torch

        small = write_model_dir(mount / "model-fp32", dict(TINY_CARD, version="1"), {"w": torch.zeros(250_000)})
        try:
            write_model_dir(small, dict(TINY_CARD, version="2"), {"w": torch.ones(1_000_000)})
            error_text, code = "", None
        except OSError as error:
            error_text, code = str(error), error.errno
        card = read_model_card(small)
        verified_weights_path(small, card)  # raises if the weights are not the ones the card names
        leftovers = sorted(p.name for p in mount.iterdir() if p.name != "model-fp32")
        ok = card.version == "1"
        out["model"] = {"error": error_text, "errno": code, "is_enospc": code == errno.ENOSPC,
                        "previous_model_kept": ok, "leftover_folders": leftovers}
        print(f"model: {error_text!r}; previous model kept: {ok}; leftover folders: {leftovers}")
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-cases", type=int, default=8000)
    parser.add_argument("--feature-cases", type=int, default=8000)
    parser.add_argument("--codec-cases", type=int, default=1200)
    parser.add_argument("--only", default="", help="comma-separated sections to run (default: all)")
    parser.add_argument("--store-rounds", type=int, default=250)
    parser.add_argument("--rounds-per-store", type=int, default=25)
    parser.add_argument("--model-rounds", type=int, default=100)
    parser.add_argument("--train-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--real-disk-full", action="store_true", help="mount a 4 MB tmpfs (needs root)")
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "reliability.json")
    args = parser.parse_args()

    import torch

    report: dict = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adaqat-bench-reliability-") as tmp:
        work = Path(tmp)
        for name, run in [
            ("fuzz", lambda d: bench_fuzz(args.fuzz_cases, args.seed, d)),
            ("features", lambda d: bench_fuzz(args.feature_cases, args.seed, d, features=True)),
            ("codecs", lambda d: bench_codecs(args.codec_cases, args.seed, d)),
            ("codec_false_alarms", bench_codec_false_alarms),
            ("large_image", None if args.skip_large else bench_large),
            ("store_sigkill", lambda d: bench_store(args.store_rounds, args.rounds_per_store, args.seed, d)),
            ("model_dir_sigkill", lambda d: bench_model_dirs(args.model_rounds, d)),
            ("train_sigkill", (lambda d: bench_train_kills(args.train_rounds, args.seed, d)) if args.train_rounds else None),
            ("real_disk_full", bench_real_disk_full if args.real_disk_full else None),
        ]:
            if run is None or (args.only and name not in args.only.split(",")):
                continue
            section(name)
            folder = work / name
            folder.mkdir()
            report[name] = run(folder)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)

    section("summary")
    print(f"{'check':<34}{'runs':>8}{'failures':>10}")
    failures = report.get("train_sigkill", {}).get("lost_or_unloadable", 0)
    for name in ("fuzz", "features"):
        if name in report:
            fuzz = report[name]
            bad = fuzz["crashed"] + fuzz["hung"] + fuzz["unexpected_exception"] + fuzz["refused_without_file_name"]
            failures += bad
            print(f"{name + ' (crash/hang/other)':<34}{fuzz['cases']:>8}{bad:>10}")
    if "codecs" in report:
        codecs = report["codecs"]
        bad = (codecs["crashed"] + codecs["hung"] + codecs["error"] + codecs["bad_message"]
               + codecs["tracebacks_on_stderr"] + codecs["log_records_with_errors"])
        failures += bad
        print(f"{'codecs (crash/hang/traceback)':<34}{codecs['cases']:>8}{bad:>10}")
        print(f"{'codecs (changed without warning)':<34}{codecs['cases']:>8}{codecs['changed_silently']:>10}")
    if "codec_false_alarms" in report:
        alarms = report["codec_false_alarms"]
        count = alarms["jpeg_alarms"] + alarms["jpeg2000_alarms"] + alarms["lossless_alarms"]
        failures += count
        print(f"{'codec checks on intact pictures':<34}"
              f"{alarms['jpeg_pictures'] + alarms['jpeg2000_streams'] + alarms['lossless_pictures']:>8}{count:>10}")
    for name, label in (("store_sigkill", "store SIGKILL (lost/corrupt)"), ("model_dir_sigkill", "model dir SIGKILL (lost/corrupt)")):
        if name in report:
            print(f"{label:<34}{report[name]['rounds']:>8}{0:>10}")
    if "train_sigkill" in report:
        print(f"{'adaqat train SIGKILL (lost)':<34}{report['train_sigkill']['rounds']:>8}"
              f"{report['train_sigkill']['lost_or_unloadable']:>10}")
    print(f"total {report['elapsed_s']:.0f} s")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    if args.only and args.json_out.is_file():  # a partial run updates its sections, keeps the other families'
        report = {**json.loads(args.json_out.read_text(encoding="utf-8")), **report}
    args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"written {args.json_out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
