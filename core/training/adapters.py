"""AdaLoRA adapters (peft) on a PromptableSegmenter, under one of two adapter policies.

- ``paper``: AdaLoRA on every encoder attention ``qkv``; mask decoder and prompt encoder fully
  trained (the method as published).
- ``everywhere``: AdaLoRA on encoder ``qkv`` and on the mask decoder's transformer and its single-mask
  hypernetwork (the IoU head and the multimask heads are unused by a single-mask model); decoder
  weights frozen except its norms (few parameters), prompt encoder's embeddings trained. Far fewer
  trainable parameters on LiteMedSAM, whose decoder is 40 % of the model.
- ``decoder``: the decoder half of ``everywhere`` (encoder untouched): the clinic fast profile, which
  trains on cached image embeddings (``embedding_cache``).
- ``tail``: the clinic tail profile (``encoder_tail``): AdaLoRA on the attention and MLP Linears of
  the encoder's last block and on the decoder's, the neck and the norms of that block trained, the
  decoder's norms and tokens and the prompt embeddings as in ``everywhere``.
- ``lora``: the ablation of ``everywhere``: same modules and base weights, AdaLoRA's SVD-form adapters
  (P diag(E) Q, orthogonality penalty) at a fixed rank ``init_r`` with rank allocation disabled
  (``update_and_allocate`` does nothing; every epoch may be chosen as best). At ``init_r`` = 12 it has
  exactly the trainable parameters of ``everywhere`` at init_r 12; ``target_r`` is ignored.

A single global rank budget (init_r per module -> target_r on average) is redistributed by
``update_and_allocate`` according to importance, as AdaLoRA intends.
"""

from __future__ import annotations

import torch
from peft import AdaLoraConfig, AdaLoraModel
from torch import nn

from .config import AdapterConfig

ENCODER_QKV = r".*image_encoder\..*attn\.qkv"
DECODER_LINEARS = r".*mask_decoder\..*\.(q_proj|k_proj|v_proj|out_proj|lin1|lin2)|.*mask_decoder\.output_hypernetworks_mlps\.0\.layers\.\d+"
ENCODER_TAIL_LINEARS = r".*image_encoder\.layers\.3\.blocks\.1\..*\.(qkv|proj|fc1|fc2)"  # encoder_tail's block
ENCODER_TAIL_BASE = ("image_encoder.layers.3.blocks.1.", "image_encoder.neck.")
ADAPTER_POLICIES = ("paper", "everywhere", "decoder", "tail", "lora")
BASELINE_POLICIES = ("decoder_only", "full")  # no adapters: the comparison rows of the benchmark
POLICIES = ADAPTER_POLICIES + BASELINE_POLICIES
ADAPTER_NAME = "default"


def target_pattern(policy: str) -> str:
    if policy == "paper":
        return ENCODER_QKV
    if policy in ("everywhere", "lora"):
        return f"({ENCODER_QKV})|({DECODER_LINEARS})"
    if policy == "decoder":
        return DECODER_LINEARS
    if policy == "tail":
        return f"({ENCODER_TAIL_LINEARS})|({DECODER_LINEARS})"
    raise ValueError(f"unknown adapter policy '{policy}' (known: {', '.join(POLICIES)})")


def add_adapters(model: nn.Module, config: AdapterConfig, total_steps: int) -> AdaLoraModel | None:
    """Wrap ``model`` in place with AdaLoRA and set which base weights train under the policy.

    The baseline policies add no adapters (returns ``None``): ``decoder_only`` trains the mask decoder
    and prompt encoder, ``full`` trains everything.
    """
    if config.policy in BASELINE_POLICIES:
        for name, parameter in model.named_parameters():
            parameter.requires_grad = config.policy == "full" or name.startswith(("mask_decoder.", "prompt_encoder."))
        return None
    total_steps = max(int(total_steps), 3)
    tinit = int(total_steps * config.tinit_fraction)
    tfinal = int(total_steps * config.tfinal_fraction)
    if total_steps - tinit - tfinal < 1:  # peft needs a non-empty budget-reduction phase
        tinit, tfinal = 0, max(0, total_steps - 2)
    fixed_rank = config.policy == "lora"
    if fixed_rank:  # no allocation; tfinal only sets which steps may give the best checkpoint: all of them
        tinit, tfinal = 0, total_steps - 1
    peft_config = AdaLoraConfig(
        target_modules=target_pattern(config.policy),
        init_r=config.init_r,
        target_r=config.init_r if fixed_rank else config.target_r,
        tinit=tinit,
        tfinal=tfinal,
        deltaT=max(1, config.delta_t),
        total_step=total_steps,
        orth_reg_weight=config.orth_reg_weight,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
    )
    wrapped = AdaLoraModel(model, peft_config, ADAPTER_NAME)
    if fixed_rank:
        wrapped.update_and_allocate = lambda global_step: None  # fixed-rank LoRA: the budget never moves
    for name, parameter in model.named_parameters():
        parameter.requires_grad = "lora_" in name or _base_trainable(name, config.policy)
    return wrapped


def _base_trainable(name: str, policy: str) -> bool:
    if policy == "paper":
        return name.startswith(("mask_decoder.", "prompt_encoder."))
    if policy == "tail" and name.startswith(ENCODER_TAIL_BASE):
        return name.startswith("image_encoder.neck.") or "norm" in name
    # everywhere (and the decoder half of tail): prompt embeddings and decoder norms / tokens only; the decoder's weights stay frozen
    if name.startswith("prompt_encoder.") and "mask_downscaling" not in name:
        return True
    return name.startswith("mask_decoder.") and ("norm" in name or name.endswith(("iou_token.weight", "mask_tokens.weight")))


def adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if "lora_" in n and p.requires_grad]


def base_trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if "lora_" not in n and p.requires_grad]


def orthogonality_penalty(model: nn.Module) -> torch.Tensor:
    """AdaLoRA's regulariser ||AAᵀ - I||_F + ||BᵀB - I||_F, averaged over adapter matrices.

    peft adds it only to outputs that carry a ``.loss``; our models return logits, so the trainer
    adds it here.
    """
    terms = []
    for name, parameter in model.named_parameters():
        if ("lora_A" in name or "lora_B" in name) and parameter.requires_grad:
            cov = parameter @ parameter.T if "lora_A" in name else parameter.T @ parameter
            terms.append(torch.linalg.matrix_norm(cov - torch.eye(cov.shape[0], device=cov.device, dtype=cov.dtype)))
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).mean()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
