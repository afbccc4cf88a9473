"""Training: supervised fine-tuning (answer-token loss), LoRA and from-scratch, one loop."""

from __future__ import annotations

from smollab.study.spec import TrainSpec  # what Trainer takes: [conditions.train] of a spec
from smollab.train.trainer import Trainer, lr_at, set_seed

__all__ = ["TrainSpec", "Trainer", "lr_at", "set_seed"]
