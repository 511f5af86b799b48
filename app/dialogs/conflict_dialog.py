"""Another reader changed the image: ask whether to reload their work or keep both versions.

Why a dialog and not a status-bar line: the last writer must never win silently (two readers on one
store); the reader decides, seeing who changed what. The decision itself is applied by the window
(``EditDocument.reload_from_store`` / ``keep_both``).
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

RELOAD, KEEP_BOTH, CANCEL = "reload", "keep", "cancel"


def ask_conflict(parent: QWidget | None, message: str, can_keep_both: bool = True) -> str:
    """RELOAD, KEEP_BOTH (only when ``can_keep_both``) or CANCEL."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Changed by another reader", message, parent=parent)
    reload_button = box.addButton("Reload their version", QMessageBox.ButtonRole.AcceptRole)
    keep_button = box.addButton("Keep both (mine on top)", QMessageBox.ButtonRole.ActionRole) if can_keep_both else None
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setInformativeText("Reload shows their mask and review; your unsaved change is dropped. Keep both saves "
                           "yours as a new revision; theirs stays in the history." if can_keep_both else
                           "Reload shows their mask and review, so you review what is really there.")
    box.exec()
    clicked = box.clickedButton()
    if clicked is reload_button:
        return RELOAD
    if keep_button is not None and clicked is keep_button:
        return KEEP_BOTH
    return CANCEL
