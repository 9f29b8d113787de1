"""`k1 generate`: rebuild a trained model from its checkpoint and continue a prompt."""
from __future__ import annotations

from pathlib import Path

from k1core import registry
from k1core.checkpoint import load_checkpoint
from k1core.config import make_config
from k1core.corpus import decode, encode
from k1core.errors import UserError


def find_checkpoint(path: str | Path) -> Path:
    """`path` itself, DIR/checkpoint.npz, or the single DIR/<model>/checkpoint.npz of a run folder."""
    p = Path(path)
    if p.is_file():
        return p
    if (p / "checkpoint.npz").is_file():
        return p / "checkpoint.npz"
    found = sorted(p.glob("*/checkpoint.npz")) if p.is_dir() else []
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(str(f.parent) for f in found)
        raise UserError(f"{p} holds several models; pass one of: {names}")
    raise UserError(f"no checkpoint at {p}")


def load_trained_model(path: str | Path, load_compute=None):
    """The model saved at `path`, with its weights, ready to generate; `load_compute(name)` gives the
    backend the run trained on (None: NumPy)."""
    state = load_checkpoint(find_checkpoint(path))
    try:
        name, cfg = state["name"], make_config(state["config"])
        model = registry.build(name, cfg, None if load_compute is None else load_compute(cfg.backend))
        model.load_state_dict(state["model"])
    except KeyError as err:
        raise UserError(f"checkpoint {path} lacks {err}; was it written by k1 train?") from None
    return model


def generate_text(path: str | Path, prompt: str, max_new_tokens: int, temperature: float,
                  top_k: int | None, seed: int, load_compute=None) -> str:
    """The prompt's continuation (without the prompt) sampled from the model at `path`."""
    if max_new_tokens < 0:
        raise UserError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    model = load_trained_model(path, load_compute)
    ids = encode(prompt)
    out = model.generate(ids, max_new_tokens, temperature, top_k, seed)
    return decode(out[len(ids):])
