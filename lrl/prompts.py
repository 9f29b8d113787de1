"""The prompts every LRL stage sends, versioned so a changed wording is a response-cache miss.

`TEMPLATE_VERSION` is part of every cache key and of the run manifest: bump it whenever any
text below changes. Prompts are short on purpose: the default teacher is a 0.5B model with a
small context on a CPU, where every prompt token costs time.

The baseline is zero-shot: the problem and the answer format only. The published experiment's
"baseline" prompt already spelled out the sweep-line algorithm, so its baseline measured the
algorithm, not the model; that prompt is kept as the explicit variant `published`.
"""
from __future__ import annotations

from typing import Sequence

from k1core.errors import UserError
from lrl.domain import SUCCESS_OUTCOMES, Problem, TransferDomain

TEMPLATE_VERSION = "lrl-prompts-3"

# Small models ramble until max_tokens and never reach the marked answer unless told to be brief;
# "one short line per step" is brief and is also the shape of the curriculum's worked solutions,
# so the student is never trained against its own system prompt.
SYSTEM = ("You are a careful problem solver. Work step by step, one short line per step, "
          "then give the final answer line.")

BASELINE_PROMPTS = ("zero-shot", "published")

# The algorithm the published baseline prompt gave away, per domain (only scheduling had one).
PUBLISHED_HINTS = {
    "scheduling": ("Hint: turn each meeting into a start event and an end event, sort the events by "
                   "time, sweep through them counting meetings in progress, and compare the largest "
                   "count with the number of rooms."),
}

RESPONSE_CHARS = 400  # how much of each solution a reflection shows (the 0.5B context is small)
REFLECTION_ITEMS = 6


def solve_messages(domain: TransferDomain, problem: Problem, strategy: str | None = None,
                   baseline_prompt: str = "zero-shot") -> list[dict]:
    """The chat for solving one problem, with the strategy (if any) before the problem."""
    if baseline_prompt not in BASELINE_PROMPTS:
        raise UserError(f"unknown baseline prompt {baseline_prompt!r}; choose one of {', '.join(BASELINE_PROMPTS)}")
    text = domain.render_prompt(problem, strategy)
    if baseline_prompt == "published" and strategy is None:
        if domain.name not in PUBLISHED_HINTS:
            raise UserError(f"the published baseline prompt exists only for: {', '.join(PUBLISHED_HINTS)}")
        text = f"{PUBLISHED_HINTS[domain.name]}\n\n{text}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def _shown(record: dict, label: str = "Your reasoning") -> str:
    response = record["response"].strip()
    if len(response) > RESPONSE_CHARS:
        response = response[:RESPONSE_CHARS // 2] + " ... " + response[-RESPONSE_CHARS // 2:]
    verdict = "CORRECT" if record["verdict"] in SUCCESS_OUTCOMES else f"WRONG ({record['detail'] or record['verdict']})"
    return f"Problem {record['id']}: {verdict}\n{label}: {response}"


def _problem_block(domain: TransferDomain, problem: Problem, record: dict, label: str = "Your reasoning") -> str:
    """The problem statement (without the answer-format lines), then the verdict and the response,
    and under a wrong one the checker's note where the domain has one (what decides the answer)."""
    statement = domain.render_prompt(problem).split("\n\n")[0]
    block = f"{statement}\n{_shown(record, label)}"
    if record["verdict"] not in SUCCESS_OUTCOMES and hasattr(domain, "checker_note"):
        block += "\n" + domain.checker_note(problem, record["response"])
    return block


def reflection_messages(problems: dict, records: Sequence[dict], strategy: str | None,
                        domain: TransferDomain) -> list[dict]:
    """Ask for a reflection on one batch: failures first, with the model's own reasoning.

    `problems` maps id -> Problem so each shown item carries its problem text.
    """
    failures = [r for r in records if r["verdict"] not in SUCCESS_OUTCOMES]
    successes = [r for r in records if r["verdict"] in SUCCESS_OUTCOMES]
    shown = (failures + successes)[:REFLECTION_ITEMS]
    blocks = [_problem_block(domain, problems[r["id"]], r) for r in shown]
    current = strategy.strip() if strategy else "(none yet)"
    text = (f"You solved {len(records)} problems: {len(successes)} correct, {len(failures)} wrong.\n"
            f"Your current strategy: {current}\n\n"
            "Here are your answers, mistakes first:\n\n" + "\n\n".join(blocks) + "\n\n"
            "Reflect in at most 120 words: why were the wrong answers wrong (the checker's lines are "
            "the truth), what did the right ones do, and what exact procedure computes what the "
            "checker computes?")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def student_failure_messages(problems: dict, records: Sequence[dict], strategy: str,
                             domain: TransferDomain) -> list[dict]:
    """Ask the teacher to reflect on a trained student's failures (never test items), its answers shown."""
    failures = [r for r in records if r["verdict"] not in SUCCESS_OUTCOMES]
    blocks = [_problem_block(domain, problems[r["id"]], r, "Its answer") for r in failures[:REFLECTION_ITEMS]]
    text = (f"A student model was trained on your strategy:\n{strategy.strip()}\n\n"
            f"It still failed {len(failures)} of {len(records)} practice problems. Some of them, with its answers:\n\n"
            + "\n\n".join(blocks) + "\n\n"
            "Reflect in at most 120 words: which step of the strategy did the student misapply or miss, and "
            "how must the strategy say it so that a small model follows it exactly?")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def distillation_messages(reflections: Sequence[str], strategy: str | None) -> list[dict]:
    """Ask for a new strategy from the reflections since the last distillation."""
    joined = "\n\n".join(f"Reflection {i}: {r.strip()}" for i, r in enumerate(reflections, start=1))
    current = strategy.strip() if strategy else "(none yet)"
    text = (f"Your current strategy: {current}\n\n{joined}\n\n"
            "Write an improved strategy for solving problems of this kind: at most 6 short numbered "
            "steps another model can follow exactly. Output only the steps.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
