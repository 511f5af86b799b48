"""Agreement with MONAI's reference implementations (test-only dependency ``monai``).

Our Dice, HD95 (``compute_hausdorff_distance(percentile=95)``) and NSD (``compute_surface_dice``,
``use_subvoxels=False``) follow MONAI's boundary convention exactly; the only difference is that
MONAI rounds distances (and Dice) to float32, so HD95 is compared with a relative tolerance of 1e-5
and Dice / NSD with an absolute tolerance of 1e-6. Empty-mask cases differ by design (documented in
``core/evaluation/metrics.py``) and are checked separately.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

torch = pytest.importorskip("torch", reason="torch is needed to run MONAI")
monai_metrics = pytest.importorskip(
    "monai.metrics", reason="monai is not installed (it is a test-only dependency: pip install monai)"
)

from core.evaluation.metrics import image_metrics, prepare_masks  # noqa: E402

HD_RTOL = 1e-5
ABS_TOL = 1e-6


def one_hot(mask: np.ndarray) -> torch.Tensor:
    """HxW bool -> (1, 2, H, W) float one-hot (background, lung), as MONAI expects."""
    fg = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    return torch.stack([1.0 - fg, fg])[None]


def monai_reference(pred: np.ndarray, gt: np.ndarray, tolerance: float, spacing=None) -> tuple[float, float, float]:
    p, g = one_hot(pred), one_hot(gt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = monai_metrics.compute_dice(p, g, include_background=False).item()
        h = monai_metrics.compute_hausdorff_distance(
            p, g, include_background=False, percentile=95, spacing=spacing
        ).item()
        s = monai_metrics.compute_surface_dice(
            p, g, [tolerance], include_background=False, spacing=spacing, use_subvoxels=False
        ).item()
    return d, h, s


def random_blob(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=rng.uniform(1.5, 4.0))
    return field > rng.uniform(-0.1, 0.3) * field.std()


def case(seed: int):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(24, 72)), int(rng.integers(24, 72)))
    pred, gt = random_blob(rng, shape), random_blob(rng, shape)
    while not pred.any() or not gt.any():
        pred, gt = random_blob(rng, shape), random_blob(rng, shape)
    spacing = None if seed % 3 == 0 else (float(rng.uniform(0.1, 1.5)), float(rng.uniform(0.1, 1.5)))
    tolerance = float(rng.uniform(0.3, 4.0))
    return pred, gt, spacing, tolerance


def assert_agrees(ours, reference):
    d, h, s = reference
    assert ours.dice == pytest.approx(d, abs=ABS_TOL)
    assert ours.hd95 == pytest.approx(h, rel=HD_RTOL, abs=ABS_TOL)
    assert ours.nsd == pytest.approx(s, abs=ABS_TOL)


@pytest.mark.parametrize("seed", range(30))
def test_random_blobs_agree_with_monai(seed):
    pred, gt, spacing, tolerance = case(seed)
    ours = image_metrics(pred, gt.astype(np.uint8) * 255, spacing_mm=spacing, tolerance_mm=tolerance,
                         tolerance_px=tolerance)
    assert_agrees(ours, monai_reference(pred, gt, tolerance, spacing))


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_offset_squares_agree_with_monai(k, tolerance):
    gt = np.zeros((40, 40), bool)
    gt[10:20, 10:20] = True
    pred = np.roll(gt, k, axis=1)
    ours = image_metrics(pred, gt, tolerance_px=tolerance)
    assert_agrees(ours, monai_reference(pred, gt, tolerance))
    assert ours.hd95 == pytest.approx(k)


@pytest.mark.parametrize("seed", range(8))
def test_ignore_label_matches_monai_on_cleaned_masks(seed):
    """With 127 in the GT, MONAI on (pred & ~ignore, gt == 255) gives our numbers."""
    rng = np.random.default_rng(1000 + seed)
    pred, gt, spacing, tolerance = case(1000 + seed)
    gt_u8 = gt.astype(np.uint8) * 255
    field = ndimage.gaussian_filter(rng.standard_normal(gt.shape), sigma=3.0)
    ignore = field > field.std()  # blob-shaped ignore regions, ~15% of the image
    gt_u8[ignore] = 127
    pred_clean, gt_clean = prepare_masks(pred, gt_u8)
    np.testing.assert_array_equal(gt_clean, gt & ~ignore)
    np.testing.assert_array_equal(pred_clean, pred & ~ignore)
    if not pred_clean.any() or not gt_clean.any():
        pytest.skip("ignore region emptied a mask for this seed")
    ours = image_metrics(pred, gt_u8, spacing_mm=spacing, tolerance_mm=tolerance, tolerance_px=tolerance)
    assert_agrees(ours, monai_reference(pred_clean, gt_clean, tolerance, spacing))


def test_empty_cases_documented_differences():
    z = np.zeros((20, 20), bool)
    a = z.copy()
    a[5:10, 5:10] = True
    # both empty: MONAI gives nan everywhere; we score perfect agreement
    d, h, s = monai_reference(z, z, 2.0)
    assert math.isnan(d) and math.isnan(h) and math.isnan(s)
    ours = image_metrics(z, z)
    assert (ours.dice, ours.hd95, ours.nsd) == (1.0, 0.0, 1.0)
    # one empty: HD95 nan and NSD 0 as MONAI; Dice 0 (MONAI: 0 for empty pred, nan for empty GT)
    for pred, gt in [(z, a), (a, z)]:
        d, h, s = monai_reference(pred, gt, 2.0)
        ours = image_metrics(pred, gt)
        assert math.isnan(h) and math.isnan(ours.hd95)
        assert s == 0.0 and ours.nsd == 0.0
        assert ours.dice == 0.0
