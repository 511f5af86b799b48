"""Help > Keyboard shortcuts and Help > About."""

from __future__ import annotations

from pathlib import Path

from html import escape

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox, QWidget

MOUSE_GESTURES = (
    ("Window/level", "right-drag (up = brighter, right = wider, on every file)"),
    ("Pan", "middle-drag, Space+drag"),
    ("Zoom", "wheel (about the cursor)"),
    ("Polygon: close / remove last vertex", "double-click or Enter / Backspace"),
    ("Box prompt", "drag a box around one lung; a second box refines the other lung"),
    ("Point prompts", "click inside a lung (+) or outside it (−); they change only the region they touch"),
)


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    """Every keyboard shortcut the window really has (read from its actions), then mouse gestures.

    Built from the actions, so the help can never fall behind the key map.
    """
    rows, seen = [], set()
    for action in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        text = action.text().replace("&", "").rstrip("…").strip()
        if not keys or not text or text in seen:
            continue
        seen.add(text)
        rows.append((text, ", ".join(keys)))
    return rows + list(MOUSE_GESTURES)


def shortcuts_html(actions: list[QAction]) -> str:
    return "<table>" + "".join(f"<tr><td>{escape(a)}&nbsp;&nbsp;</td><td><b>{escape(b)}</b></td></tr>"
                               for a, b in shortcut_rows(actions)) + "</table>"


def show_shortcuts(parent: QWidget) -> None:
    QMessageBox.information(parent, "Keyboard shortcuts", shortcuts_html(parent.actions()))


def about_html(store_root: Path, model_info=None) -> str:
    """Intended use, the model in use and its training data (from its card), offline operation, the store."""
    from core import __version__
    from core.models.about import INTENDED_USE, OFFLINE, model_facts

    facts = model_facts(getattr(model_info, "path", None))
    table = "".join(f"<tr><td valign='top'><b>{escape(k)}</b>&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>" for k, v in facts)
    return (f"<b>AdaQAT Viewer</b> {escape(__version__)}<br>Offline chest X-ray lung segmentation and review."
            f"<p><b>Intended use.</b> {escape(INTENDED_USE)}</p><table>{table}</table>"
            f"<p>{escape(OFFLINE)}</p>Annotation store: {escape(str(store_root))}")


def show_about(parent: QWidget, store_root: Path, model_info=None) -> None:
    QMessageBox.about(parent, "About AdaQAT Viewer", about_html(store_root, model_info))
