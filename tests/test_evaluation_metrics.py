"""Per-image metrics: hand-computed cases, spacing, ignore label, empty masks, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.evaluation.metrics import (
    ImageMetrics,
    boundary,
    dice,
    hd95,
    image_metrics,
    iou,
    nsd,
    surface_distances,
)

SIDE = 10
TOP = LEFT = 10


def square(shape=(40, 40), top=TOP, left=LEFT, side=SIDE, value=255) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[top : top + side, left : left + side] = value
    return mask


# --------------------------------------------------------------------------------------------------
# two SIDE x SIDE squares, the prediction shifted by k pixels along the columns
#
# Overlap: |P & G| = SIDE * (SIDE - k)  ->  Dice = (SIDE - k) / SIDE,  IoU = (SIDE - k) / (SIDE + k).
# Boundaries are the 36-pixel rings. Every directed distance is <= k and the whole far column (10
# pixels, 28% of the ring) is at exactly k, so P95 of each direction, hence HD95, is k.
# The distance is 0 only on the 2 * (SIDE - k) ring pixels of the shared top and bottom rows, so for
# a tolerance in [0, 1): NSD = 2 * 2 * (SIDE - k) / (2 * 36) = (SIDE - k) / (2 * (SIDE - 1)).


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_offset_squares_overlap(k):
    gt, pred = square(), square(left=LEFT + k)
    assert dice(pred, gt) == pytest.approx((SIDE - k) / SIDE, abs=1e-12)
    assert iou(pred, gt) == pytest.approx((SIDE - k) / (SIDE + k), abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_offset_squares_hd95_is_k(k):
    gt, pred = square(), square(left=LEFT + k)
    assert hd95(pred, gt) == pytest.approx(k, abs=1e-12)
    # along the rows as well
    assert hd95(square(top=TOP + k), gt) == pytest.approx(k, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_offset_squares_nsd(k):
    gt, pred = square(), square(left=LEFT + k)
    assert nsd(pred, gt, tolerance=k) == 1.0  # inclusive: d <= tolerance
    assert nsd(pred, gt, tolerance=k + 0.5) == 1.0
    assert nsd(pred, gt, tolerance=k - 0.01) < 1.0
    expected = (SIDE - k) / (2 * (SIDE - 1))
    assert nsd(pred, gt, tolerance=0.0) == pytest.approx(expected, abs=1e-12)
    assert nsd(pred, gt, tolerance=0.5) == pytest.approx(expected, abs=1e-12)


def test_offset_by_one_nsd_is_half():
    assert nsd(square(left=LEFT + 1), square(), tolerance=0.5) == pytest.approx(0.5, abs=1e-12)


def test_boundary_is_xor_with_cross_erosion_and_image_edge_is_boundary():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    ring = mask.copy()
    ring[2, 2] = False
    np.testing.assert_array_equal(boundary(mask), ring)
    # a mask filling the image: pixels on the image edge are boundary, the inside is not
    full = np.ones((4, 4), bool)
    expected = full.copy()
    expected[1:3, 1:3] = False
    np.testing.assert_array_equal(boundary(full), expected)


def test_square_touching_the_image_corner():
    # 6x6 vs 4x4 squares in the corner: the image edge is boundary (border_value=0), so the far
    # corner of the 6x6 ring is sqrt(8) from the 4x4 ring's corner.
    big, small = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    big[:6, :6] = True
    small[:4, :4] = True
    d_big_small, d_small_big = surface_distances(big, small)
    assert d_big_small.max() == pytest.approx(math.sqrt(8))
    assert d_small_big.max() == pytest.approx(2.0)


# --------------------------------------------------------------------------------------------------
# spacing


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("spacing", [0.5, 0.143, 2.0])
def test_isotropic_spacing_scales_hd95(k, spacing):
    gt, pred = square(), square(left=LEFT + k)
    px = hd95(pred, gt)
    assert hd95(pred, gt, spacing_mm=(spacing, spacing)) == pytest.approx(px * spacing, rel=1e-12)
    assert hd95(pred, gt, spacing_mm=spacing) == pytest.approx(px * spacing, rel=1e-12)


def test_anisotropic_spacing_is_row_col():
    gt = square()
    k = 3
    spacing = (0.7, 0.3)  # (row, col)
    # shift along columns: distances scale with the column spacing, along rows with the row spacing
    assert hd95(square(left=LEFT + k), gt, spacing_mm=spacing) == pytest.approx(k * 0.3, rel=1e-12)
    assert hd95(square(top=TOP + k), gt, spacing_mm=spacing) == pytest.approx(k * 0.7, rel=1e-12)


def test_nsd_tolerance_in_mm():
    gt, pred = square(), square(left=LEFT + 2)  # HD = 2 px = 1.0 mm at 0.5 mm/px
    assert nsd(pred, gt, tolerance=1.0, spacing_mm=(0.5, 0.5)) == 1.0
    assert nsd(pred, gt, tolerance=0.9, spacing_mm=(0.5, 0.5)) < 1.0
    assert nsd(pred, gt, tolerance=0.9, spacing_mm=(0.5, 0.5)) == nsd(pred, gt, tolerance=1.8)


def test_image_metrics_units_and_tolerances():
    gt, pred = square(), square(left=LEFT + 2)
    px = image_metrics(pred, gt, tolerance_px=2.0)
    assert isinstance(px, ImageMetrics)
    assert (px.unit, px.tolerance) == ("px", 2.0)
    assert px.hd95 == pytest.approx(2.0) and px.nsd == 1.0
    assert px.dice == pytest.approx(dice(pred, gt)) and px.iou == pytest.approx(iou(pred, gt))
    mm = image_metrics(pred, gt, spacing_mm=(0.5, 0.5), tolerance_mm=0.6)
    assert (mm.unit, mm.tolerance) == ("mm", 0.6)
    assert mm.hd95 == pytest.approx(1.0)
    assert mm.nsd == pytest.approx(nsd(pred, gt, 0.6, spacing_mm=0.5))
    assert set(mm.as_dict()) == {"dice", "iou", "hd95", "nsd", "unit", "tolerance"}


@pytest.mark.parametrize("bad", [(0.5, 0.0), (-1.0, 1.0), (1.0, 2.0, 3.0), (float("nan"), 1.0)])
def test_bad_spacing_rejected(bad):
    with pytest.raises(ValueError):
        hd95(square(), square(), spacing_mm=bad)


def test_bad_tolerance_rejected():
    with pytest.raises(ValueError):
        nsd(square(), square(), tolerance=-1.0)


# --------------------------------------------------------------------------------------------------
# ignore label 127


def test_ignore_region_excluded_from_everything():
    gt = square()
    pred = square()
    # the prediction spills into a region the annotator marked "ignore"
    pred[22:30, 22:30] = 255
    gt[22:30, 22:30] = 127
    m = image_metrics(pred, gt)
    assert (m.dice, m.iou, m.hd95, m.nsd) == (1.0, 1.0, 0.0, 1.0)
    # without the ignore label the same spill is an error
    gt_plain = square()
    assert dice(pred, gt_plain) < 1.0 and hd95(pred, gt_plain) > 0


def test_ignore_band_cutting_the_lung_is_not_scored():
    gt = square()
    gt[14:16, :] = np.where(gt[14:16, :] > 0, 127, 0)  # an ignore band across the lung
    pred = square()  # the prediction covers the band
    assert image_metrics(pred, gt).as_dict() == {
        "dice": 1.0, "iou": 1.0, "hd95": 0.0, "nsd": 1.0, "unit": "px", "tolerance": 2.0,
    }
    missing = square()
    missing[14:16, :] = 0  # a prediction that leaves the band out is equally perfect
    assert dice(missing, gt) == 1.0 and hd95(missing, gt) == 0.0


def test_ignore_counts_are_excluded_from_overlap():
    gt = np.zeros((10, 10), np.uint8)
    gt[:, :5] = 255
    gt[:, 5:7] = 127
    pred = np.zeros((10, 10), np.uint8)
    pred[:, :7] = 255  # all 20 ignore pixels predicted: not false positives
    pred[:, 9] = 255  # 10 real false positives
    assert dice(pred, gt) == pytest.approx(2 * 50 / (60 + 50))
    assert iou(pred, gt) == pytest.approx(50 / 60)


def test_only_ignore_is_both_empty():
    gt = np.full((8, 8), 127, np.uint8)
    pred = np.full((8, 8), 255, np.uint8)
    m = image_metrics(pred, gt)
    assert (m.dice, m.iou, m.hd95, m.nsd) == (1.0, 1.0, 0.0, 1.0)


def test_gt_with_unknown_labels_rejected():
    gt = square(value=1)  # a 0/1 label map would otherwise read as all background
    with pytest.raises(ValueError, match="127"):
        dice(square(), gt)


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError):
        dice(np.zeros((4, 4)), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError):
        dice(np.zeros((2, 4, 4)), np.zeros((2, 4, 4), np.uint8))


def test_bool_and_uint8_inputs_agree():
    gt, pred = square(), square(left=LEFT + 2)
    assert image_metrics(pred > 0, gt > 0) == image_metrics(pred, gt)
    assert image_metrics((pred > 0).astype(np.float32), gt) == image_metrics(pred, gt)


# --------------------------------------------------------------------------------------------------
# empty masks


def test_both_empty():
    z = np.zeros((16, 16), np.uint8)
    assert dice(z, z) == 1.0 and iou(z, z) == 1.0
    assert hd95(z, z) == 0.0
    assert nsd(z, z, tolerance=2.0) == 1.0


@pytest.mark.parametrize("which", ["pred", "gt"])
def test_one_empty(which):
    z = np.zeros((40, 40), np.uint8)
    pred, gt = (z, square()) if which == "pred" else (square(), z)
    assert dice(pred, gt) == 0.0 and iou(pred, gt) == 0.0
    assert math.isnan(hd95(pred, gt))  # as MONAI: nan, not inf
    assert nsd(pred, gt, tolerance=100.0) == 0.0
    m = image_metrics(pred, gt, spacing_mm=0.5)
    assert m.dice == 0.0 and math.isnan(m.hd95) and m.nsd == 0.0


def test_identical_masks_are_perfect():
    m = image_metrics(square(), square(), spacing_mm=(0.3, 0.4))
    assert (m.dice, m.iou, m.hd95, m.nsd) == (1.0, 1.0, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# properties on random small masks

small_masks = st.integers(2, 12).flatmap(
    lambda h: st.integers(2, 12).flatmap(
        lambda w: st.tuples(arrays(np.bool_, (h, w)), arrays(np.bool_, (h, w)))
    )
)


@settings(max_examples=50, deadline=None)
@given(small_masks, st.floats(0.0, 5.0))
def test_metrics_symmetric_and_bounded(masks, tolerance):
    a, b = masks
    ab = image_metrics(a, b, tolerance_px=tolerance)
    ba = image_metrics(b, a, tolerance_px=tolerance)
    assert 0.0 <= ab.dice <= 1.0 and 0.0 <= ab.iou <= 1.0 and 0.0 <= ab.nsd <= 1.0
    assert ab.dice == pytest.approx(ba.dice) and ab.iou == pytest.approx(ba.iou)
    assert ab.nsd == pytest.approx(ba.nsd)
    if math.isnan(ab.hd95):
        assert math.isnan(ba.hd95) and (a.any() != b.any())
    else:
        assert ab.hd95 == pytest.approx(ba.hd95) and ab.hd95 >= 0.0
    # Dice and IoU are the same ordering: IoU = Dice / (2 - Dice)
    assert ab.iou == pytest.approx(ab.dice / (2.0 - ab.dice))
    # gt given as uint8 0/255 is the same as bool
    as_u8 = image_metrics(a, b.astype(np.uint8) * 255, tolerance_px=tolerance)
    np.testing.assert_equal(as_u8.as_dict(), ab.as_dict())  # nan == nan here


@settings(max_examples=50, deadline=None)
@given(small_masks)
def test_identity_is_perfect(masks):
    a, _ = masks
    m = image_metrics(a, a)
    assert (m.dice, m.iou, m.hd95, m.nsd) == (1.0, 1.0, 0.0, 1.0)


# NumPy/OpenCV implementations (the reading-station bundle has no SciPy) checked against SciPy's
def _random_lungs(rng, shape=(160, 140)):
    import cv2

    mask = np.zeros(shape, np.uint8)
    for _ in range(2):
        centre = (int(rng.integers(30, shape[1] - 30)), int(rng.integers(30, shape[0] - 30)))
        axes = (int(rng.integers(8, 30)), int(rng.integers(15, 50)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return mask


@pytest.mark.parametrize("spacing", [None, 0.143, (0.1, 0.1), (0.2, 0.1), (0.139, 0.171)])
def test_surface_distances_equal_scipys_exact_distance_transform(spacing):
    from scipy import ndimage

    from core.evaluation.metrics import _spacing, boundary, surface_distances

    rng = np.random.default_rng(7)
    cross = ndimage.generate_binary_structure(2, 1)
    for _ in range(6):
        pred, gt = _random_lungs(rng) > 0, _random_lungs(rng) > 0
        for mask in (pred, gt):
            assert np.array_equal(boundary(mask), mask ^ ndimage.binary_erosion(mask, structure=cross, border_value=0))
        ours = surface_distances(pred, gt, spacing)
        edges_pred, edges_gt = boundary(pred), boundary(gt)
        sampling = _spacing(spacing)
        reference = (ndimage.distance_transform_edt(~edges_gt, sampling=sampling)[edges_pred],
                     ndimage.distance_transform_edt(~edges_pred, sampling=sampling)[edges_gt])
        for mine, theirs in zip(ours, reference):
            np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-6)


def test_paired_wilcoxon_gives_scipys_p_values_with_and_without_ties_and_zeros():
    from scipy import stats

    from core.evaluation.stats import paired_wilcoxon

    rng = np.random.default_rng(3)
    checked = 0
    for trial in range(400):
        n = int(rng.integers(2, 90))
        a = rng.normal(size=n)
        b = a + rng.normal(0.1, 1.0, size=n)
        if trial % 3 == 1:  # ties and zeros, as Dice rounded to a few digits gives
            a, b = np.round(a, 1), np.round(b, 1)
        if not np.any(a != b):
            continue
        ours = paired_wilcoxon(a, b)
        theirs = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-12), (n, trial)
        assert ours.statistic == pytest.approx(theirs.statistic)
        checked += 1
    assert checked > 350
