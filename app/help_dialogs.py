"""Help > Keyboard shortcuts and Help > About."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from .actions import TOOLS

GENERAL_SHORTCUTS = (
    ("Open / Save / Undo / Redo", "Ctrl+O / Ctrl+S / Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y"),
    ("Fit / 1:1 / Invert / Mask / Contour", "F / 1 / I / M / O"),
    ("Window/level", "right-drag"),
    ("Pan", "middle-drag, Space+drag, H"),
    ("Zoom", "wheel (about the cursor), Ctrl++ / Ctrl+-"),
    ("Brush size", "[ and ]"),
    ("Polygon: close / remove last vertex", "double-click or Enter / Backspace"),
    ("Accept / Corrected / Reject", "A / C / R"),
    ("Next / previous unreviewed", "N, PageDown / Shift+N, PageUp"),
    ("Clear prompts, cancel", "Esc"),
)


def shortcut_rows() -> list[tuple[str, str]]:
    return [(text, ", ".join(keys)) for _name, text, keys, _icon in TOOLS] + list(GENERAL_SHORTCUTS)


def show_shortcuts(parent: QWidget) -> None:
    html = "<table>" + "".join(f"<tr><td>{a}&nbsp;&nbsp;</td><td><b>{b}</b></td></tr>" for a, b in shortcut_rows())
    QMessageBox.information(parent, "Keyboard shortcuts", html + "</table>")


def show_about(parent: QWidget, store_root: Path) -> None:
    from core import __version__

    QMessageBox.about(
        parent,
        "About AdaQAT Viewer",
        f"<b>AdaQAT Viewer</b> {__version__}<br>Offline chest X-ray lung segmentation and review.<br>"
        f"Annotation store: {store_root}",
    )
