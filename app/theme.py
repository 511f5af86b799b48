"""A dark Fusion theme: radiographs are read in dim rooms, and bright chrome around them hurts contrast."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE_SHEET = """
QMainWindow::separator { background: #2a2d31; width: 3px; height: 3px; }
QDockWidget { titlebar-close-icon: none; }
QDockWidget::title { background: #2b2f35; padding: 5px 8px; font-weight: 600; color: #d6d9dd; }
QToolBar { background: #24272b; border: none; border-bottom: 1px solid #33373d; spacing: 2px; padding: 3px; }
QToolBar::separator { background: #3a3f46; width: 1px; margin: 4px 6px; }
QToolButton { padding: 4px 7px; border-radius: 4px; color: #e2e4e7; }
QToolButton:hover { background: #363b42; }
QToolButton:checked { background: #2f5d8a; color: white; }
QStatusBar { background: #1e2124; color: #c8cbd0; border-top: 1px solid #33373d; }
QStatusBar QLabel { padding: 0 8px; color: #c8cbd0; }
QPushButton { padding: 5px 10px; border-radius: 4px; background: #363b42; border: 1px solid #464c54; color: #e8e8e8; }
QPushButton:hover { background: #414750; }
QPushButton:disabled { color: #70757c; background: #2c3035; }
QPushButton#acceptButton:enabled { background: #2c6e3f; border-color: #3b8a51; }
QPushButton#rejectButton:enabled { background: #7a2f2f; border-color: #944040; }
QTreeView, QTreeWidget { border: none; }
QHeaderView::section { background: #2b2f35; color: #c8cbd0; border: none; padding: 3px 6px; }
QLineEdit, QPlainTextEdit, QSpinBox, QComboBox { padding: 3px; border: 1px solid #464c54; border-radius: 3px; background: #1d1f22; }
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colors = {
        QPalette.ColorRole.Window: QColor(36, 39, 43),
        QPalette.ColorRole.WindowText: QColor(224, 226, 229),
        QPalette.ColorRole.Base: QColor(27, 29, 32),
        QPalette.ColorRole.AlternateBase: QColor(33, 36, 40),
        QPalette.ColorRole.ToolTipBase: QColor(50, 54, 60),
        QPalette.ColorRole.ToolTipText: QColor(235, 235, 235),
        QPalette.ColorRole.Text: QColor(224, 226, 229),
        QPalette.ColorRole.Button: QColor(48, 52, 58),
        QPalette.ColorRole.ButtonText: QColor(224, 226, 229),
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Link: QColor(90, 160, 255),
        QPalette.ColorRole.Highlight: QColor(47, 93, 138),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: QColor(120, 125, 132),
    }
    for role, color in colors.items():
        palette.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(112, 117, 124))
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)
