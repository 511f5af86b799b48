"""The runtimes a model folder can run in, by name: the loader consults this registry, never a runtime's file.

A runtime is a module with ``why_not(card, device) -> str | None`` (None: it can run this model here) and
``load(model_dir, card, weights, device, threads) -> segmenter`` (``encode`` / ``decode`` as
:class:`~core.models.segmenter.PromptableSegmenter`). Adding one (OpenVINO, say) is a new module and a
line in ``RUNTIMES``. ``auto`` takes the first runtime listed after torch that can run the model, else torch,
which runs every model.
"""

from __future__ import annotations

from . import onnx_runtime, torch_runtime
from .card import ModelCard
from .errors import ModelLoadError

FALLBACK = "torch"
RUNTIMES = {
    "torch": torch_runtime,
    "onnxruntime": onnx_runtime,
}
CHOICES = ("auto", *RUNTIMES)  # what --runtime accepts


def choose_runtime(requested: str, card: ModelCard, device: str) -> str:
    """The runtime's name: the one asked for (ModelLoadError, saying why, when it can't run this model), or
    for ``auto`` the first that can."""
    if requested not in CHOICES:
        raise ModelLoadError(f"unknown runtime '{requested}' (use {', '.join(CHOICES)})")
    if requested != "auto":
        why = RUNTIMES[requested].why_not(card, device)
        if why:
            raise ModelLoadError(f"{card.name}: cannot run with {requested}: {why}")
        return requested
    return next((name for name, runtime in RUNTIMES.items()
                 if name != FALLBACK and runtime.why_not(card, device) is None), FALLBACK)
