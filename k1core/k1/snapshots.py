"""Safe structural change: snapshot -> apply -> validate on a validation batch -> keep or roll back.

A snapshot copies the flat parameters, the optimizer moments and step, and the structure state
(tree arrays, trust, usage counters), so a rollback restores the model bit for bit.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable


@dataclass
class Snapshot:
    flat: object
    m: object
    v: object
    t: int
    structure: dict


def take_snapshot(model) -> Snapshot:
    """Copy of everything a structural op may change."""
    return Snapshot(model.params.flat.copy(), model.opt.m.copy(), model.opt.v.copy(), model.opt.t,
                    copy.deepcopy(model.structure_state()))


def restore_snapshot(model, snap: Snapshot) -> None:
    """Put the model back exactly as it was when `snap` was taken."""
    model.params.flat[...] = snap.flat
    model.opt.m[...] = snap.m
    model.opt.v[...] = snap.v
    model.opt.t = snap.t
    model.load_structure_state(copy.deepcopy(snap.structure))


def validated_change(model, op: str, info: dict, apply: Callable[[], object],
                     val_loss: Callable[[], float], tolerance: float, step: int) -> list[dict]:
    """Apply a structural op under a snapshot; keep it if the validation loss rose by at most
    `tolerance` nats, else roll back. Returns the events (the op, plus a rollback if undone)."""
    before = val_loss()
    snap = take_snapshot(model)
    apply()
    after = val_loss()
    kept = bool(after <= before + tolerance)
    event = {"step": step, "type": op, "val_before": before, "val_after": after, "kept": kept,
             **{k: v for k, v in info.items() if isinstance(v, (int, float, str))}}
    events = [event]
    if not kept:
        restore_snapshot(model, snap)
        events.append({"step": step, "type": "rollback", "op": op, "val_before": before, "val_after": after,
                       "val_restored": val_loss()})
    return events
