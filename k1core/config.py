"""`k1 train` configuration: one frozen dataclass, loaded from flags or a TOML/JSON file and validated
once here (unknown keys and out-of-range values are rejected with the key's name)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from k1core.errors import UserError
from k1core.k1 import RUN_FIELDS
from k1core.layers import check_heads
from k1core.k1.config import ALIASES, K1Config, config_from_mapping
from k1core.optim import AdamWConfig

MODEL_CHOICES = ("gpt", "k1", "k1-notree", "both", "all")
BUDGETS = ("steps", "gpt")
CLOCKS = ("wall", "cpu")


def _opt(default, help: str, lo=None, hi=None, lo_open=False, hi_open=False, choices=None, kind=None):
    """A config field with its help text and the range a value must lie in (`kind`: the type of a
    field whose default is None)."""
    return field(default=default, metadata=dict(help=help, lo=lo, hi=hi, lo_open=lo_open,
                                                hi_open=hi_open, choices=choices, kind=kind))


@dataclass(frozen=True)
class TrainConfig:
    model: str = _opt("all", "which model to train: gpt, k1, k1-notree (K-1 without its tree), "
                      "both (gpt and k1) or all three, on the same data and seed",
                      choices=MODEL_CHOICES)
    steps: int = _opt(2000, "training steps: the GPT's, and every model's under --budget steps", lo=1, hi=10**9)
    d_model: int = _opt(128, "embedding width", lo=1, hi=8192)
    n_layers: int = _opt(4, "transformer blocks (GPT only; K-1 has one attention mixer)", lo=1, hi=256)
    n_heads: int = _opt(4, "attention heads (must divide d_model)", lo=1, hi=256)
    context: int = _opt(64, "context length in bytes", lo=1, hi=8192)
    batch_size: int = _opt(12, "sequences per step", lo=1, hi=65536)
    budget: str = _opt("gpt", "training length: 'steps' (every model trains --steps steps) or 'gpt' (the GPT "
                       "trains --steps steps, every other model the steps that cost as much, its cost per step "
                       "measured against the GPT's under the same load: equal time)",
                       choices=BUDGETS)
    budget_seconds: float | None = _opt(None, "train every model for this many seconds (overrides --budget)",
                                        lo=0.0, lo_open=True, kind=float)
    clock: str = _opt("wall", "how training time is counted: 'wall' clock, or 'cpu' seconds of this process "
                      "(steadier on a machine shared with other jobs; with one thread they agree)",
                      choices=CLOCKS)
    lr: float = _opt(1e-3, "peak learning rate (GPT only; K-1: --k1 lr=...)", lo=0.0, lo_open=True)
    min_lr: float = _opt(1e-4, "learning rate at the end of the cosine decay (GPT only)", lo=0.0)
    warmup_steps: int = _opt(100, "linear warmup steps (GPT only)", lo=0, hi=10**9)
    weight_decay: float = _opt(0.1, "AdamW decoupled weight decay on matrices (GPT only)", lo=0.0)
    beta2: float = _opt(0.99, "AdamW second-moment decay (GPT only)", lo=0.0, hi=1.0, hi_open=True)
    grad_clip: float = _opt(1.0, "global gradient-norm clip, 0 disables (GPT only)", lo=0.0)
    dropout: float = _opt(0.0, "dropout probability (GPT only)", lo=0.0, hi=1.0, hi_open=True)
    tie_weights: bool = _opt(True, "share the token embedding with the output head (GPT only)")
    backend: str = _opt("numpy", "compute backend by name, a module of backends/compute/ (numpy is the "
                        "reference; an unknown name lists the others)")
    seed: int = _opt(1337, "seed for initialisation and batch sampling", lo=0, hi=2**32 - 2)
    data: str | None = _opt(None, "training file (any bytes); default: the embedded tiny-Shakespeare")
    out: str = _opt("runs/latest", "output folder for results.json, checkpoints and plots")
    eval_interval: int = _opt(100, "steps between validation evaluations", lo=1, hi=10**9)
    eval_batches: int = _opt(20, "fixed batches per evaluation", lo=1, hi=100_000)
    checkpoint_interval: int = _opt(250, "steps between checkpoints (0: only at the end)", lo=0, hi=10**9)
    sample_length: int = _opt(200, "bytes generated as a sample after training", lo=0, hi=1_000_000)
    k1: dict = field(default_factory=dict, metadata=dict(
        help="K-1 settings (any K1Config field but the run-level ones above), a [k1] table in the config file"))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name != "k1":
                _check_field(f, getattr(self, f.name))
        check_k1_section(self.k1)
        if self.min_lr > self.lr:
            raise UserError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        check_heads(self.d_model, self.n_heads)

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
FIELDS_TYPES = {n: f.metadata.get("kind") or (str if f.default is None else type(f.default))
                for n, f in FIELDS.items() if n != "k1"}


def check_k1_section(values) -> None:
    """The [k1] table: a mapping of K1Config keys (not the run-level ones), each validated by K1Config."""
    if not isinstance(values, dict):
        raise UserError(f"k1 must be a table of K-1 settings, got {values!r}")
    for original in values:
        key = ALIASES.get(original, original)
        if key in RUN_FIELDS.values() or key in RUN_FIELDS:  # the run sets these for every model
            run_key = next(k for k, v in RUN_FIELDS.items() if key in (k, v))
            raise UserError(f"k1.{key} is set by the run's {run_key}; set {run_key} instead")
        if key == "vocab_size" and values[original] != K1Config.vocab_size:  # the corpus is read as bytes
            raise UserError(f"k1.vocab_size must be {K1Config.vocab_size}: k1 train reads its corpus as bytes")
    config_from_mapping(dataclasses.asdict(K1Config()) | values)


def parse_assignment(text: str) -> tuple[str, object]:
    """'key=value' from the command line; the value read as TOML would read it (a bare word is a string)."""
    import tomllib

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().replace("-", "_"), value


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
            if isinstance(values.get("train"), dict):  # a [train] table, with [k1] beside it
                values = values["train"] | ({"k1": values["k1"]} if "k1" in values else {})
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
            if name == "k1":
                if not isinstance(value, dict):
                    raise UserError(f"k1 must be a table of K-1 settings, got {value!r}")
                merged["k1"] = merged.get("k1", {}) | {str(k).replace("-", "_"): v for k, v in value.items()}
                continue
            if FIELDS_TYPES[name] is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            merged[name] = value
    return TrainConfig(**merged)


def config_help(name: str) -> str:
    """Help text of a field, for the CLI."""
    return FIELDS[name].metadata["help"]
