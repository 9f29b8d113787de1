"""The LRL stages, one module each, found by listing this package: a module with a `STAGE` is a stage
(docs/lrl.md describes each)."""
from __future__ import annotations

import functools
import importlib
import pkgutil

from k1core.errors import UserError
from lrl.stage import Stage, stage_order


@functools.cache
def all_stages() -> tuple[Stage, ...]:
    """Every stage, in id order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        stage = getattr(importlib.import_module(f"{__name__}.{info.name}"), "STAGE", None)
        if isinstance(stage, Stage):
            found.append(stage)
    return tuple(sorted(found, key=lambda s: stage_order(s.id)))


def stage_ids(default_only: bool = False) -> tuple[str, ...]:
    """The ids of every stage (or of the default run's), in order."""
    return tuple(s.id for s in all_stages() if s.default or not default_only)


def get_stage(stage_id: str) -> Stage:
    """The stage with this id; UserError listing the ids if there is none."""
    for stage in all_stages():
        if stage.id == stage_id:
            return stage
    raise UserError(f"unknown stage {stage_id!r}; stages are {', '.join(stage_ids())}")
