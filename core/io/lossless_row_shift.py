"""Find a lossless-JPEG picture with one row offset from some column to its end: a damaged difference.

Why this exists: lossless JPEG with the first-order predictor (selection value 1, DICOM's usual
lossless syntax) codes each sample as a difference from its left neighbour. When changed bits make
the Huffman decoder misread a few samples and then fall back in step, the stream still ends on its
last byte (core/io/codestream.py's walk passes it), but every later sample of that row carries the
error: one row steps by d from some column to the right edge. In the picture this is a one-row
streak with a sharp start: against the mean of the rows above and below, that row's stretch sits d
away, and each neighbour sits d/2 the other way, over the same columns, while the row's beginning
is untouched. Natural pictures have no such streak ending exactly at the edge; a detector's bad
line spans the whole row (not judged: stretches starting in the first 8 columns are left alone), and
short one-row edges next to the right border occur (stretches under 64 samples or an eighth of the
row are left alone, and so are the 16 rows next to the top and bottom edges; the offset must exceed 5x
the picture's row-to-row noise and 1.5 % of its grey range).
"""

from __future__ import annotations

import numpy as np

_MIN_RUN = 64  # samples in the offset stretch, and at least an eighth of the row: real pictures have short
_MIN_RUN_SHARE = 1 / 8  # one-row edges next to their right border (seen on 7 of 1,956 chest X-rays)
_SKIP_START = 8  # stretches starting this close to the left edge look like a whole bad line
_MIN_VOTE = 0.8  # share of the stretch's samples offset the same way (net)
_NEIGHBOUR_RATIO = (0.35, 0.65)  # each neighbour row's offset, as a share of the row's, the other way
_QUIET_START = 0.25  # the row's beginning moves at most this share of the offset
_MIN_STEP_NOISE = 5.0  # the offset exceeds the picture's own row-to-row noise (robust sigma) this much
_MIN_STEP_RANGE = 0.015  # and this share of the picture's 1-99 % grey range (smooth films have tiny noise)
_EDGE_ROWS = 16  # rows this close to the top or bottom edge are not judged (borders, processing seams)


def check_lossless_row_shift(pixels: np.ndarray) -> str | None:
    """None for a picture without such a streak, else one clause saying where it starts."""
    if pixels.ndim != 2 or pixels.shape[0] < 5 or pixels.shape[1] < _SKIP_START + _MIN_RUN + 16:
        return None
    shortest = max(_MIN_RUN, int(round(_MIN_RUN_SHARE * pixels.shape[1])))
    picture = pixels.astype(np.float64)
    off = picture[1:-1] - 0.5 * (picture[:-2] + picture[2:])  # each row against its two neighbours
    noise = max(1.4826 * float(np.median(np.abs(off))), 0.5)
    low, high = np.percentile(picture, [1, 99])
    level = max(_MIN_STEP_NOISE * noise, _MIN_STEP_RANGE * float(high - low), 1.0)
    votes = np.sign(off) * (np.abs(off) >= level / 2)
    width = off.shape[1]
    suffix = np.cumsum(votes[:, ::-1], axis=1)[:, ::-1]  # suffix[y, x] = sum of votes[y, x:]
    starts = np.arange(_SKIP_START, width - shortest + 1)
    share = suffix[:, starts] / (width - starts)
    best = np.abs(share).max(axis=1)
    for row in np.flatnonzero(best >= _MIN_VOTE):
        if row < _EDGE_ROWS or row >= off.shape[0] - _EDGE_ROWS:
            continue
        direction = np.sign(share[row, np.argmax(np.abs(share[row]))])
        gain = np.cumsum((direction * votes[row] - 0.5)[::-1])[::-1]  # change point: offset samples +, others -
        start = int(starts[np.argmax(gain[starts])])
        step = float(np.median(off[row, start:]))
        if abs(step) < level:
            continue
        above, below = float(np.median(off[row - 1, start:])), float(np.median(off[row + 1, start:]))
        low, high = _NEIGHBOUR_RATIO
        if not all(low <= -neighbour / step <= high for neighbour in (above, below)):
            continue
        if abs(float(np.median(off[row, :max(1, start - 16)]))) > _QUIET_START * abs(step):
            continue
        return (f"row {row + 2} of the picture is offset by about {abs(step):.0f} grey levels from column "
                f"{start + 1} to its end (a damaged lossless-JPEG difference: every later sample of the row "
                f"is off by the same amount)")
    return None
