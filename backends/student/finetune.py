"""End-to-end LoRA fine-tuning from files: a base model path and chat JSONL in, PEFT adapter out."""
from __future__ import annotations

from pathlib import Path

from backends.student.base_model import BaseModel
from backends.student.chat_data import encode_chat, read_chat_jsonl
from backends.student.jax_trainer import TrainConfig, TrainResult, train_lora
from k1core.errors import UserError


def load_student(path: str | Path) -> BaseModel:
    """A base model from a .gguf file or a Hugging Face directory."""
    path = Path(path)
    if path.is_dir():
        from backends.student.hf_loader import load_hf_dir

        return load_hf_dir(path)
    from backends.student.gguf_loader import load_gguf

    return load_gguf(path)


def finetune(model_path: str | Path, train_jsonl: str | Path, val_jsonl: str | Path | None,
             tcfg: TrainConfig, accuracy_fn=None) -> TrainResult:
    """Train a LoRA adapter for the model at `model_path` on chat JSONL; adapters land in tcfg.out_dir."""
    model = load_student(model_path)
    if model.tokenizer is None:
        raise UserError(f"{model_path}: no tokenizer found (tokenizer.json for HF directories)")

    def encode(path):
        return [encode_chat(model.tokenizer, model.chat_template, msgs, tcfg.seq_len) for msgs in read_chat_jsonl(path)]

    return train_lora(model, encode(train_jsonl), encode(val_jsonl) if val_jsonl else [], tcfg, accuracy_fn)
