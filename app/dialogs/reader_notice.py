"""Tools > Fine-tune model… on a reading station: say plainly that fine-tuning needs the annotator bundle.

The reader bundle carries no torch, so it cannot train; what it can do is run a model an annotator
fine-tuned and exported. The notice therefore offers the import straight away (the model manager's
Import…), instead of a training dialog that would fail when started.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

TITLE = "Fine-tuning needs the annotator bundle"
TEXT = ("Fine-tuning needs the adaqat-annotator bundle (it includes PyTorch). This reading station runs "
        "the adaqat-reader bundle, which segments and reviews with the installed models but cannot train.")
INFORMATIVE = ("Fine-tune on the annotator's PC, export the model there (Tools > Models… > Export…), copy the "
               ".adaqat-model file here and import it.")
IMPORT_LABEL = "Import a model package…"


def fine_tune_notice(parent: QWidget, on_import) -> QMessageBox:
    """A non-blocking notice; ``on_import()`` runs when the reader chooses to import a model package."""
    box = QMessageBox(QMessageBox.Icon.Information, TITLE, TEXT, QMessageBox.StandardButton.Close, parent)
    box.setObjectName("fine_tune_needs_annotator")
    box.setInformativeText(INFORMATIVE)
    import_button = box.addButton(IMPORT_LABEL, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(import_button)
    box.buttonClicked.connect(lambda button: on_import() if button is import_button else None)
    box.open()
    return box
