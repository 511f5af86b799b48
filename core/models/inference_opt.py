"""Inference-only graph rewrites shared by the FP32 and INT8 paths.

- ``fold_batchnorm``: TinyViT's ``Conv2d_BN`` (a Sequential of conv ``c`` + BatchNorm ``bn``) becomes one
  Conv2d with the BatchNorm's affine transform folded into its weight and bias. Equal outputs (float
  rounding only), one memory pass less per conv; about 10 % of LiteMedSAM's encoder time on CPU.
  The state dict changes (``x.c.weight`` + ``x.bn.*`` -> ``x.weight`` + ``x.bias``), so a folded model
  is saved folded and the architecture is folded the same way before loading (see ``int8.py``).
- ``channels_last_encoder``: feeds the image encoder a channels-last (NHWC) tensor; LiteMedSAM's
  stage-0 convolutions at 256x256 run much faster in that layout with oneDNN. Weights are unchanged.

Neither is for training: folding freezes the BatchNorm statistics.
"""

from __future__ import annotations

import torch
from torch import nn


def _is_conv_bn(module: nn.Module) -> bool:
    """A TinyViT-style ``Conv2d_BN``: a Sequential holding exactly conv ``c`` then BatchNorm2d ``bn``."""
    if not isinstance(module, nn.Sequential):
        return False
    children = dict(module.named_children())
    return (
        list(children) == ["c", "bn"]
        and type(children["c"]) is nn.Conv2d
        and type(children["bn"]) is nn.BatchNorm2d
        and children["bn"].track_running_stats
        and children["bn"].running_mean is not None
    )


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One Conv2d computing ``bn(conv(x))`` with BatchNorm in inference mode (its running statistics)."""
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    # float64 for the fold itself, so the folded weights carry no extra rounding beyond the final cast
    inv_std = torch.rsqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(inv_std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(inv_std)
    scale = gamma * inv_std
    fused.weight.copy_((conv.weight.double() * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
    conv_bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(inv_std)
    fused.bias.copy_(((conv_bias - bn.running_mean.double()) * scale + beta).to(conv.weight.dtype))
    return fused


def fold_batchnorm(model: nn.Module) -> int:
    """Replace every conv+BatchNorm pair (TinyViT ``Conv2d_BN``) in ``model`` by one conv, in place.

    Returns how many pairs were folded (0 for SAM ViT, which has no BatchNorm). Puts ``model`` in eval
    mode: the fold uses the BatchNorm running statistics, so the result is for inference only.
    """
    model.eval()
    targets = [name for name, module in model.named_modules() if name and _is_conv_bn(module)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        pair = getattr(parent, child)
        setattr(parent, child, fuse_conv_bn(pair.c, pair.bn))
    return len(targets)


def _to_channels_last(_module: nn.Module, args: tuple) -> tuple:
    (images, *rest) = args
    if images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return (images, *rest)


def channels_last_encoder(model: nn.Module) -> nn.Module:
    """Make ``model.image_encoder`` receive NHWC tensors (a forward pre-hook; no weights change).

    Idempotent. The hook is not part of the state dict, so apply it again after loading.
    """
    encoder = model.image_encoder
    if not getattr(encoder, "_adaqat_channels_last", False):
        encoder.register_forward_pre_hook(_to_channels_last)
        encoder._adaqat_channels_last = True
    return model
