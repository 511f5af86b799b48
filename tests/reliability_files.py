"""Hostile but realistic clinic files, built feature by feature (for the reliability tests and fuzzer).

Each builder writes one file under ``folder`` with real writers (pydicom, PIL) and returns its path;
``FEATURES`` maps a feature name to a builder taking ``(folder, rng)``, so the fuzzer can make many
variants of each feature and mutate them.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from tests.shared_data import write_dicom

ANATOMY_LO, ANATOMY_HI = 2000, 2200  # a narrow band: with the padding counted, ~12 grey levels


def chest_like(shape=(96, 80), lo: float = ANATOMY_LO, hi: float = ANATOMY_HI, seed: int = 0) -> np.ndarray:
    """A smooth, left/right asymmetric float image in [lo, hi] (so flips and bands show)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    base = 0.55 * rows / shape[0] + 0.35 * cols / shape[1]
    base[: shape[0] // 3, : shape[1] // 4] += 0.1  # a bright block top-left: mirror images differ
    base += np.random.default_rng(seed).normal(0.0, 0.002, shape)
    base = (base - base.min()) / (base.max() - base.min())
    return lo + base * (hi - lo)


def padded_dx(folder: Path, name: str = "padded.dcm", *, padding: int = 0, range_limit: int | None = None,
              signed: bool = False, photometric: str = "MONOCHROME2", border: int = 12, seed: int = 0, **elements) -> Path:
    """A 12-bit DX whose border is Pixel Padding (one value, or a range up to ``range_limit``)."""
    dtype = np.int16 if signed else np.uint16
    pixels = np.rint(chest_like(seed=seed)).astype(dtype)
    ring = np.ones(pixels.shape, bool)
    ring[border:-border, border:-border] = False
    lo, hi = sorted((padding, padding if range_limit is None else range_limit))
    pixels[ring] = np.random.default_rng(seed).integers(lo, hi + 1, int(ring.sum())).astype(dtype)
    bits = 16 if signed else 12  # 12-bit signed stops at 2047, below the anatomy band
    extra = {"PixelPaddingValue": padding, "BitsStored": bits, "HighBit": bits - 1} | elements
    if range_limit is not None:
        extra["PixelPaddingRangeLimit"] = range_limit
    path = write_dicom(folder / name, pixels, photometric=photometric, **extra)
    return path


def dx_32bit(folder: Path, name: str = "dx32.dcm", *, signed: bool = False, seed: int = 0) -> Path:
    """A 32-bit DX whose values sit next to 2**31 (or -2**31): float32 would step by 256 there."""
    span = chest_like(lo=0, hi=4000, seed=seed)
    if signed:
        pixels = (np.int64(-(2**31)) + 5 + np.rint(span).astype(np.int64)).astype(np.int32)
    else:
        pixels = (np.int64(2**31) + np.rint(span).astype(np.int64)).astype(np.uint32)
    return write_dicom(folder / name, pixels)


def deflated_dx(folder: Path, name: str = "deflated.dcm", *, keep: float = 1.0, seed: int = 0) -> Path:
    """A Deflated Explicit VR Little Endian DX, cut to ``keep`` of its length (1.0 = whole)."""
    path = write_dicom(folder / name, np.rint(chest_like(seed=seed)).astype(np.uint16),
                       transfer_syntax=DeflatedExplicitVRLittleEndian, BitsStored=12, HighBit=11)
    if keep < 1.0:
        data = path.read_bytes()
        path.write_bytes(data[: max(200, int(len(data) * keep))])
    return path


def jpeg_bytes(pixels: np.ndarray, orientation: int | None = None, quality: int = 95) -> bytes:
    """8-bit grey JPEG bytes (PIL), with an EXIF orientation tag when given."""
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    kwargs = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def exif_jpeg(folder: Path, orientation: int, name: str | None = None, seed: int = 0) -> Path:
    path = folder / (name or f"exif{orientation}.jpg")
    path.write_bytes(jpeg_bytes(chest_like(lo=20, hi=235, seed=seed), orientation))
    return path


def padded_size_jpeg(folder: Path, name: str = "huge.jpg", *, padding: int = 128 * 1024, fill: bool = False,
                     height: int = 20000, width: int = 20000) -> Path:
    """A JPEG whose frame header claims ``height``x``width`` and sits after ``padding`` bytes
    (COM segments, or 0xFF fill bytes when ``fill``)."""
    data = jpeg_bytes(chest_like(lo=20, hi=235))
    if fill:
        pad = b"\xff" * padding
    else:
        chunk = 60000
        pad = b"".join(b"\xff\xfe" + struct.pack(">H", min(chunk, padding - done) + 2) + b"c" * min(chunk, padding - done)
                       for done in range(0, padding, chunk))
    data = data[:2] + pad + data[2:]
    sof = next(i for i in range(2 + len(pad), len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
    data = data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]
    path = folder / name
    path.write_bytes(data)
    return path


def fifo(folder: Path, name: str = "b.dcm") -> Path:
    """A named pipe that nobody writes to: opening it for reading would block forever."""
    path = folder / name
    os.mkfifo(path)
    return path


def duplicate_uid_pair(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Two different images that carry the same SOPInstanceUID (an anonymiser's or re-export's doing)."""
    uid = generate_uid()
    first = write_dicom(folder / f"a{seed}.dcm", np.rint(chest_like(seed=seed)).astype(np.uint16),
                        SOPInstanceUID=uid, BitsStored=12, HighBit=11)
    second = write_dicom(folder / f"b{seed}.dcm", np.rint(chest_like(seed=seed + 1)[::-1]).astype(np.uint16),
                         SOPInstanceUID=uid, BitsStored=12, HighBit=11)
    return first, second


ODD_NAMES = (
    "red\x1b[31m.dcm",                 # terminal escape code
    "clear\x1b[2J\x1b[H.dcm",
    "cr\rover.dcm",                    # carriage return
    "latin1-\udce9t\udce9.dcm",        # bytes that are not UTF-8 (surrogateescape)
    "space  and\ttab.dcm",
    "x" * 240 + ".dcm",                # long, but under 255 bytes
)


def odd_name(folder: Path, rng: random.Random, seed: int = 0) -> Path:
    """A valid DX under a hostile file name."""
    name = rng.choice(ODD_NAMES)
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
    return write_dicom(path, np.rint(chest_like(seed=seed)).astype(np.uint16), BitsStored=12, HighBit=11)


PADDING_VARIANTS = (
    {"padding": 0},
    {"padding": 0, "range_limit": 50},
    {"padding": 4095},
    {"padding": 4095, "range_limit": 4000},
    {"padding": -2000, "signed": True},
    {"padding": 4095, "photometric": "MONOCHROME1"},
    {"padding": 0, "WindowCenter": 2100, "WindowWidth": 200},
)

FEATURES = {
    "padding": lambda folder, rng: padded_dx(folder, f"pad{rng.randrange(10**6)}.dcm", seed=rng.randrange(100),
                                             **rng.choice(PADDING_VARIANTS)),
    "32-bit": lambda folder, rng: dx_32bit(folder, f"b32_{rng.randrange(10**6)}.dcm", signed=rng.random() < 0.5,
                                           seed=rng.randrange(100)),
    "deflate": lambda folder, rng: deflated_dx(folder, f"defl{rng.randrange(10**6)}.dcm",
                                               keep=rng.choice([1.0, 0.9, 0.5, 0.2]), seed=rng.randrange(100)),
    "exif": lambda folder, rng: exif_jpeg(folder, rng.randrange(1, 9), f"exif{rng.randrange(10**6)}.jpg"),
    "jpeg-size-padding": lambda folder, rng: padded_size_jpeg(folder, f"pad{rng.randrange(10**6)}.jpg",
                                                              fill=rng.random() < 0.5),
    "duplicate-uid": lambda folder, rng: duplicate_uid_pair(folder, rng.randrange(10**6))[1],
    "odd-name": lambda folder, rng: odd_name(folder, rng, rng.randrange(100)),
    "fifo": lambda folder, rng: fifo(folder, f"pipe{rng.randrange(10**6)}" + rng.choice([".dcm", ".png", ""])),
}
# Features whose intact files must open (the others must be refused even intact).
LOADABLE_FEATURES = frozenset({"padding", "32-bit", "exif", "duplicate-uid", "odd-name"})


@contextlib.contextmanager
def read_only_folder(folder: Path):
    """``folder`` made read-only for real: a read-only bind mount when root (root ignores modes), else chmod."""
    if os.geteuid() == 0:
        try:
            subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip("running as root without the right to mount: a read-only folder cannot be made")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=False, capture_output=True)
        return
    modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield folder
    finally:
        for path, mode in reversed(list(modes.items())):
            path.chmod(mode)
