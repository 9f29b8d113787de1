"""The one place a student's chat is built, so training and evaluation prompt it identically.

A student trained on `student_messages(..., strategy)` is evaluated on exactly those messages
(the chat template is applied by the runtime from the model file, never by hand), and a student
trained without the strategy is evaluated without it. There are two prompt formats, named in
PROMPT_FORMATS: "zero-shot" (the problem alone) and "strategy" (the strategy text above it); a
curriculum may train on either or on both. `strategy_steps` turns a strategy file into the
numbered steps the domain's worked solutions follow.
"""
from __future__ import annotations

import re
from pathlib import Path

from k1core.errors import UserError
from lrl.domain import Problem, TransferDomain
from lrl.prompts import solve_messages

STEP_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(?P<step>\S.*)$")
PROMPT_FORMATS = ("zero-shot", "strategy")  # without, then with the strategy text in the student's prompt
TRAINING_PROMPTS = {"both": PROMPT_FORMATS, "zero-shot": ("zero-shot",), "strategy": ("strategy",)}


def prompt_strategy(prompt_format: str, strategy: str | None) -> str | None:
    """The strategy text a prompt format puts in the student's prompt (None for zero-shot)."""
    if prompt_format not in PROMPT_FORMATS:
        raise UserError(f"unknown student prompt format {prompt_format!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    return strategy if prompt_format == "strategy" else None


def student_messages(domain: TransferDomain, problem: Problem, strategy: str | None = None) -> list[dict]:
    """The chat a student sees for `problem` (the stages' zero-shot solve prompt), strategy in it or not.

    It is the very prompt stage 0 gives the base student, so the base and the trained student are
    compared on identical inputs.
    """
    return solve_messages(domain, problem, strategy)


def training_chat(domain: TransferDomain, problem: Problem, target: str, strategy: str | None = None) -> dict:
    """One curriculum line: the student's prompt then the target as the last assistant message."""
    return {"messages": student_messages(domain, problem, strategy) + [{"role": "assistant", "content": target}]}


def strategy_steps(strategy: str) -> list[str]:
    """The numbered or bulleted lines of a strategy, in order; the whole text as one step if it has none."""
    steps = [m["step"].strip() for line in strategy.splitlines() if (m := STEP_LINE.match(line))]
    return steps or [" ".join(strategy.split())]


def read_strategy(path: str | Path | None) -> str | None:
    """A strategy file's text (None for no file); UserError when it is missing or empty."""
    if path is None:
        return None
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such strategy file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read strategy ({err})") from None
    if not text.strip():
        raise UserError(f"{path}: the strategy file is empty")
    return text.strip()
