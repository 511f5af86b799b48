"""Review rules in core: status after an edit, local prompt merges, lung area per patient side."""

from __future__ import annotations

import numpy as np
import pytest

from core.review.lung_sides import pixels_per_side, side_layout
from core.review.prompt_merge import merge_box_result, merge_point_result
from core.review.status import status_after_edit


@pytest.mark.parametrize("status, after", [("accepted", "corrected"), ("rejected", "corrected"),
                                           ("corrected", None), ("unreviewed", "corrected")])
def test_an_edit_makes_the_image_corrected(status, after):
    assert status_after_edit(status) == after


def two_lungs(height=200, width=200):
    mask = np.zeros((height, width), np.uint8)
    mask[40:160, 20:80] = 255  # image-left lung
    mask[40:160, 120:180] = 255  # image-right lung
    return mask


def test_a_box_answer_replaces_the_mask_inside_the_box_only():
    before = two_lungs()
    answer = np.zeros_like(before)
    answer[50:150, 30:70] = 255  # the model's answer for a box on the left lung: the right lung is gone
    merged = merge_box_result(before, answer, (10.0, 30.0, 90.0, 170.0))
    assert np.array_equal(merged[:, 100:], before[:, 100:])  # the other lung as it was
    assert np.array_equal(merged[50:150, 30:70], answer[50:150, 30:70])
    assert merged[45, 25] == 0  # inside the box the answer wins, shrinking the lung too


def test_points_change_only_the_regions_they_touch():
    before = two_lungs()
    answer = before.copy()
    answer[90:110, 40:60] = 0  # the negative point's hole
    answer[40:160, 120:180] = 0  # and an unrelated change the point did not ask for
    merged = merge_point_result(before, answer, [(50.0, 100.0)])
    assert merged[100, 50] == 0 and np.count_nonzero(before != merged) == 20 * 20
    assert np.array_equal(merged[:, 100:], before[:, 100:])
    assert np.array_equal(merge_point_result(before, answer, [(5.0, 5.0)]), before)  # touches nothing


@pytest.mark.parametrize("orientation, image_left, from_file", [
    (("L", "F"), "R", True), (("R", "F"), "L", True), ((), "R", False), (("A", "F"), "R", False)])
def test_side_layout_follows_patient_orientation(orientation, image_left, from_file):
    layout = side_layout(orientation)
    assert (layout.image_left, layout.from_file) == (image_left, from_file)
    assert {layout.image_left, layout.image_right} == {"R", "L"}


def test_pixels_per_side_and_a_mirrored_file_agree():
    mask = two_lungs()
    mask[40:160, 20:40] = 0  # the image-left lung is smaller
    usual = pixels_per_side(mask, side_layout(("L", "F")))
    assert usual.right == 120 * 40 and usual.left == 120 * 60
    mirrored = pixels_per_side(mask[:, ::-1], side_layout(("R", "F")))
    assert mirrored == usual  # the same patient, stored mirrored with its orientation saying so
