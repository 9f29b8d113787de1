"""What every student trainer takes and returns: the LoRA training config and the result.

Both trainers (backends.student.trainers) read the same TrainConfig and write the same adapters,
so this module belongs to neither.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backends.student.lora import LoraConfig
from k1core.errors import UserError
from k1core.optim import AdamWConfig

DEFAULT_LR = 2e-4


def lora_adamw(lr: float, steps: int) -> AdamWConfig:
    """The LoRA optimizer recipe: 5% linear warmup, cosine decay to lr/10 at `steps`, no weight decay."""
    return AdamWConfig(lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 20), total_steps=steps, weight_decay=0.0)


@dataclass(frozen=True)
class TrainConfig:
    """One LoRA training run; `optim` None means `lora_adamw(DEFAULT_LR, steps)`."""

    out_dir: str
    seq_len: int = 256
    batch_size: int = 1  # packed rows per micro-batch (a multiple of the device count)
    grad_accum: int = 1  # micro-batches per optimizer step
    steps: int = 100
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: AdamWConfig | None = None
    eval_every: int = 20  # 0 disables evaluation
    patience: int = 0  # evaluations without improvement before stopping; 0 never stops early
    checkpoint_every: int = 20
    logit_chunk: int = 128
    seed: int = 0
    log_every: int = 1

    def __post_init__(self):
        for name in ("seq_len", "batch_size", "grad_accum", "steps", "logit_chunk", "checkpoint_every", "log_every"):
            if getattr(self, name) <= 0:
                raise UserError(f"train config: {name} must be positive, got {getattr(self, name)}")
        if self.eval_every < 0 or self.patience < 0:
            raise UserError("train config: eval_every and patience must be >= 0")
        if self.optim is None:
            object.__setattr__(self, "optim", lora_adamw(DEFAULT_LR, self.steps))


@dataclass
class TrainResult:
    lora: dict
    history: list  # dicts: step, val_loss, (accuracy)
    best_val: float
    steps_done: int
    stopped_early: bool
