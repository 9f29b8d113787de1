"""A deterministic, rule-based test double for the LLM protocol, so the whole stage flow runs in
seconds. Its answers come from rules below on the prompt alone (never on earlier calls, so a resumed process answers alike), not from a model: nothing it produces is a model result.

Rules: a scheduling problem is answered correctly when a strategy mentioning a sweep is in the
prompt, otherwise "YES" (or "NO" when the meeting list is long, or no marked answer at all when the first
meeting starts at a multiple of 3, so there are mistakes and parse failures to reflect on). A distillation of five reflections writes a useless strategy, one of fewer a sweep-line strategy, so one
candidate is rejected on validation and one adopted. Every call is counted; `die_at_call=N` kills
the process with SIGKILL when call N arrives (before answering it), to test resuming.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
from pathlib import Path

from backends.llm import Completion, complete_sequentially
from backends.pricing import Price

MEETING = re.compile(r"\[(\d+)-(\d+)\]")
ROOMS = re.compile(r"Available rooms: (\d+)")


def peak(meetings):
    events = sorted([(s, 1) for s, _ in meetings] + [(e, -1) for _, e in meetings])
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


class RulesLLM:
    backend = "rules"
    batch_discount = False
    parallel = 1

    def __init__(self, model: str = "rules-v1", counter: Path | None = None, die_at_call: int | None = None,
                 price: Price = Price(1.0, 2.0, 0.0, 0.0)):
        self.model, self.counter, self.die_at_call, self.price = model, counter, die_at_call, price
        self.calls = 0

    def _count(self, prompt: str, max_tokens: int | None) -> None:
        """Count the call; the counter file names it by its prompt and token limit (two calls differ in either)."""
        self.calls += 1
        if self.die_at_call is not None and self.calls == self.die_at_call:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.counter is not None:
            with open(self.counter, "a") as f:
                f.write(hashlib.sha256(f"{prompt}|{max_tokens}".encode()).hexdigest()[:16] + "\n")

    def answer(self, prompt: str) -> str:
        if "Write an improved strategy" in prompt:
            if "Reflection 5:" not in prompt:
                return "1. Make start and end events.\n2. Sort them and sweep, counting overlaps.\n3. Compare the peak with the rooms."
            return "1. Always answer YES."
        if "Reflect in at most" in prompt:
            wrong = prompt.count("WRONG")
            return f"I got {wrong} wrong. I should sweep through sorted start and end events and count overlaps."
        meetings = [(int(s), int(e)) for s, e in MEETING.findall(prompt.split("SCHEDULING PROBLEM:")[-1])]
        if not meetings:  # times it cannot read (HH:MM, the minutes variant)
            return "These times are hard to compare, so no.\nANSWER: NO"
        rooms = int(ROOMS.search(prompt).group(1))
        if "STRATEGY:" in prompt and "sweep" in prompt.split("SCHEDULING PROBLEM:")[0]:
            verdict = "YES" if peak(meetings) <= rooms else "NO"
            return f"Sweeping the events, the peak is {peak(meetings)}.\nANSWER: {verdict}"
        if len(meetings) >= 5:
            return "Too many meetings, I guess no.\nANSWER: NO"
        if meetings[0][0] % 3 == 0:
            return "I am not sure."  # a parse failure: no marked answer
        return "Looks fine.\nANSWER: YES"

    def complete(self, messages, params=None):
        prompt = "\n".join(m["content"] for m in messages)
        self._count(prompt, params.max_tokens if params else None)
        text = self.answer(prompt)
        tokens_in, tokens_out = len(prompt) // 4, len(text) // 4
        return Completion(text=text, input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=0,
                          cache_write_tokens=0, latency_s=0.0, cost_usd=self.price.cost_usd(tokens_in, tokens_out),
                          model=self.model, backend=self.backend, stop_reason="end_turn")

    def complete_many(self, requests, progress=None, on_result=None):
        return complete_sequentially(self, requests, progress, on_result)
