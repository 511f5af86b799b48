"""What the product is for, and which model is drawing the masks and what it learned from.

Shown by Help > About. A reader deciding how far to trust a mask needs three facts in plain words:
the intended use (lung outlines for a reader to check, not a diagnosis), the model in use (name,
version, precision, how it was trained), and its training data (which data sets, how many images,
under which licence). The model facts come from the model's own card (``model.json``), so a
fine-tuned clinic model is described as truthfully as the bundled one, and a card that does not
record something is said not to, rather than guessed.
"""

from __future__ import annotations

import math
from pathlib import Path

from .card import ModelCard, read_model_card
from .errors import ModelLoadError

INTENDED_USE = (
    "Decision support for lung segmentation on chest radiographs (CR/DX, PA or AP): "
    "it outlines the lungs and measures their area for a reader to check, correct, accept or reject. "
    "It is not a diagnostic device: it does not detect, classify or rule out disease, and a mask is "
    "used only after a reader has reviewed it."
)
OFFLINE = ("Runs on this computer: images, masks and identifiers leave it only as DICOM results sent to your "
           "site's own PACS when that is configured; it uses no internet connection. ONNX Runtime's usage-telemetry "
           "files (a device ID under ~/.cache/Microsoft) are switched off (ORT_DISABLE_TELEMETRY=1).")


def model_facts(model_dir: str | Path | None) -> list[tuple[str, str]]:
    """(label, text) rows about the model in ``model_dir``; one row saying why when there is none."""
    if not model_dir:
        return [("Model", "none loaded yet")]
    try:
        card = read_model_card(model_dir)
    except ModelLoadError as error:
        return [("Model", f"its card cannot be read ({error})")]
    return card_facts(card)


def card_facts(card: ModelCard) -> list[tuple[str, str]]:
    rows = [("Model", f"{card.display_name} {card.version} ({card.precision.upper()}, {card.backbone} backbone)")]
    if card.method:
        rows.append(("Training method", card.method))
    if card.parent is not None:
        rows.append(("Fine-tuned from", f"{card.parent.name} {card.parent.version}"))
    rows.append(("Training data", training_data_text(card)))
    dice = card.validation_dice
    if dice is not None:
        rows.append(("Validation Dice", f"{dice:.3f} (on the training run's held-out validation images)"))
    rows.append(("Mask confidence", confidence_text(card)))
    return rows


def confidence_text(card: ModelCard) -> str:
    """How this model's confidence numbers were calibrated: the shared fit, or its own held-out masks."""
    calibration = card.confidence_calibration
    if calibration is None:
        return "calibrated on the shipped model's masks of held-out validation images (the shared fit)"
    images = calibration.get("images")
    counted = f"{images} " if isinstance(images, int) and not isinstance(images, bool) else ""
    return (f"recalibrated for this model on its run's {counted}held-out images with a reader's mask "
            f"(its errors ran {math.exp(card.confidence_shift):.2f} x what the shared fit predicts)")


def training_data_text(card: ModelCard) -> str:
    if card.training_data:
        return "; ".join(f"{s.source}: {s.images:,} training images (licence: {s.licence or 'not recorded'})"
                         for s in card.training_data)
    images = card.training_images
    held_out = card.training.get("val_images")
    if images is None:
        return "not recorded in this model's card"
    counts = f"{images:,} training images" + (f" and {held_out:,} validation images" if isinstance(held_out, int) else "")
    return f"{counts}; the card does not name the data set"
