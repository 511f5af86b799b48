"""The reader's verdict on the current mask: accept, correct, reject, a free-text note, and moving on."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from .worklist import STATUS_STYLE


class ReviewPanel(QWidget):
    review_requested = Signal(str, str)  # status, note
    navigate_requested = Signal(int)  # +1 next unreviewed, -1 previous unreviewed

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.status_label = QLabel()
        self.reader_label = QLabel()
        self.reader_label.setStyleSheet("color: #9a9a9a;")
        self.quality_label = QLabel()  # the mask's confidence and quality flags with their reasons
        self.quality_label.setWordWrap(True)
        self.note = QLineEdit(placeholderText="Note (optional)")
        self.accept_button = QPushButton("Accept")
        self.correct_button = QPushButton("Corrected")
        self.reject_button = QPushButton("Reject")
        self.accept_button.setToolTip("The mask is right as shown (A)")
        self.correct_button.setToolTip("I edited the mask and it is right now (C)")
        self.reject_button.setToolTip("The mask is unusable (R)")
        self.accept_button.setObjectName("acceptButton")
        self.reject_button.setObjectName("rejectButton")
        for button, status in (
            (self.accept_button, "accepted"),
            (self.correct_button, "corrected"),
            (self.reject_button, "rejected"),
        ):
            button.clicked.connect(lambda _=False, s=status: self.review_requested.emit(s, self.note.text().strip()))
        self.previous_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next unreviewed ▶")
        self.previous_button.setToolTip("Previous unreviewed image (Shift+N / PageUp)")
        self.next_button.setToolTip("Next unreviewed image (N / PageDown)")
        self.previous_button.clicked.connect(lambda: self.navigate_requested.emit(-1))
        self.next_button.clicked.connect(lambda: self.navigate_requested.emit(1))

        buttons = QGridLayout()
        buttons.addWidget(self.accept_button, 0, 0)
        buttons.addWidget(self.correct_button, 0, 1)
        buttons.addWidget(self.reject_button, 0, 2)
        nav = QHBoxLayout()
        nav.addWidget(self.previous_button)
        nav.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.status_label)
        layout.addWidget(self.quality_label)
        layout.addLayout(buttons)
        layout.addWidget(self.note)
        layout.addWidget(self.reader_label)
        layout.addLayout(nav)
        self.show_status("unreviewed", "", "")
        self.set_enabled(False)

    def show_status(self, status: str, note: str, reader: str) -> None:
        text, color = STATUS_STYLE.get(status, (status, None))
        css = f"color: {color.name()};" if color is not None else ""
        self.status_label.setText(f"<b>Status:</b> <span style='{css}'>{text}</span>")
        self.note.setText(note or "")
        self.reader_label.setText(f"Reader: {reader}" if reader else "")

    def show_quality(self, quality) -> None:
        """The shown mask's ``MaskQuality`` (confidence, flags and why), or nothing (None)."""
        self.quality_label.setText(quality_html(quality))

    def set_enabled(self, enabled: bool) -> None:
        for widget in (self.accept_button, self.correct_button, self.reject_button, self.note):
            widget.setEnabled(enabled)


def quality_html(quality) -> str:
    if quality is None:
        return ""
    text = f"<b>Confidence:</b> {quality.confidence:.2f}"
    if not quality.flags:
        return text + " · no quality flag"
    reasons = "".join(f"<br><span style='color: #f0b43c;'>⚠ {escape(flag.text)}</span>: {escape(flag.reason)}"
                      for flag in quality.flags)
    return text + reasons
