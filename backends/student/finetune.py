"""End-to-end LoRA fine-tuning from files: a base model path and chat JSONL in, PEFT adapter out.

Two trainers write the same adapters: "jax" (any GGUF file or HF directory; CPU/GPU) and "mlx"
(mlx-lm's tuner on an HF directory; the default on Apple silicon, where it runs on Metal).
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

from backends.student.base_model import BaseModel
from backends.student.chat_data import Example, encode_chat, read_chat_jsonl
from backends.student.jax_trainer import TrainConfig, TrainResult, train_lora
from k1core.errors import UserError

TRAINERS = ("jax", "mlx")


def default_trainer() -> str:
    """mlx on Apple silicon (macOS arm64), jax elsewhere (mlx[cpu] on Linux is far slower than JAX)."""
    return "mlx" if sys.platform == "darwin" and platform.machine() == "arm64" else "jax"


def load_student(path: str | Path) -> BaseModel:
    """A base model from a .gguf file or a Hugging Face directory."""
    path = Path(path)
    if path.is_dir():
        from backends.student.hf_loader import load_hf_dir

        return load_hf_dir(path)
    from backends.student.gguf_loader import load_gguf

    return load_gguf(path)


def encode_file(tokenizer, template: str, path: str | Path, seq_len: int) -> list[Example]:
    """Every conversation of a chat JSONL file as an Example (prompt masked, cut to seq_len)."""
    return [encode_chat(tokenizer, template, msgs, seq_len) for msgs in read_chat_jsonl(path)]


def finetune(model_path: str | Path, train_jsonl: str | Path, val_jsonl: str | Path | None,
             tcfg: TrainConfig, accuracy_fn=None, trainer: str = "jax") -> TrainResult:
    """Train a LoRA adapter for the model at `model_path` on chat JSONL; adapters land in tcfg.out_dir."""
    if trainer not in TRAINERS:
        raise UserError(f"unknown trainer {trainer!r}; choose from {', '.join(TRAINERS)}")
    if trainer == "mlx":
        from backends.student.hf_loader import read_hf_tokenizer
        from backends.student.mlx_trainer import check_mlx_input, train_lora_mlx

        tokenizer, template, _ = read_hf_tokenizer(check_mlx_input(model_path))
    else:
        model = load_student(model_path)
        tokenizer, template = model.tokenizer, model.chat_template
    if tokenizer is None:
        raise UserError(f"{model_path}: no tokenizer found (tokenizer.json for HF directories)")
    train = encode_file(tokenizer, template, train_jsonl, tcfg.seq_len)
    val = encode_file(tokenizer, template, val_jsonl, tcfg.seq_len) if val_jsonl else []
    if trainer == "mlx":
        return train_lora_mlx(model_path, train, val, tcfg, accuracy_fn)
    return train_lora(model, train, val, tcfg, accuracy_fn)
