"""Training data from several sources in one example cache, and the record of what a model learned from.

A model trained on one collection drops several Dice points at hospitals it never saw; training on
several sources is the usual remedy. The sources differ in size (cxr-lungs has 246 training images,
peds-lungs 709), so each gets a sampling weight: its training examples appear ``weight`` times per
epoch (a fractional part picks a seeded subset), and every copy is augmented differently because the
dataset seeds augmentation by (seed, epoch, index). Each source's ``val`` split is repeated up to the
largest one's size, so the per-image mean that chooses the checkpoint weighs the sources equally.

Ids are prefixed ``source/`` so the sources stay apart in the cache; a sidecar ``<cache>.sources.json``
records each source's real image count and licence, which the trainer writes into ``model.json``
(``training_data``): a clinic asks what data a model saw.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .example_cache import Example, save_example_cache

SIDECAR_SUFFIX = ".sources.json"
LICENCE_COLUMNS = ("license", "licence")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SourceSpec:
    name: str  # short name recorded in the model card (e.g. "peds-lungs")
    manifest: Path
    weight: float = 1.0  # training copies per epoch
    licence: str = ""  # "" = summarise the manifest's licence column

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        """``NAME=MANIFEST[:WEIGHT]``, e.g. ``peds-lungs=../shared/data/peds-lungs/manifest.csv:1``."""
        name, sep, path = text.partition("=")
        head, _, tail = path.rpartition(":")
        weight = 1.0
        if head and tail.replace(".", "", 1).isdigit():
            path, weight = head, float(tail)
        if not sep or not name.strip() or "/" in name or not path or weight <= 0:
            raise ValueError(f"{text}: a source is NAME=MANIFEST[:WEIGHT] with a weight above 0 "
                             "(e.g. peds-lungs=data/manifest.csv:1)")
        return cls(name.strip(), Path(path), weight)


def licence_summary(manifest: str | Path, split: str = "train") -> str:
    """The licences of a split's rows, most common first (``unknown x106; CC BY 3.0 x52``; blank = unknown); "" if no column."""
    if not Path(manifest).is_file():  # a cache remixed away from the data (a GPU machine): licences travel resolved
        return ""
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    column = next((c for c in LICENCE_COLUMNS if rows and c in rows[0]), None)
    if column is None:
        return ""
    counts = Counter((row.get(column) or "").strip() or "unknown" for row in rows if row.get("split") == split)
    return "; ".join(f"{name} x{count}" for name, count in counts.most_common())


def source_licence(spec: SourceSpec) -> str:
    """The spec's licence text, with the manifest's per-image licences when it lists them."""
    images = licence_summary(spec.manifest)
    if spec.licence and images:
        return f"{spec.licence} (images: {images})"
    return spec.licence or images


def weighted_copies(examples: list[Example], weight: float, seed: int) -> list[Example]:
    """``weight`` copies of the list: the whole part repeated, the fraction a seeded subset."""
    whole, fraction = int(math.floor(weight)), weight - math.floor(weight)
    extra = int(round(fraction * len(examples)))
    picked = np.random.default_rng(seed).permutation(len(examples))[:extra]
    return examples * whole + [examples[i] for i in sorted(picked)]


def prefixed(examples: list[Example], source: str) -> list[Example]:
    return [Example(f"{source}/{e.id}", e.image, e.mask, e.region_hw) for e in examples]


def mix_sources(decoded: dict[str, dict[str, list[Example]]], specs: list[SourceSpec], seed: int = 0,
                balance_val: bool = True) -> tuple[dict[str, list[Example]], dict]:
    """Combine decoded sources (name -> split -> examples) into one cache's splits and the sidecar record.

    ``balance_val=False`` keeps each val split once (a base cache that ``remix`` turns into mixes later).
    """
    val_sizes = [len(decoded[s.name].get("val", [])) for s in specs]
    largest_val = max(val_sizes, default=0)
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    record = {"training_data": [], "mix": {}}
    for spec in specs:
        parts = {split: prefixed(decoded[spec.name].get(split, []), spec.name) for split in SPLITS}
        val_repeat = (max(1, round(largest_val / len(parts["val"]))) if balance_val else 1) if parts["val"] else 0
        splits["train"] += weighted_copies(parts["train"], spec.weight, seed)
        splits["val"] += parts["val"] * val_repeat
        splits["test"] += parts["test"]
        record["training_data"].append({"source": spec.name, "images": len(parts["train"]),
                                        "licence": source_licence(spec)})
        record["mix"][spec.name] = {"weight": spec.weight, "train_examples_per_epoch": len(weighted_copies(
            parts["train"], spec.weight, seed)), "val_images": len(parts["val"]), "val_repeat": val_repeat,
            "test_images": len(parts["test"]), "manifest": str(spec.manifest)}
    return {k: v for k, v in splits.items() if v}, record


