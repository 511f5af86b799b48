"""Find a JPEG picture whose brightness jumps along the 8x8 block grid: a damaged DC coefficient.

Why this exists: JPEG codes each block's mean (DC) as a difference from the previous block's. When
a few changed bits make the Huffman decoder misread a stretch and then fall back into step, every
decoder accepts the stream, but every later block carries the wrong mean: from one block onwards,
the rest of the picture is brighter or darker by the same amount (measured: 2 to 30 grey levels
over 10-95 % of the shared chest JPEG's pixels). In the picture this is a staircase on the block
grid: the boundary above the damaged block row steps by d from that block's column to the right
edge, the boundary below it steps by d from the left edge to that column. Natural edges (lungs,
collimation, padding, labels) do not follow two consecutive block boundaries with one contrast.

The search: each block boundary's step beyond the local gradient (mean over its 8 pixels); a
sign vote along every possible staircase (cumulative sums); the best candidates confirmed by the
medians of both halves (same sign, within a factor of 1.5 of each other, above the picture's own
boundary noise). Staircases shorter than 8 blocks on either side, or next to the top or bottom
edge, are not judged. Measured on 1,956 real chest X-rays re-encoded at quality 50-95: no alarm;
on damaged copies of the shared chest JPEG: 26 of 35 shifted pictures caught (the rest shift by
1-9 grey levels). benchmarks/bench_reliability.py (codec family) counts what remains.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 8
_MIN_RUN_BLOCKS = 8  # each half of the staircase; shorter runs look like ordinary edges
_MIN_VOTE = 0.6  # share of boundaries on each half stepping the same way (net of the other way)
_MAX_HALF_RATIO = 1.5  # the two halves' median steps agree within this factor
_MIN_STEP_NOISE = 1.5  # and exceed the picture's boundary noise (robust sigma) by this factor
_CANDIDATES = 20


def check_jpeg_dc_shift(pixels: np.ndarray) -> str | None:
    """None for a picture without a block-grid staircase, else one clause saying where it starts."""
    if pixels.ndim != 2:
        return None
    rows, columns = pixels.shape[0] // _BLOCK, pixels.shape[1] // _BLOCK
    if rows < 6 or columns < 2 * _MIN_RUN_BLOCKS + 1:
        return None
    horizontal, vertical = _boundary_steps(pixels[:rows * _BLOCK, :columns * _BLOCK].astype(np.float64))
    noise = 1.4826 * float(np.median(np.abs(np.concatenate([horizontal.ravel(), vertical.ravel()])))) + 1e-6
    votes = np.sign(horizontal) * (np.abs(horizontal) >= noise)
    running = np.concatenate([np.zeros((rows - 1, 1)), np.cumsum(votes, axis=1)], axis=1)
    starts = np.arange(_MIN_RUN_BLOCKS, columns - _MIN_RUN_BLOCKS + 1)
    # row r0 (1 .. rows-2) starts the shift at column c0: boundary r0-1 from c0 on, boundary r0 up to c0
    above = (running[:-1, columns][:, None] - running[:-1][:, starts]) / (columns - starts)
    below = running[1:][:, starts] / starts
    score = np.where(np.sign(above) == np.sign(below), np.minimum(np.abs(above), np.abs(below)), 0.0)
    score[:1] = 0.0
    score[-2:] = 0.0  # next to the top or bottom edge: borders and labels
    for index in np.argsort(score, axis=None)[::-1][:_CANDIDATES]:
        i, j = np.unravel_index(index, score.shape)
        if score[i, j] < _MIN_VOTE:
            break
        block_row, block_column = int(i) + 1, int(starts[j])
        upper = float(np.median(horizontal[block_row - 1, block_column:]))
        lower = float(np.median(horizontal[block_row, :block_column]))
        small, large = sorted((abs(upper), abs(lower)))
        if np.sign(upper) == np.sign(lower) and small >= _MIN_STEP_NOISE * noise and large <= _MAX_HALF_RATIO * small:
            direction = "brighter" if upper > 0 else "darker"
            return (f"the picture turns {direction} by about {small:.0f} grey levels along the 8x8 block grid "
                    f"from block row {block_row + 1}, column {block_column + 1} onwards (a damaged JPEG DC "
                    f"coefficient: every later block is off by the same amount)")
    return None


def _boundary_steps(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step across each block boundary beyond the gradient on either side, averaged over the block's 8 pixels.

    horizontal[r, c]: below block row r, in block column c; vertical[r, c]: right of block column c in block row r.
    """
    def across(p: np.ndarray) -> np.ndarray:
        before2, before, after, after2 = p[6:-9:_BLOCK], p[7:-8:_BLOCK], p[8::_BLOCK], p[9::_BLOCK]
        count = min(len(before2), len(before), len(after), len(after2))
        before2, before, after, after2 = before2[:count], before[:count], after[:count], after2[:count]
        step = (after - before) - 0.5 * ((before - before2) + (after2 - after))
        return step.reshape(count, -1, _BLOCK).mean(axis=2)

    return across(picture), across(picture.T).T
