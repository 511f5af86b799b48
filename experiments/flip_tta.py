"""Horizontal-flip test-time augmentation in automatic mode: does it help the shipped model?

Averages the probabilities of the image and its mirror image, then applies the product's threshold
and lung clean-up, and prints (plain Dice, flip-averaged Dice, images) for clinic-sample val and
cxr-lungs val/test (bundled INT8 model, full resolution).

    python experiments/flip_tta.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

from core.evaluation.metrics import image_metrics  # noqa: E402
from core.evaluation.runner import manifest_images  # noqa: E402
from core.models.loading import load_model  # noqa: E402
from core.segment.postprocess import clean_lung_mask  # noqa: E402
from core.segment.predictor import THRESHOLD, Predictor  # noqa: E402
from core.io.manifest import read_manifest  # noqa: E402

SETS = (("clinic-sample val", "clinic-sample", "val"), ("cxr-lungs val", "cxr-lungs", "val"), ("cxr-lungs test", "cxr-lungs", "test"))


def main() -> int:
    predictor = Predictor(load_model("default"))
    for label, folder, split in SETS:
        plain, flipped = [], []
        for item in manifest_images(read_manifest(DATA / folder / "manifest.csv").split(split), []):
            predictor.set_image(item.gray)
            direct = predictor.predict()
            predictor.set_image(np.ascontiguousarray(item.gray[:, ::-1]))
            mirrored = predictor.predict()
            probability = (direct.probability + mirrored.probability[:, ::-1]) / 2
            mask = clean_lung_mask((probability > THRESHOLD).astype(np.uint8) * 255)
            plain.append(image_metrics(direct.mask, item.truth).dice)
            flipped.append(image_metrics(mask, item.truth).dice)
        print(f"{label}: plain {np.mean(plain):.4f}, flip-averaged {np.mean(flipped):.4f} ({len(plain)} images)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
