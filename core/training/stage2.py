"""Stage 2: INT8 quantisation-aware training (torchao fake quant), then a real INT8 model.

The fake quantisers match the deployed INT8 kernels: weights per output channel, symmetric int8;
activations per token, dynamic int8. Which Linear layers are quantised is the precision policy
(``core.models.int8.POLICIES``): ``paper`` keeps the encoder's ``qkv`` (where the adapters were
merged) in float; ``merged`` quantises every Linear layer. Training uses a low learning rate on all
weights (BatchNorm statistics frozen) and keeps the epoch with the best validation Dice measured
with fake quantisation on.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..models.card import read_model_card
from ..models.int8 import POLICIES, export_int8_model_dir
from ..models.loading import load_model_dir
from . import distributed
from .provenance import library_versions, utc_now
from .config import INT8_DIR, STAGE2_CHECKPOINT
from .loop import LoopConfig, StageHooks, TrainingLoop
from .stage1 import freeze_batchnorm


def fake_quant_configs():
    from torchao.quantization.qat import IntxFakeQuantizeConfig

    activation = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False)
    weight = IntxFakeQuantizeConfig(torch.int8, "per_channel", is_symmetric=True)
    return activation, weight


def prepare_qat(model: nn.Module, policy: str) -> int:
    """Insert fake quantisers on the Linear layers the policy quantises; returns how many."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    keep_float = POLICIES[policy]
    chosen = [name for name, module in model.named_modules() if isinstance(module, nn.Linear) and not keep_float(name, module)]
    activation, weight = fake_quant_configs()
    quantize_(
        model,
        QATConfig(activation_config=activation, weight_config=weight, step="prepare"),
        filter_fn=lambda module, fqn: isinstance(module, nn.Linear) and fqn in chosen,
    )
    return len(chosen)


def remove_fake_quant(model: nn.Module) -> None:
    """Back to plain Linear layers holding the QAT-trained float weights (ready for INT8 export)."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(step="convert"), filter_fn=lambda module, fqn: isinstance(module, nn.Linear))


def run_stage2(fp32_dir: Path, out_dir: Path, train_set, val_set, loop_config: LoopConfig, config,
               resume: bool = False, progress=None, cancel=None) -> Path:
    """Fine-tune the stage-1 model with fake quantisation and export ``out_dir/model-int8``."""
    fp32_card = read_model_card(fp32_dir)
    model = load_model_dir(Path(fp32_dir)).module
    qat_config = LoopConfig(**{**loop_config.__dict__, "epochs": config.qat_epochs, "warmup_fraction": 0.0})
    quantised_layers = prepare_qat(model, config.qat_policy)
    model.to(qat_config.device)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = True
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.qat_lr, weight_decay=0.0)
    hooks = StageHooks(prepare_train_mode=freeze_batchnorm)
    loop = TrainingLoop("stage2", model, optimizer, train_set, val_set, qat_config,
                        Path(out_dir) / STAGE2_CHECKPOINT, hooks, progress, cancel)
    baseline_val = loop.validate()
    result = loop.run(resume=resume)
    model.load_state_dict(result.best_state)
    remove_fake_quant(model)
    model.to("cpu").eval()
    card = {
        **{k: v for k, v in fp32_card.to_json().items() if k not in ("weights_file", "weights_sha256", "format")},
        "precision": "int8",
        "created": utc_now(),
        "version": fp32_card.version + "-int8",
        "method": f"AdaLoRA stage 1 + INT8 QAT stage 2 ({config.qat_policy} policy)",
        "stage1_model": {"version": fp32_card.version, "weights_sha256": fp32_card.weights_sha256},
        "qat": {
            "policy": config.qat_policy,
            "quantised_linear_layers": quantised_layers,
            "epochs": config.qat_epochs,
            "lr": config.qat_lr,
            "best_epoch": result.best_epoch,
            "val_dice_fake_quant_before": baseline_val,
            "val_dice_fake_quant_best": result.best_val_dice,
            "history": result.history,
            "seconds": round(result.seconds, 1),
        },
        "versions": library_versions(),
    }
    json.dumps(card)  # fail early on anything not JSON-able
    model_dir = Path(out_dir) / INT8_DIR
    if distributed.is_main():  # under torchrun every process holds this model; rank 0 writes it
        model_dir = export_int8_model_dir(model, model_dir, card, config.qat_policy)
    distributed.barrier()
    return model_dir
