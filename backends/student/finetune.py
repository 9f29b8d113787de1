"""End-to-end LoRA fine-tuning from files: a base model path and chat JSONL in, PEFT adapter out.

`load_training_data` prepares the model and encodes the data once; the run's length (steps, or the
steps of E epochs) is counted on that encoded data before a TrainConfig is fixed, since evaluation
and checkpoint intervals and the learning-rate schedule all follow from the steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.student.chat_data import Example, encode_chat, read_chat_jsonl
from backends.student.train_config import TrainConfig, TrainResult
from backends.student.trainers import Trainer, get_trainer
from backends.student.training_length import TrainingLength, measure
from k1core.errors import UserError


def encode_file(tokenizer, template: str, path: str | Path, seq_len: int) -> list[Example]:
    """Every conversation of a chat JSONL file as an Example (prompt masked, cut to seq_len)."""
    return [encode_chat(tokenizer, template, msgs, seq_len) for msgs in read_chat_jsonl(path)]


@dataclass
class TrainingData:
    """A trainer's prepared base model with the training and validation chats encoded for it."""

    trainer: Trainer
    handle: object
    train: list[Example]
    val: list[Example]
    seq_len: int

    def length(self, batch_size: int, grad_accum: int, seed: int, steps: int | None = None,
               epochs: float | None = None) -> TrainingLength:
        """`steps` when given, else the steps that take `epochs` passes over the training examples,
        counted on the trainer's own row stream for this batch shape and seed."""
        return measure(self.trainer.rows(self.train, self.seq_len, seed), len(self.train), batch_size * grad_accum,
                       steps, epochs)

    def fit(self, tcfg: TrainConfig, accuracy_fn=None) -> TrainResult:
        """Train a LoRA adapter; adapters land in tcfg.out_dir."""
        if tcfg.seq_len != self.seq_len:
            raise ValueError(f"data encoded for seq_len {self.seq_len}, trained at {tcfg.seq_len}")
        return self.trainer.train(self.handle, self.train, self.val, tcfg, accuracy_fn)


def load_training_data(model_path: str | Path, train_jsonl: str | Path, val_jsonl: str | Path | None, seq_len: int,
                       trainer: str = "jax") -> TrainingData:
    """The trainer named `trainer` (backends.student.trainers) prepared on the model at `model_path`,
    with the chat JSONL files encoded by the model's tokenizer and chat template."""
    chosen = get_trainer(trainer)
    handle, tokenizer, template = chosen.prepare(model_path)
    if tokenizer is None:
        raise UserError(f"{model_path}: no tokenizer found (tokenizer.json for HF directories)")
    train = encode_file(tokenizer, template, train_jsonl, seq_len)
    val = encode_file(tokenizer, template, val_jsonl, seq_len) if val_jsonl else []
    return TrainingData(chosen, handle, train, val, seq_len)


def finetune(model_path: str | Path, train_jsonl: str | Path, val_jsonl: str | Path | None,
             tcfg: TrainConfig, accuracy_fn=None, trainer: str = "jax") -> TrainResult:
    """Train a LoRA adapter for tcfg.steps steps on chat JSONL with the trainer named `trainer`."""
    return load_training_data(model_path, train_jsonl, val_jsonl, tcfg.seq_len, trainer).fit(tcfg, accuracy_fn)
