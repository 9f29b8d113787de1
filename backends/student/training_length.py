"""How long a LoRA run trains: the steps given, or the steps that take E passes (epochs) over the data.

An optimizer step takes batch_size x grad_accum rows of the trainer's row stream. A JAX row packs
as many examples as fit in seq_len tokens, an MLX row is one example, so the same steps cover
different epochs. The count walks the trainer's own stream (same shuffles, same packing), so it
counts what trains, and a fixed step count is reported in epochs too: a curriculum that grows under
fixed steps would otherwise train on part of itself without a word.

Why one epoch by default: the only stage-4 measurement is the pilot (scheduling/balanced, qwen0.5b,
180 training chats packed into 138 rows of 512 tokens per epoch): its 100 steps took 0.75 epochs and
its exported student scored 72% on the gate items. One epoch is the least that trains on every chat,
and the nearest to that measured point (docs/lrl.md, "How long the LoRA trains").
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Iterable

from k1core.errors import UserError

DEFAULT_EPOCHS = 1.0


@dataclass(frozen=True)
class TrainingLength:
    """Steps, and what they take of the training examples (each example counted once per pass)."""

    steps: int
    rows_per_step: int  # stream rows one optimizer step takes (batch_size x grad_accum)
    examples: int  # training examples (chats of the training file)
    examples_trained: int  # examples in the rows the steps take, repeats counted
    epochs_asked: float | None  # None when the steps were given

    @property
    def epochs(self) -> float:
        return self.examples_trained / self.examples

    def describe(self) -> str:
        """One line: steps, rows per step, and the epochs they make of the training examples."""
        asked = f" ({self.epochs_asked:g} asked)" if self.epochs_asked is not None else ""
        return (f"{self.steps} step(s) x {self.rows_per_step} row(s) = {self.examples_trained} examples: "
                f"{self.epochs:.2f} epochs{asked} of the {self.examples} training examples")

    def shortfall(self) -> str | None:
        """One line when the steps train on part of the examples only; None otherwise."""
        if self.examples_trained >= self.examples:
            return None
        return (f"under one epoch: {self.steps} step(s) train on {self.examples_trained} of the {self.examples} "
                f"training examples; {self.examples - self.examples_trained} are never seen (give more steps, "
                "or epochs instead of steps)")

    def to_dict(self) -> dict:
        return {**asdict(self), "epochs": round(self.epochs, 4)}


def measure(rows: Iterable[list], examples: int, rows_per_step: int, steps: int | None = None,
            epochs: float | None = None) -> TrainingLength:
    """The length of a run over `examples` examples streamed as `rows` (each row the list of examples it
    holds, endless, in training order): `steps` when given, else the fewest steps whose rows hold
    `epochs` passes over the examples."""
    rows, asked = iter(rows), epochs if steps is None else None
    if steps is None:
        if epochs is None:
            raise UserError("give the steps or the epochs to train for")
        wanted = math.ceil(round(epochs * examples, 6))  # 0.1 x 30 is 3, not 3.0000000000000004
        seen = taken = 0
        while seen < wanted:
            seen, taken = seen + len(next(rows)), taken + 1
        steps = max(1, math.ceil(taken / rows_per_step))
        trained = seen + sum(len(row) for row in itertools.islice(rows, steps * rows_per_step - taken))
    else:
        trained = sum(len(row) for row in itertools.islice(rows, steps * rows_per_step))
    return TrainingLength(steps, rows_per_step, examples, trained, asked)


def steps_or_epochs(steps: int | None, epochs: float | None, names: tuple[str, str]) -> tuple[int | None, float | None]:
    """(steps, None) when steps are given, else (None, epochs, DEFAULT_EPOCHS when absent); both given, or a
    value that is not positive, is a UserError naming the flag (`names`: the two flags)."""
    if steps is not None and epochs is not None:
        raise UserError(f"give {names[0]} or {names[1]}, not both: steps fix the length, epochs derive it "
                        "from the data")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise UserError(f"{names[0]} must be a positive integer, got {steps!r}")
        return steps, None
    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not 0 < epochs < math.inf:
        raise UserError(f"{names[1]} must be a positive number, got {epochs!r}")
    return None, float(epochs)
