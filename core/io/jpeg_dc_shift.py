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
boundary noise). A staircase whose corner lies within 8 blocks of the left or right edge has one
half too short to vote on: there the long half must step by one amount (within 20 %) along at
least 90 % of its blocks, the short half must step the same way by half to twice as much, and the
two complements (the rest of each boundary) must not, which tells it from a straight edge across
the picture (padding, collimation). A shift that starts in the first block of a row is such a
straight edge and is not judged, nor is a staircase next to the top or bottom edge.

Measured on 1,956 real chest X-rays as they are and re-encoded at quality 50-95: no alarm (the
one-sided search first alarmed on one collimated picture whose bottom edge steps by 1-60 grey
levels; hence the 20 % and the twice-as-much limits). On damaged copies of the shared chest JPEG:
26 of 35 two-sided shifts caught (the rest shift by 1-9 grey levels), and every one-sided shift
seen (6). benchmarks/bench_reliability.py (codec family) counts what remains.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 8
_MIN_RUN_BLOCKS = 8  # each half of the staircase; shorter runs look like ordinary edges
_MIN_VOTE = 0.6  # share of boundaries on each half stepping the same way (net of the other way)
_MAX_HALF_RATIO = 1.5  # the two halves' median steps agree within this factor
_MIN_STEP_NOISE = 1.5  # and exceed the picture's boundary noise (robust sigma) by this factor
_CANDIDATES = 20
_MIN_UNIFORM = 0.9  # one-sided staircase: share of the long half's blocks within the tolerance of its median
_STEP_TOLERANCE = 0.2  # ... the tolerance: this share of the step (or 2 noise sigmas)
_MIN_WIDE_STEP_NOISE = 4.0  # and its median beyond this many boundary-noise sigmas (and 3 grey levels)


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
            return _clause(upper, small, block_row, block_column)
    found = _one_sided_staircase(horizontal, noise)
    return _clause(*found) if found else None


def _clause(sign: float, step: float, block_row: int, block_column: int) -> str:
    direction = "brighter" if sign > 0 else "darker"
    return (f"the picture turns {direction} by about {step:.0f} grey levels along the 8x8 block grid "
            f"from block row {block_row + 1}, column {block_column + 1} onwards (a damaged JPEG DC "
            f"coefficient: every later block is off by the same amount)")


def _one_sided_staircase(horizontal: np.ndarray, noise: float) -> tuple[float, float, int, int] | None:
    """(sign, step, block row, block column) of a staircase whose corner is within 8 blocks of a side edge.

    Why separate: with one half of 1-7 blocks the sign vote above means nothing, so the long half
    must carry the evidence (one step, nearly everywhere), and a straight edge is told apart by the
    complements: the rest of the boundary above the corner, and of the one below, stay flat.
    """
    columns = horizontal.shape[1]
    floor = max(_MIN_WIDE_STEP_NOISE * noise, 3.0)
    corners = [*range(1, _MIN_RUN_BLOCKS), *range(columns - _MIN_RUN_BLOCKS + 1, columns)]
    above, below = horizontal[1:-2], horizontal[2:-1]  # boundary pairs (i, i + 1) for i = 1 .. rows - 3
    fits = np.zeros((len(above), len(corners)))
    steps = np.zeros_like(fits)
    shorts = np.zeros_like(fits)
    for k, column in enumerate(corners):  # every row at once for each corner column
        upper, lower = above[:, column:], below[:, :column]
        long_half, short_half = (upper, lower) if upper.shape[1] >= lower.shape[1] else (lower, upper)
        step = np.median(long_half, axis=1)
        tolerance = np.maximum(2.0 * noise, _STEP_TOLERANCE * np.abs(step))[:, None]
        short_step = np.median(short_half, axis=1)
        rest_above, rest_below = above[:, :column], below[:, column:]
        rest = np.maximum(np.abs(np.median(rest_above, axis=1)), np.abs(np.median(rest_below, axis=1)))
        valid = ((np.abs(step) >= floor)
                 & (np.mean(np.abs(long_half - step[:, None]) <= tolerance, axis=1) >= _MIN_UNIFORM)
                 & (np.sign(short_step) == np.sign(step))
                 & (np.abs(short_step) >= 0.5 * np.abs(step)) & (np.abs(short_step) <= 2 * np.abs(step))
                 & (rest < 0.5 * np.abs(step)))
        # the corner that fits best: both boundaries step where the staircase says, and only there
        fit = (np.sum(np.abs(upper - step[:, None]) <= tolerance, axis=1)
               + np.sum(np.abs(lower - step[:, None]) <= tolerance, axis=1)
               + np.sum(np.abs(rest_above) <= tolerance, axis=1) + np.sum(np.abs(rest_below) <= tolerance, axis=1))
        fits[:, k] = np.where(valid, fit, 0)
        steps[:, k], shorts[:, k] = step, short_step
    if fits.size == 0 or fits.max() <= 0:
        return None
    i, k = np.unravel_index(np.argmax(fits), fits.shape)  # the first best, in row order
    return float(steps[i, k]), float(min(abs(steps[i, k]), abs(shorts[i, k]))), int(i) + 2, corners[k]


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
