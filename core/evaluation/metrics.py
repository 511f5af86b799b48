"""Per-image segmentation metrics: Dice, IoU, HD95 and normalized surface Dice (NSD).

Inputs
------
``pred``: the predicted binary mask, HxW, any dtype; every non-zero pixel is foreground (threshold a
probability map before calling). ``gt``: the ground truth, HxW, either ``bool`` (True = lung) or
numeric with exactly the values ``0`` (background), ``255`` (lung) and ``127`` (ignore); any other
value raises ``ValueError`` so a 0/1 label map is never silently read as all background.

Ignore handling (``gt == 127``)
-------------------------------
Ignore pixels are set to background in *both* the prediction and the ground truth before any metric
is computed. For Dice and IoU this is exactly "excluded from the counts": those metrics only use true
positives, false positives and false negatives, and an ignore pixel is none of them. For the surface
metrics (HD95, NSD) it means the boundaries are those of the masks restricted to the non-ignore
region: a mask that runs into an ignore region is cut at its edge in both pred and GT, so the cut
edges coincide (distance 0) and whatever the prediction did inside the ignore region is not scored.

Boundary and distance convention (follows MONAI 1.6 ``compute_hausdorff_distance`` /
``compute_surface_dice`` with ``use_subvoxels=False``)
-----------------------------------------------------------------------------------------------
* boundary = ``mask XOR erosion(mask)`` with the 3x3 *cross* (4-connectivity, scipy's default
  structuring element) and pixels outside the image counted as background (OpenCV's erode): a foreground pixel is on the boundary when one of
  its 4 neighbours is background or lies outside the image. The boundary is an 8-connected line.
* directed distances: for every boundary pixel of A, the exact Euclidean distance to the nearest
  boundary pixel of B, in mm when a ``(row, col)`` spacing is given, else in pixels: OpenCV's exact
  Euclidean distance transform (``DIST_MASK_PRECISE``, Felzenszwalb's algorithm, float32) scaled by the
  spacing when rows and columns are equally spaced (almost every radiograph), else the nearest boundary
  pixel found among all of B's, in blocks. MONAI finds the same nearest neighbours with a KD-tree and
  rounds to float32 as well (agreement ~1e-6 relative). NumPy and OpenCV only: the reading-station
  bundle, which ships without SciPy, evaluates too.
* HD95 = ``max(P95(d(pred->gt)), P95(d(gt->pred)))`` with linear-interpolated percentiles
  (``torch.quantile`` in MONAI, ``np.percentile(method='linear')`` here): MONAI's percentile of each
  directed set, then the maximum; *not* the percentile of the pooled set.
* NSD at tolerance tau (Seidlitz et al. / DeepMind formula) =
  ``(#{d(pred->gt) <= tau} + #{d(gt->pred) <= tau}) / (#boundary(pred) + #boundary(gt))``.
  Each boundary pixel has weight 1 (MONAI's default ``use_subvoxels=False``); DeepMind's reference
  code weights boundary elements by their surfel length instead, which differs slightly at corners
  and diagonals.

Empty masks (after ignore handling)
-----------------------------------
* both empty: Dice 1, IoU 1, HD95 0, NSD 1 (a correct "no lung"). MONAI returns nan for Dice (with
  its default ``ignore_empty``), HD95 and NSD here; we score the agreement as perfect instead.
* exactly one empty: Dice 0, IoU 0, NSD 0 (as MONAI), and HD95 ``nan``, as MONAI gives (one
  directed set is empty -> nan, the other all inf, and the max of nan and inf is nan).
  ``core.evaluation.summary.summarize`` counts such values as excluded and reports how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import cv2

BACKGROUND_VALUE = 0
IGNORE_VALUE = 127
LUNG_VALUE = 255

HD_PERCENTILE = 95.0
DEFAULT_TOLERANCE_MM = 2.0
DEFAULT_TOLERANCE_PX = 2.0

# the 3x3 cross (4-connectivity): scipy's default structuring element for binary_erosion, as MONAI uses
_EROSION_STRUCTURE = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_PAIRWISE_BLOCK = 512  # boundary pixels per block when the spacing is anisotropic

Spacing = float | Sequence[float] | None


@dataclass(frozen=True)
class ImageMetrics:
    """Metrics of one image. ``hd95`` and ``tolerance`` are in ``unit`` ('mm' or 'px')."""

    dice: float
    iou: float
    hd95: float
    nsd: float
    unit: str
    tolerance: float

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# input handling


def prepare_masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(pred_bool, gt_bool)`` with ignore pixels set to background in both."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise ValueError(f"masks must be 2-D (HxW); got pred {pred.shape} and gt {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {pred.shape} vs {gt.shape}")
    pred_b = pred.astype(bool, copy=False) if pred.dtype == bool else pred != 0
    if gt.dtype == bool:
        return pred_b, gt
    lung = gt == LUNG_VALUE
    ignore = gt == IGNORE_VALUE
    if not np.all(lung | ignore | (gt == BACKGROUND_VALUE)):
        found = np.unique(gt[~(lung | ignore | (gt == BACKGROUND_VALUE))])[:5]
        raise ValueError(
            "ground truth must hold only 0 (background), 255 (lung) and 127 (ignore), "
            f"or be boolean; found other values such as {found.tolist()}"
        )
    if ignore.any():
        pred_b = pred_b & ~ignore
    return pred_b, lung


def _spacing(spacing_mm: Spacing) -> tuple[float, float] | None:
    if spacing_mm is None:
        return None
    values = np.atleast_1d(np.asarray(spacing_mm, dtype=np.float64))
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.shape != (2,):
        raise ValueError(f"spacing_mm must be a number or (row, col); got {spacing_mm!r}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing_mm must be positive and finite; got {spacing_mm!r}")
    return float(values[0]), float(values[1])


def _check_tolerance(tolerance: float) -> float:
    tolerance = float(tolerance)
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be finite and >= 0; got {tolerance}")
    return tolerance


# --------------------------------------------------------------------------------------------------
# overlap metrics


def _overlap(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    tp = int(np.count_nonzero(pred & gt))
    n_pred = int(np.count_nonzero(pred))
    n_gt = int(np.count_nonzero(gt))
    if n_pred + n_gt == 0:
        return 1.0, 1.0
    union = n_pred + n_gt - tp
    return 2.0 * tp / (n_pred + n_gt), tp / union


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice = 2|P & G| / (|P| + |G|) over non-ignore pixels; 1.0 when both are empty."""
    return _overlap(*prepare_masks(pred, gt))[0]


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU (Jaccard) = |P & G| / |P | G| over non-ignore pixels; 1.0 when both are empty."""
    return _overlap(*prepare_masks(pred, gt))[1]


# --------------------------------------------------------------------------------------------------
# surface metrics


def boundary(mask: np.ndarray) -> np.ndarray:
    """``mask XOR erosion(mask)``: 3x3-cross erosion, pixels outside the image count as background."""
    mask = np.asarray(mask, dtype=bool)
    eroded = cv2.erode(mask.astype(np.uint8), _EROSION_STRUCTURE, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask ^ eroded.astype(bool)


def _directed(edges_from: np.ndarray, edges_to: np.ndarray, sampling) -> np.ndarray:
    """Distance from each pixel of ``edges_from`` to the nearest pixel of ``edges_to``."""
    n_from = int(np.count_nonzero(edges_from))
    if n_from == 0:
        return np.empty(0, dtype=np.float64)
    if not edges_to.any():
        return np.full(n_from, np.inf)
    row_mm, col_mm = sampling if sampling is not None else (1.0, 1.0)
    if row_mm == col_mm:
        dist = cv2.distanceTransform((~edges_to).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return dist[edges_from].astype(np.float64) * row_mm
    return _nearest_by_blocks(np.argwhere(edges_from), np.argwhere(edges_to), np.array([row_mm, col_mm]))


def _nearest_by_blocks(points: np.ndarray, targets: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Exact distance from each point to its nearest target on an anisotropic grid (rare: a few ms per
    thousand boundary pixels)."""
    target_rows, target_cols = (targets * spacing).T
    nearest = np.empty(len(points), dtype=np.float64)
    for start in range(0, len(points), _PAIRWISE_BLOCK):
        block = points[start: start + _PAIRWISE_BLOCK] * spacing
        squared = (block[:, :1] - target_rows) ** 2 + (block[:, 1:] - target_cols) ** 2
        nearest[start: start + len(block)] = np.sqrt(squared.min(axis=1))
    return nearest


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing_mm: Spacing = None
) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary distances ``(pred->gt, gt->pred)`` after ignore handling.

    In mm with ``spacing_mm`` (row, col), else pixels. A side with an empty mask has no boundary and
    gives an empty array; distances towards an empty boundary are ``inf`` (as in MONAI).
    """
    pred_b, gt_b = prepare_masks(pred, gt)
    return _surface_distances(pred_b, gt_b, _spacing(spacing_mm))


def _surface_distances(pred: np.ndarray, gt: np.ndarray, sampling) -> tuple[np.ndarray, np.ndarray]:
    union = pred | gt
    if not union.any():
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    # Crop to the bounding box of the union: everything outside is background in both masks, so the
    # erosion (border_value=0) and the nearest-boundary distances are unchanged, and the EDT is cheap.
    rows = np.flatnonzero(union.any(axis=1))
    cols = np.flatnonzero(union.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    edges_pred = boundary(pred[window])
    edges_gt = boundary(gt[window])
    return _directed(edges_pred, edges_gt, sampling), _directed(edges_gt, edges_pred, sampling)


def _hd_from_distances(d_pred_gt: np.ndarray, d_gt_pred: np.ndarray, percentile: float) -> float:
    if d_pred_gt.size == 0 and d_gt_pred.size == 0:
        return 0.0  # both empty: perfect agreement (MONAI: nan)
    if d_pred_gt.size == 0 or d_gt_pred.size == 0:
        return float("nan")  # exactly one empty: as MONAI
    return float(
        max(
            np.percentile(d_pred_gt, percentile, method="linear"),
            np.percentile(d_gt_pred, percentile, method="linear"),
        )
    )


def _nsd_from_distances(d_pred_gt: np.ndarray, d_gt_pred: np.ndarray, tolerance: float) -> float:
    total = d_pred_gt.size + d_gt_pred.size
    if total == 0:
        return 1.0  # both empty: perfect agreement (MONAI: nan)
    within = np.count_nonzero(d_pred_gt <= tolerance) + np.count_nonzero(d_gt_pred <= tolerance)
    return float(within / total)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing_mm: Spacing = None) -> float:
    """95th-percentile symmetric Hausdorff distance between mask boundaries (MONAI convention).

    ``max(P95(pred->gt), P95(gt->pred))``; mm with ``spacing_mm`` (row, col), else pixels.
    Both empty -> 0.0; exactly one empty -> nan.
    """
    pred_b, gt_b = prepare_masks(pred, gt)
    return _hd_from_distances(*_surface_distances(pred_b, gt_b, _spacing(spacing_mm)), HD_PERCENTILE)


def nsd(pred: np.ndarray, gt: np.ndarray, tolerance: float, spacing_mm: Spacing = None) -> float:
    """Normalized surface Dice: fraction of both boundaries within ``tolerance`` (inclusive) of the other.

    ``tolerance`` is in mm with ``spacing_mm`` (row, col), else pixels. Both empty -> 1.0; one -> 0.0.
    """
    tolerance = _check_tolerance(tolerance)
    pred_b, gt_b = prepare_masks(pred, gt)
    return _nsd_from_distances(*_surface_distances(pred_b, gt_b, _spacing(spacing_mm)), tolerance)


def image_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_mm: Spacing = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
) -> ImageMetrics:
    """All four metrics of one image, sharing one boundary-distance computation.

    With ``spacing_mm`` (row, col) HD95 is in mm and NSD uses ``tolerance_mm``; without it (PNG/JPEG
    studies with no pixel spacing) HD95 is in pixels and NSD uses ``tolerance_px``.
    """
    sampling = _spacing(spacing_mm)
    if sampling is None:
        unit, tolerance = "px", _check_tolerance(tolerance_px)
    else:
        unit, tolerance = "mm", _check_tolerance(tolerance_mm)
    pred_b, gt_b = prepare_masks(pred, gt)
    dice_value, iou_value = _overlap(pred_b, gt_b)
    d_pred_gt, d_gt_pred = _surface_distances(pred_b, gt_b, sampling)
    return ImageMetrics(
        dice=dice_value,
        iou=iou_value,
        hd95=_hd_from_distances(d_pred_gt, d_gt_pred, HD_PERCENTILE),
        nsd=_nsd_from_distances(d_pred_gt, d_gt_pred, tolerance),
        unit=unit,
        tolerance=tolerance,
    )
