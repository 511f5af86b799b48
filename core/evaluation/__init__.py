"""Evaluation: per-image Dice, IoU, HD95, NSD; summaries with bootstrap CIs; paired Wilcoxon test.

See the module docstrings for the conventions (ignore label 127, MONAI boundary convention, empty
masks, bootstrap seed).
"""

from core.evaluation.metrics import ImageMetrics, dice, hd95, image_metrics, iou, nsd
from core.evaluation.report import format_table, summaries_to_json
from core.evaluation.stats import WilcoxonResult, paired_wilcoxon
from core.evaluation.summary import Summary, summarize

__all__ = [
    "ImageMetrics",
    "Summary",
    "WilcoxonResult",
    "dice",
    "format_table",
    "hd95",
    "image_metrics",
    "iou",
    "nsd",
    "paired_wilcoxon",
    "summaries_to_json",
    "summarize",
]
