"""Reading weight files without ever unpickling arbitrary objects.

``.safetensors`` is read with safetensors; anything else goes through ``torch.load(weights_only=True)``,
which refuses pickled code. Both return a flat ``{name: tensor}`` dict. torch is imported by the
readers only: ``sha256_of`` serves the torch-free ONNX Runtime route too.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelLoadError

if TYPE_CHECKING:
    import torch


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: weight file not found (give the path of a .pth or .safetensors file)")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({error})") from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickler_detail(str(error))
        if "global" in detail.lower():
            raise ModelLoadError(
                f"{path}: refused, the file holds more than plain weights ({detail}); "
                "convert it to safetensors or a plain state dict"
            ) from None
        raise ModelLoadError(f"{path}: not a readable PyTorch weight file ({detail})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable PyTorch weight file ({str(error).splitlines()[0]})") from None
    for wrapper_key in ("model", "state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper_key), dict):
            loaded = loaded[wrapper_key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelLoadError(f"{path}: does not hold a state dict of tensors")
    return dict(loaded)


def load_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``state`` strictly, naming the first mismatched keys or shapes instead of a raw traceback."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs expected {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches (e.g. {'; '.join(wrong_shape[:2])})")
    if problems:
        raise ModelLoadError(f"{source}: weights do not match this model: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _unpickler_detail(message: str) -> str:
    """The informative line of torch's long weights-only error ("Unsupported global: ...")."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[index + 1] if index + 1 < len(lines) else "unreadable")
    return lines[0] if lines else "unreadable"
