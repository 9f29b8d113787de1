"""`k1 train` configuration: one frozen dataclass, loaded from flags or a TOML/JSON file and validated
once here (unknown keys and out-of-range values are rejected with the key's name)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from k1core.errors import UserError
from k1core.optim import AdamWConfig

BACKENDS = ("numpy", "numba", "jax")  # numba and jax need their extras (backends/compute.py)
MODEL_CHOICES = ("gpt", "k1", "k1-notree", "both", "all")


def _opt(default, help: str, lo=None, hi=None, lo_open=False, hi_open=False, choices=None):
    """A config field with its help text and the range a value must lie in."""
    return field(default=default, metadata=dict(help=help, lo=lo, hi=hi, lo_open=lo_open,
                                                hi_open=hi_open, choices=choices))


@dataclass(frozen=True)
class TrainConfig:
    model: str = _opt("all", "which model to train: gpt, k1, k1-notree (K-1 without its tree), "
                      "both (gpt and k1) or all three, on the same data and seed",
                      choices=MODEL_CHOICES)
    steps: int = _opt(2000, "training steps per model", lo=1, hi=10**9)
    d_model: int = _opt(128, "embedding width", lo=1, hi=8192)
    n_layers: int = _opt(4, "transformer blocks", lo=1, hi=256)
    n_heads: int = _opt(4, "attention heads (must divide d_model)", lo=1, hi=256)
    context: int = _opt(64, "context length in bytes", lo=1, hi=8192)
    batch_size: int = _opt(12, "sequences per step", lo=1, hi=65536)
    lr: float = _opt(1e-3, "peak learning rate", lo=0.0, lo_open=True)
    min_lr: float = _opt(1e-4, "learning rate at the end of the cosine decay", lo=0.0)
    warmup_steps: int = _opt(100, "linear warmup steps", lo=0, hi=10**9)
    weight_decay: float = _opt(0.1, "AdamW decoupled weight decay on matrices", lo=0.0)
    beta2: float = _opt(0.99, "AdamW second-moment decay", lo=0.0, hi=1.0, hi_open=True)
    grad_clip: float = _opt(1.0, "global gradient-norm clip (0 disables)", lo=0.0)
    dropout: float = _opt(0.0, "dropout probability", lo=0.0, hi=1.0, hi_open=True)
    tie_weights: bool = _opt(True, "share the token embedding with the output head")
    backend: str = _opt("numpy", "compute backend: numpy (reference), numba or jax", choices=BACKENDS)
    seed: int = _opt(1337, "seed for initialisation and batch sampling", lo=0, hi=2**32 - 2)
    data: str | None = _opt(None, "training file (any bytes); default: the embedded tiny-Shakespeare")
    out: str = _opt("runs/latest", "output folder for results.json, checkpoints and plots")
    eval_interval: int = _opt(100, "steps between validation evaluations", lo=1, hi=10**9)
    eval_batches: int = _opt(20, "fixed batches per evaluation", lo=1, hi=100_000)
    checkpoint_interval: int = _opt(250, "steps between checkpoints (0: only at the end)", lo=0, hi=10**9)
    sample_length: int = _opt(200, "bytes generated as a sample after training", lo=0, hi=1_000_000)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        if self.min_lr > self.lr:
            raise UserError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if self.d_model % self.n_heads:
            raise UserError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def adamw(self) -> AdamWConfig:
        """The optimizer and schedule every model uses under this config."""
        return AdamWConfig(lr=self.lr, min_lr=self.min_lr, warmup_steps=self.warmup_steps,
                           total_steps=self.steps, beta2=self.beta2, weight_decay=self.weight_decay,
                           grad_clip=self.grad_clip)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _check_field(f: dataclasses.Field, value) -> None:
    """Type and range of one field; the message names the key."""
    m, kind = f.metadata, FIELDS_TYPES[f.name]
    if value is None and f.default is None:
        return
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise UserError(f"{f.name} must be {KIND_NAMES[kind]}, got {value!r}")
    if m["choices"] is not None and value not in m["choices"]:
        raise UserError(f"{f.name} must be one of {', '.join(m['choices'])}, got {value!r}")
    lo, hi = m["lo"], m["hi"]
    if lo is not None and (value <= lo if m["lo_open"] else value < lo):
        raise UserError(f"{f.name} must be {'>' if m['lo_open'] else '>='} {lo}, got {value}")
    if hi is not None and (value >= hi if m["hi_open"] else value > hi):
        raise UserError(f"{f.name} must be {'<' if m['hi_open'] else '<='} {hi}, got {value}")


KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
FIELDS_TYPES = {n: str if f.default is None else type(f.default) for n, f in FIELDS.items()}


def read_config_file(path: str | Path) -> dict:
    """Key/value mapping from a .toml or .json file (a [train] table in TOML is also accepted)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    raw = p.read_bytes()
    try:
        if p.suffix == ".json":
            values = orjson.loads(raw)
        elif p.suffix == ".toml":
            import tomllib  # Python 3.11+

            values = tomllib.loads(raw.decode("utf-8"))
            values = values.get("train", values) if isinstance(values.get("train"), dict) else values
        else:
            raise UserError(f"config file must end in .toml or .json: {p}")
    except (orjson.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"cannot parse config file {p}: {str(err).splitlines()[0]}") from None
    except ImportError:
        raise UserError("TOML config files need Python 3.11+; use a .json file") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {p} must hold a table of key = value pairs")
    return values


def make_config(*layers: dict) -> TrainConfig:
    """Defaults overridden by each mapping in turn (file, then flags); keys may use - or _."""
    merged: dict = {}
    for layer in layers:
        for key, value in layer.items():
            name = str(key).replace("-", "_")
            if name not in FIELDS:
                raise UserError(f"unknown config key: {key}")
            if FIELDS_TYPES[name] is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            merged[name] = value
    return TrainConfig(**merged)


def config_help(name: str) -> str:
    """Help text of a field, for the CLI."""
    return FIELDS[name].metadata["help"]
