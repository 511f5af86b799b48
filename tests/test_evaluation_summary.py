"""Summaries (bootstrap CI), paired Wilcoxon test and report formatting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from core.evaluation.metrics import image_metrics
from core.evaluation.report import SUMMARY_COLUMNS, format_table, summaries_to_json, summary_rows
from core.evaluation.stats import WilcoxonResult, paired_wilcoxon
from core.evaluation.summary import Summary, bootstrap_mean_ci, summarize

# --------------------------------------------------------------------------------------------------
# summarize


def test_summary_basic_statistics():
    values = np.random.default_rng(3).normal(0.9, 0.05, size=40)
    s = summarize(values)
    assert s.n == 40 and s.n_excluded == 0
    assert s.mean == pytest.approx(values.mean())
    assert s.std == pytest.approx(values.std(ddof=1))
    assert s.median == pytest.approx(np.median(values))


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_ci_contains_mean_and_is_deterministic(seed):
    values = np.random.default_rng(seed).beta(8, 2, size=25)
    first, second = summarize(values), summarize(list(values))
    assert first == second  # fixed seed: identical, list or array
    assert first.ci95_low <= first.mean <= first.ci95_high
    assert first.ci95_low < first.ci95_high
    # roughly the normal-theory interval width for a mean
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert (first.ci95_high - first.ci95_low) == pytest.approx(2 * half, rel=0.25)


def test_bootstrap_seed_and_resample_count_matter():
    values = np.random.default_rng(0).random(30)
    assert bootstrap_mean_ci(values, seed=0) == bootstrap_mean_ci(values, seed=0)
    assert bootstrap_mean_ci(values, seed=0) != bootstrap_mean_ci(values, seed=1)
    assert bootstrap_mean_ci(values, n_boot=2000) != bootstrap_mean_ci(values, n_boot=500)


def test_bootstrap_chunking_does_not_change_large_samples(monkeypatch):
    import core.evaluation.summary as summary_module

    values = np.random.default_rng(5).random(300)
    whole = bootstrap_mean_ci(values)
    monkeypatch.setattr(summary_module, "_CHUNK_ELEMENTS", 7 * values.size)  # 7 resamples a chunk
    assert bootstrap_mean_ci(values) == whole
    assert whole[0] <= values.mean() <= whole[1]


def test_non_finite_values_excluded_and_counted():
    s = summarize([0.8, float("nan"), 0.9, float("inf"), 1.0, -float("inf")])
    assert s.n == 3 and s.n_excluded == 3
    assert s.mean == pytest.approx(0.9)
    assert s.median == pytest.approx(0.9)
    assert summarize([0.8, 0.9, 1.0]) == Summary(**{**s.as_dict(), "n_excluded": 0})


def test_degenerate_summaries():
    one = summarize([0.7])
    assert (one.n, one.mean, one.median, one.ci95_low, one.ci95_high) == (1, 0.7, 0.7, 0.7, 0.7)
    assert math.isnan(one.std)
    none = summarize([float("nan")])
    assert none.n == 0 and none.n_excluded == 1
    assert all(math.isnan(getattr(none, f)) for f in ("mean", "std", "median", "ci95_low", "ci95_high"))
    assert summarize([]).n == 0


# --------------------------------------------------------------------------------------------------
# paired Wilcoxon

# scipy's documented example (Fisher's paired height differences): two-sided exact p = 0.041259765625
FISHER_D = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def test_wilcoxon_known_scipy_example():
    b = np.linspace(10.0, 20.0, len(FISHER_D))
    a = b + np.asarray(FISHER_D, dtype=float)
    r = paired_wilcoxon(a, b)
    assert isinstance(r, WilcoxonResult)
    assert r.n == 15 and r.n_excluded == 0
    assert r.statistic == pytest.approx(24.0)
    assert r.p_value == pytest.approx(0.041259765625, rel=1e-9)
    assert r.mean_difference == pytest.approx(np.mean(FISHER_D))
    assert r.median_difference == pytest.approx(np.median(FISHER_D))


def test_wilcoxon_matches_scipy_with_zero_differences_and_ties():
    rng = np.random.default_rng(11)
    a = np.round(rng.normal(0.9, 0.03, 60), 2)
    b = np.round(a + rng.normal(0.005, 0.01, 60), 2)
    ref = scipy_stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    r = paired_wilcoxon(a, b)
    assert r.statistic == pytest.approx(float(ref.statistic))
    assert r.p_value == pytest.approx(float(ref.pvalue))
    assert r.n == 60


def test_wilcoxon_all_differences_zero():
    r = paired_wilcoxon([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert (r.n, r.statistic, r.p_value, r.mean_difference, r.median_difference) == (3, 0.0, 1.0, 0.0, 0.0)


def test_wilcoxon_drops_non_finite_pairs_and_checks_lengths():
    a = [1.0, 2.0, float("nan"), 4.0, 5.0, 6.5]
    b = [1.5, 1.0, 3.0, float("inf"), 4.0, 6.0]
    r = paired_wilcoxon(a, b)
    assert r.n == 4 and r.n_excluded == 2
    ref = scipy_stats.wilcoxon([1.0, 2.0, 5.0, 6.5], [1.5, 1.0, 4.0, 6.0])
    assert r.p_value == pytest.approx(float(ref.pvalue))
    with pytest.raises(ValueError):
        paired_wilcoxon([1.0, 2.0], [1.0])
    empty = paired_wilcoxon([float("nan")], [1.0])
    assert empty.n == 0 and math.isnan(empty.p_value)


# --------------------------------------------------------------------------------------------------
# report


def test_format_table_alignment():
    rows = [
        {"model": "lite_medsam", "dice": 0.91234, "n": 12, "note": None},
        {"model": "sam_vit_b", "dice": float("nan"), "n": 7},
    ]
    text = format_table(rows, ["model", ("dice", "Dice"), "n", "note"])
    lines = text.splitlines()
    assert lines[0].split() == ["model", "Dice", "n", "note"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["lite_medsam", "0.9123", "12", "-"]
    assert lines[3].split() == ["sam_vit_b", "nan", "7", "-"]
    # numbers right-aligned: the numeric columns end at the same offset on every line
    dice_end = lines[0].index("Dice") + len("Dice")
    assert lines[2][:dice_end].endswith("0.9123") and lines[3][:dice_end].endswith("nan")
    assert all(line == line.rstrip() for line in lines)


def test_format_table_of_summaries_and_custom_float_format():
    summaries = {"dice": summarize([0.9, 0.95, 0.92]), "hd95_mm": summarize([3.0, float("nan"), 5.0])}
    text = format_table(summary_rows(summaries), ["metric", *SUMMARY_COLUMNS], float_format="{:.2f}")
    assert "hd95_mm" in text and "0.92" in text
    assert text.splitlines()[3].split()[-1] == "1"  # n_excluded of hd95_mm
    assert format_table([], ["a", "b"]).splitlines()[0].split() == ["a", "b"]


def test_summaries_to_json_is_strict_and_nested():
    pred = np.zeros((20, 20), np.uint8)
    gt = pred.copy()
    gt[5:10, 5:10] = 255
    result = {
        "model_a": {"dice": summarize([0.9, 0.8]), "hd95": summarize([float("nan")])},
        "wilcoxon": paired_wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        "example": image_metrics(pred, gt),
        "spacing": np.array([0.5, 0.5]),
    }
    text = summaries_to_json(result)
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["model_a"]["dice"]["n"] == 2
    assert data["model_a"]["hd95"]["mean"] is None and data["model_a"]["hd95"]["n_excluded"] == 1
    assert data["wilcoxon"]["p_value"] == 1.0
    assert data["example"]["hd95"] is None and data["example"]["unit"] == "px"
    assert data["spacing"] == [0.5, 0.5]
