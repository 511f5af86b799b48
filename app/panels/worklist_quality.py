"""The worklist's confidence column: the mask's confidence, a warning icon and the flags' reasons.

Sorting by it (least confident first) puts the masks most likely to need a radiologist at the top;
"Next unreviewed" then follows that order. Images without a confidence (no automatic mask yet, or a
reader's own mask) sort last. The flags' short texts are in the cell, so the list's filter finds
"one lung missing"; their reasons are in the tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QStandardItem
from PySide6.QtWidgets import QApplication, QStyle

from core.review.quality_flags import FLAG_ICON

CONFIDENCE_COLUMN = 2
SORT_ROLE = Qt.ItemDataRole.UserRole + 10  # what the proxy sorts by, on every column
CONFIDENCE_ROLE = Qt.ItemDataRole.UserRole + 11  # float confidence, or None
NO_CONFIDENCE = 2.0  # sorts after every real confidence (0..1)
FLAGGED_COLOR = QColor(240, 180, 60)


def fill_quality_item(item: QStandardItem, quality) -> None:
    """Show ``quality`` (core.review.quality_flags.MaskQuality, or None) in the confidence cell."""
    if quality is None:
        item.setText("")
        item.setToolTip("")
        item.setIcon(QStandardItem().icon())
        item.setData(None, CONFIDENCE_ROLE)
        item.setData(NO_CONFIDENCE, SORT_ROLE)
        return
    item.setData(float(quality.confidence), CONFIDENCE_ROLE)
    item.setData(float(quality.confidence), SORT_ROLE)
    if quality.flags:
        item.setText(f"{FLAG_ICON} {quality.confidence:.2f} {quality.summary}")
        item.setToolTip(f"Confidence {quality.confidence:.2f}\n{quality.reasons}")
        item.setIcon(QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        item.setForeground(QBrush(FLAGGED_COLOR))
    else:
        item.setText(f"{quality.confidence:.2f}")
        item.setToolTip(f"Confidence {quality.confidence:.2f}: no quality flag")
        item.setIcon(QStandardItem().icon())
        item.setForeground(QBrush())


def confidence_order(keys: list[str], confidence_of, descending: bool = False) -> list[str]:
    """``keys`` by confidence (least first unless ``descending``); unknown confidences last, in list order."""
    known = [k for k in keys if confidence_of(k) is not None]
    unknown = [k for k in keys if confidence_of(k) is None]
    return sorted(known, key=confidence_of, reverse=descending) + unknown
