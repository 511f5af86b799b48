"""Tools > Fine-tune model…: the hook where the training UI will live.

The training engine (core/training) is built separately and will run in its own process (GPU memory
and crashes stay out of the viewer). Until it is wired in, this says so instead of pretending.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

AVAILABLE = False


def open_training_dialog(parent: QWidget, store_path: str = "") -> None:
    """Entry point called by the menu; will open the fine-tuning dialog once it exists."""
    QMessageBox.information(
        parent,
        "Fine-tune model",
        "Fine-tuning from your reviewed masks is available soon.\n\n"
        "Accepted and corrected masks are already kept in the annotation store"
        + (f"\n({store_path})" if store_path else "")
        + ", so they will be ready to train on.",
    )