def prepare_mixture(specs: list[SourceSpec], out: str | Path, image_size: int, seed: int = 0,
                    balance_val: bool = True) -> tuple[dict, list[str]]:
    """Decode every source (as ``adaqat prepare`` does) and write the mixed cache and its sidecar."""
    from .example_loading import load_examples  # decoding needs OpenCV / pydicom
    from ..io.manifest import read_manifest

    decoded, problems = {}, []
    for spec in specs:
        manifest = read_manifest(spec.manifest)
        problems += manifest.problems
        decoded[spec.name] = {}
        for split in SPLITS:
            decoded[spec.name][split], split_problems = load_examples(manifest.split(split), image_size)
            problems += [f"{spec.name}: {p}" for p in split_problems]
    splits, record = mix_sources(decoded, specs, seed, balance_val)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_example_cache(out, splits)
    record["image_size"], record["seed"] = image_size, seed
    sidecar_path(out).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record, problems


def remix(cache: str | Path, weights: dict[str, float], out: str | Path, seed: int = 0) -> dict:
    """A mixed cache with other sampling weights, from one written with weight 1 (no image decoding).

    Lets one packed cache travel to a GPU machine and become several mixes there.
    """
    from .example_cache import load_example_cache

    base = json.loads(sidecar_path(cache).read_text(encoding="utf-8"))
    if any(entry.get("val_repeat", 1) > 1 or entry.get("weight") != 1 for entry in base["mix"].values()):
        raise ValueError(f"{cache}: remix needs a cache written with weight 1 and balance_val=False")
    decoded: dict[str, dict[str, list[Example]]] = {entry["source"]: {} for entry in base["training_data"]}
    for split, examples in load_example_cache(cache).items():
        for example in examples:
            name, _, original = example.id.partition("/")
            decoded[name].setdefault(split, []).append(Example(original, example.image, example.mask, example.region_hw))
    specs = [SourceSpec(e["source"], Path(base["mix"][e["source"]]["manifest"]), float(weights.get(e["source"], 1.0)),
                        e["licence"]) for e in base["training_data"]]
    splits, record = mix_sources(decoded, specs, seed)
    for spec, entry in zip(specs, record["training_data"]):
        entry["licence"] = spec.licence  # resolved when the base was written, next to the manifests
    save_example_cache(out, splits)
    record["image_size"], record["seed"], record["remixed_from"] = base.get("image_size"), seed, Path(cache).name
    sidecar_path(out).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def sidecar_path(cache: str | Path) -> Path:
    cache = Path(cache)
    return cache.with_name(cache.name + SIDECAR_SUFFIX)


def training_data_for(data_path: str | Path, train: list[Example]) -> list[dict]:
    """What ``model.json`` records as ``training_data`` for a run on ``data_path``.

    A mixed cache: its sidecar. A manifest: one source named after its folder, with its licence column
    summarised. Otherwise one entry per id prefix (or the file's name), licence not recorded.
    """
    data_path = Path(data_path)
    sidecar = sidecar_path(data_path)
    if data_path.suffix == ".npz" and sidecar.is_file():
        try:
            entries = json.loads(sidecar.read_text(encoding="utf-8")).get("training_data")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            entries = None
        if isinstance(entries, list):
            return entries
    if data_path.suffix.lower() == ".csv":
        return [{"source": data_path.resolve().parent.name, "images": len({e.id for e in train}),
                 "licence": licence_summary(data_path)}]
    counts = Counter(e.id.split("/", 1)[0] if "/" in e.id else data_path.stem for e in {e.id: e for e in train}.values())
    return [{"source": name, "images": count, "licence": ""} for name, count in counts.items()]


__all__ = ["SourceSpec", "licence_summary", "mix_sources", "prepare_mixture", "remix", "sidecar_path",
           "source_licence", "training_data_for", "weighted_copies"]
