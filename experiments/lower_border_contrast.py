"""Is the picture under a mask's lower border a confidence term worth shipping? (issue: mask confidence)

The worst automatic masks on children's films stop above the diaphragm with a smooth, confident border.
Under a border on the diaphragm the film turns bright; under one that stops short it stays dark. This
measures that brightness step (middle 60 % of each lung's width, bands of 3 % of the height above and
below the border, relative to the picture's 5-95 % range, the worse lung) for the masks kept by
``benchmarks/bench_confidence.py collect`` (runs/confidence/maps), and prints its Spearman correlation
with Dice per set and where the masks with Dice < 0.90 fall. Choosing whether to ship it is done on val
only, with ``bench_confidence.py select`` after adding it as a candidate term.

    python -m experiments.lower_border_contrast
"""

from __future__ import annotations

import json

import cv2
import numpy as np

from benchmarks.bench_confidence import CACHE, DATA, SETS, spearman
from core.evaluation.runner import manifest_images
from core.io.manifest import read_manifest

BAND, MIDDLE = 0.03, (0.2, 0.8)


def lower_border_contrast(gray: np.ndarray, mask: np.ndarray) -> float:
    picture = cv2.resize(gray.astype(np.float32), (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA)
    low, high = np.percentile(picture, [5, 95])
    spread = max(float(high - low), 1e-6)
    height = mask.shape[0]
    band = max(3, int(BAND * height))
    running = np.concatenate([np.zeros((1, picture.shape[1])), np.cumsum(picture, axis=0)])
    count, labels = cv2.connectedComponents(mask.astype(np.uint8))
    sizes = np.bincount(labels.ravel(), minlength=count)[1:]
    steps = []
    for label in np.argsort(sizes)[::-1][:2] + 1:
        lung = labels == label
        columns = np.flatnonzero(lung.any(axis=0))
        if len(columns) < 5:
            continue
        width = columns[-1] - columns[0]
        columns = columns[(columns >= columns[0] + MIDDLE[0] * width) & (columns <= columns[0] + MIDDLE[1] * width)]
        bottom = height - 1 - np.argmax(lung[::-1, columns], axis=0)
        inside = (bottom - band >= 0) & (bottom + band < height)
        columns, bottom = columns[inside], bottom[inside]
        if len(columns):
            below = (running[bottom + 1 + band, columns] - running[bottom + 1, columns]) / band
            above = (running[bottom + 1, columns] - running[bottom + 1 - band, columns]) / band
            steps.append(float(np.median(below - above)) / spread)
    return min(steps) if steps else 0.0


def main() -> None:
    for name, folder, splits, role in SETS:
        path = CACHE / (name.replace(" ", "_") + ".json")
        if not path.is_file():
            continue
        rows = {row["id"]: row for row in json.loads(path.read_text())["rows"]}
        maps = CACHE / "maps" / name.replace(" ", "_")
        samples = [s for s in read_manifest(DATA / folder / "manifest.csv").samples
                   if s.split in splits and s.id in rows and (maps / f"{s.id}.npz").is_file()]
        values, dices = [], []
        for item in manifest_images(samples, []):
            values.append(lower_border_contrast(item.gray, np.load(maps / f"{item.id}.npz")["mask"]))
            dices.append(rows[item.id]["dice"])
        values, dices = np.array(values), np.array(dices)
        low = dices < 0.90
        print(f"{name} ({role}, {len(values)}): Spearman {spearman(values, dices):.2f}; Dice < 0.90: "
              f"{np.round(np.sort(values[low]), 3).tolist()}; others' 10th percentile "
              f"{np.percentile(values[~low], 10):.3f}")


if __name__ == "__main__":
    main()
