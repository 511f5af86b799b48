"""Find a JPEG picture whose lower part is displaced sideways by whole blocks: blocks lost or gained.

Why this exists: when a few changed bits make JPEG's Huffman decoder read one block too many or
too few and then fall back into step, every decoder accepts the stream, but every later block is
drawn one (or more) places off: from that block on, the picture continues 8, 16, ... pixels to the
side of where it belongs (measured on damaged copies of the shared chest JPEGs: the lower third to
the lower 88 % of the picture displaced by 8 or 16 pixels, often also brighter or darker). The
brightness check (jpeg_dc_shift.py) sees this only when the brightness also jumps; the geometry is
there either way: across the one block boundary where it starts, the rows on either side match
best when one of them is slid sideways by a multiple of 8, where in every intact picture they match
best as they are.

The search: along each block boundary, 64-pixel windows with texture compare the row pair across
the boundary at no shift and at +-8 .. +-32 pixels (offsets removed, so a brightness jump does not
count); a window votes for a shift that matches clearly better than none. Five or more windows of
one boundary voting for the same shift is a displacement. Windows without texture (flat background,
saturated areas) do not vote, so pictures narrower than about 450 pixels are never judged, nor are
displacements that cross only flat areas. Measured on 1,956 real chest X-rays as they are and at JPEG
quality 50-95: no alarm (benchmarks/bench_reliability.py, family codec_false_alarms).
"""

from __future__ import annotations

import numpy as np

_BLOCK = 8
_WINDOW = 64  # pixels per vote: 8 blocks
_MARGIN = 32  # columns kept clear at both ends so every shift stays inside the picture
_SHIFTS = np.array([-32, -24, -16, -8, 8, 16, 24, 32])
_MIN_TEXTURE = 1.5  # a window votes only if its rows differ by at least this much (mean absolute spread, grey levels)
_MAX_RATIO = 0.6  # ... and the best shift's mismatch is below this share of the unshifted one
_MIN_VOTES = 5  # windows of one boundary agreeing on one shift
_ROW_PAIRS = ((1, 0), (2, 1))  # (rows above, rows below) the boundary compared: adjacent, and one further out


def check_jpeg_block_shift(pixels: np.ndarray) -> str | None:
    """None for a picture without a sideways displacement on the block grid, else one clause saying where."""
    if pixels.ndim != 2:
        return None
    height, width = pixels.shape
    columns = np.arange(_MARGIN, width - _MARGIN)
    columns = columns[: (len(columns) // _WINDOW) * _WINDOW]
    if len(columns) < _MIN_VOTES * _WINDOW:
        return None
    picture = pixels.astype(np.float32)
    boundaries = np.arange(2 * _BLOCK, height - 2 * _BLOCK, _BLOCK)  # not next to the top or bottom edge
    if len(boundaries) == 0:
        return None
    unshifted = _mismatch(picture, boundaries, columns, 0)  # (boundaries, windows)
    shifted = np.stack([_mismatch(picture, boundaries, columns, int(s)) for s in _SHIFTS])
    votes = (unshifted >= _MIN_TEXTURE) & ((shifted.min(axis=0) + 0.5) < _MAX_RATIO * (unshifted + 0.5))
    choice = shifted.argmin(axis=0)
    best_votes, best_row, best_shift = 0, 0, 0
    for index in np.flatnonzero(votes.sum(axis=1) >= _MIN_VOTES):
        counts = np.bincount(choice[index][votes[index]], minlength=len(_SHIFTS))
        if counts.max() > best_votes:
            best_votes, best_row, best_shift = int(counts.max()), int(boundaries[index]), int(_SHIFTS[counts.argmax()])
    if best_votes < _MIN_VOTES:
        return None
    return (f"the picture below row {best_row} continues {abs(best_shift)} pixels to the side of the picture "
            f"above it, along {best_votes} stretches of {_WINDOW} pixels, on the 8x8 block grid (damaged JPEG data: "
            f"blocks lost or gained, so everything after them is drawn out of place)")


def _mismatch(picture: np.ndarray, boundaries: np.ndarray, columns: np.ndarray, shift: int) -> np.ndarray:
    """Per boundary and window, the mean absolute spread of (row below, slid by ``shift``) minus (row above),
    offset removed."""
    differences = np.concatenate([
        (picture[boundaries + below][:, columns + shift] - picture[boundaries - above][:, columns])
        .reshape(len(boundaries), -1, _WINDOW) for above, below in _ROW_PAIRS], axis=2)
    centred = differences - np.median(differences, axis=2, keepdims=True)
    return np.mean(np.abs(centred), axis=2)  # a median of integer differences is too coarse to vote with
