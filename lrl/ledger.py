"""The cost ledger: tokens and dollars per call and per stage, savings from the cache, and a hard budget.

Every completion that reaches a caller is recorded once: a fresh one as dollars spent (its
cost_usd already carries the batch discount), a cache replay as dollars saved. The budget is
checked before each paid call against an estimate of that call (prompt characters/4 plus a
per-message allowance, at the dearer of the input and cache-write prices, plus max_tokens of
output), so a run stops with a clear message before it would spend past `budget_usd`, not after.
The output side is a true upper bound; the prompt side is an estimate, so text that tokenizes
far denser than 4 characters a token can overshoot the cap by that call's estimation error.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

from backends.llm import Completion, Request, estimate_prompt_tokens
from backends.pricing import Price
from k1core.errors import UserError

UNSTAGED = "unstaged"


class BudgetExceeded(UserError):
    """The next paid call could take spending past --budget-usd."""


@dataclass
class Tally:
    """Running totals for one stage (or the whole run)."""

    calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usd: float = 0.0
    saved_usd: float = 0.0

    def add(self, c: Completion) -> None:
        """Count one completion: tokens always, dollars as spent or (for a cache hit) as saved."""
        self.calls += 1
        self.input_tokens += c.input_tokens
        self.output_tokens += c.output_tokens
        self.cache_read_tokens += c.cache_read_tokens
        self.cache_write_tokens += c.cache_write_tokens
        if c.cached:
            self.cache_hits += 1
            self.saved_usd += c.cost_usd
        else:
            self.usd += c.cost_usd


def estimate_call_usd(price: Price, request: Request, batched: bool = False) -> float:
    """Upper-bound dollars for one request before it is sent (see module docstring)."""
    prompt_tokens = estimate_prompt_tokens(request.messages)
    dearest_input = Price(max(price.input, price.cache_write), price.output, 0.0, 0.0)
    return dearest_input.cost_usd(prompt_tokens, request.params.max_tokens, batched=batched)


def estimate_run_usd(price: Price, n_calls: int, mean_input_tokens: float, mean_output_tokens: float, *,
                     static_prefix_tokens: float = 0.0, cache_hit_fraction: float = 0.0,
                     batched: bool = False) -> float:
    """Expected dollars for a run of `n_calls` before it starts.

    `static_prefix_tokens` of each prompt (included in mean_input_tokens) are written to the
    prompt cache once and read from it afterwards; `cache_hit_fraction` of calls are replays
    from the response cache and cost nothing.
    """
    if n_calls < 0 or not 0.0 <= cache_hit_fraction <= 1.0 or not 0.0 <= static_prefix_tokens <= mean_input_tokens:
        raise UserError("estimate needs n_calls >= 0, 0 <= cache_hit_fraction <= 1, "
                        "0 <= static_prefix_tokens <= mean_input_tokens")
    paid = n_calls * (1.0 - cache_hit_fraction)
    if paid == 0:
        return 0.0
    variable = mean_input_tokens - static_prefix_tokens
    return price.cost_usd(
        input_tokens=paid * variable, output_tokens=paid * mean_output_tokens,
        cache_write_tokens=static_prefix_tokens, cache_read_tokens=(paid - 1) * static_prefix_tokens,
        batched=batched)


class Ledger:
    """Per-call entries and per-stage tallies for one run, with an optional hard budget in USD."""

    def __init__(self, budget_usd: float | None = None):
        if budget_usd is not None and not budget_usd >= 0:
            raise UserError(f"--budget-usd must be a non-negative number of dollars, got {budget_usd!r}")
        self.budget_usd = budget_usd
        self.current_stage = UNSTAGED
        self.entries: list[dict] = []
        self.stages: dict[str, Tally] = {}
        self.total = Tally()
        self._lock = threading.Lock()  # record() may be called from worker threads of one process

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Attribute every call inside the block to stage `name` (one current stage per ledger, not per thread)."""
        previous, self.current_stage = self.current_stage, name
        try:
            yield
        finally:
            self.current_stage = previous

    def record(self, completion: Completion) -> None:
        """Count one completion under the current stage and keep its per-call entry (text left out)."""
        entry = {k: v for k, v in completion.to_dict().items() if k != "text"}
        with self._lock:
            self.stages.setdefault(self.current_stage, Tally()).add(completion)
            self.total.add(completion)
            self.entries.append({"stage": self.current_stage, **entry})

    @property
    def spent_usd(self) -> float:
        return self.total.usd

    def estimate_requests_usd(self, price: Price, requests: Sequence[Request], batched: bool = False) -> float:
        """Upper-bound dollars for sending `requests` now."""
        return sum(estimate_call_usd(price, r, batched) for r in requests)

    def check_budget(self, next_usd: float) -> None:
        """BudgetExceeded if spending `next_usd` more could pass the budget."""
        if self.budget_usd is not None and self.spent_usd + next_usd > self.budget_usd:
            raise BudgetExceeded(
                f"budget ${self.budget_usd:.4f} would be exceeded: spent ${self.spent_usd:.4f}, "
                f"next call(s) estimated at up to ${next_usd:.4f} (stage {self.current_stage}); "
                "raise --budget-usd or resume later (cached responses are free)")

    def summary(self) -> dict:
        """JSON-ready totals: the budget, the whole run, and each stage."""
        return {"budget_usd": self.budget_usd, "total": asdict(self.total),
                "stages": {name: asdict(t) for name, t in self.stages.items()}}

    def to_dict(self) -> dict:
        """Summary plus every per-call entry; `from_dict` restores it when a killed run resumes."""
        return {**self.summary(), "entries": self.entries}

    @classmethod
    def from_dict(cls, data: dict) -> "Ledger":
        """A ledger carrying on from a saved one (so the budget counts what earlier processes spent)."""
        ledger = cls(data["budget_usd"])
        ledger.total = Tally(**data["total"])
        ledger.stages = {name: Tally(**t) for name, t in data["stages"].items()}
        ledger.entries = list(data["entries"])
        return ledger
