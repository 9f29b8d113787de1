"""End-to-end LoRA fine-tuning from files: a base model path and chat JSONL in, PEFT adapter out."""
from __future__ import annotations

from pathlib import Path

from backends.student.chat_data import Example, encode_chat, read_chat_jsonl
from backends.student.train_config import TrainConfig, TrainResult
from backends.student.trainers import get_trainer
from k1core.errors import UserError


def encode_file(tokenizer, template: str, path: str | Path, seq_len: int) -> list[Example]:
    """Every conversation of a chat JSONL file as an Example (prompt masked, cut to seq_len)."""
    return [encode_chat(tokenizer, template, msgs, seq_len) for msgs in read_chat_jsonl(path)]


def finetune(model_path: str | Path, train_jsonl: str | Path, val_jsonl: str | Path | None,
             tcfg: TrainConfig, accuracy_fn=None, trainer: str = "jax") -> TrainResult:
    """Train a LoRA adapter for the model at `model_path` on chat JSONL with the trainer named
    `trainer` (backends.student.trainers); adapters land in tcfg.out_dir."""
    chosen = get_trainer(trainer)
    handle, tokenizer, template = chosen.prepare(model_path)
    if tokenizer is None:
        raise UserError(f"{model_path}: no tokenizer found (tokenizer.json for HF directories)")
    train = encode_file(tokenizer, template, train_jsonl, tcfg.seq_len)
    val = encode_file(tokenizer, template, val_jsonl, tcfg.seq_len) if val_jsonl else []
    return chosen.train(handle, train, val, tcfg, accuracy_fn)
