"""Models by name: `k1 train --model NAME` looks a builder up here.

A model module registers itself on import (`register("gpt", build_gpt)`); `KNOWN` says which
module provides each name, so the registry imports only what a run asks for and a model that is
not part of this build gives one clear error.
"""
from __future__ import annotations

import importlib
from typing import Callable

from k1core.errors import UserError

KNOWN = {"gpt": "k1core.gpt_builder", "k1": "k1core.k1", "k1-notree": "k1core.k1"}
_BUILDERS: dict[str, Callable] = {}


def register(name: str, builder: Callable) -> None:
    """Make `builder(config) -> LanguageModel` available as `name`."""
    _BUILDERS[name] = builder


def _load(name: str) -> bool:
    """Import the module that registers `name`; False when that module is not part of this build."""
    if name not in _BUILDERS and name in KNOWN:
        try:
            importlib.import_module(KNOWN[name])
        except ModuleNotFoundError as err:
            if err.name is None or not KNOWN[name].startswith(err.name):
                raise  # a real import error inside the model's own code
    return name in _BUILDERS


def available() -> list[str]:
    """Names whose modules import and register."""
    return [name for name in dict.fromkeys([*KNOWN, *_BUILDERS]) if _load(name)]


def builder(name: str) -> Callable:
    """The builder for `name`, importing its module on first use."""
    if not _load(name):
        raise UserError(f"model '{name}' is not available in this build "
                        f"(available: {', '.join(available()) or 'none'})")
    return _BUILDERS[name]


def build(name: str, config, compute=None):
    """A fresh model `name` for a TrainConfig, on the compute backend `compute` (NumPy if None)."""
    return builder(name)(config) if compute is None else builder(name)(config, compute)
