"""What a training run hands back: the model folders it wrote and, for a continuing profile, the held-out
comparison with the model it continued (so a caller need not read ``comparison.json`` again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainResult:
    models: dict[str, Path] = field(default_factory=dict)  # "fp32" / "int8" -> the model folder
    comparison: dict | None = None  # comparison.comparison_record: means, paired p, "better"

    def items(self):
        return self.models.items()

    def __getitem__(self, kind: str) -> Path:
        return self.models[kind]
