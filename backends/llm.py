"""The one seam every LLM runtime plugs into: chat messages in; text, usage, latency and cost out.

Messages are plain dicts `{"role": "system" | "user" | "assistant", "content": str}`. A message
may also carry `"cache_prefix": True`, meaning "everything up to and including me is the static
prompt prefix": backends with prompt caching (Anthropic) place a cache breakpoint there, the
others ignore it. The system prompt is always treated as static.

Implementations: anthropic_backend, llamacpp_backend, openai_backend, mlx_backend; `spec.build_llm`
picks one from a spec string. Wrappers with the same protocol add caching and budgets
(`lrl.cache.CachedLLM`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from backends.pricing import Price
from k1core.errors import UserError

Message = dict  # {"role": str, "content": str, optional "cache_prefix": bool}
Progress = Callable[[int, int], None]  # progress(done, total), called after each finished request
ResultHook = Callable[[int, "Completion"], None]  # on_result(request index, completion), as each one finishes
ROLES = ("system", "user", "assistant")


class LLMError(Exception):
    """A call that failed at the backend (HTTP error, server refused, runtime failure); never cached."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. temperature 0 is greedy; seed makes sampled runs repeatable where supported."""

    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        if not (isinstance(self.temperature, (int, float)) and 0.0 <= self.temperature <= 2.0):
            raise UserError(f"temperature must be in [0, 2], got {self.temperature!r}")
        if not (isinstance(self.max_tokens, int) and self.max_tokens >= 1):
            raise UserError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not isinstance(self.seed, int):
            raise UserError(f"seed must be an integer, got {self.seed!r}")
        if not (isinstance(self.top_p, (int, float)) and 0.0 < self.top_p <= 1.0):
            raise UserError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise UserError(f"stop must be a tuple of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def to_dict(self) -> dict:
        """Every parameter, JSON-ready (part of the response-cache key)."""
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class Completion:
    """One response. cost_usd is what producing it cost at the backend's prices (0 for local runtimes);
    `cached` marks a replay from the response cache, which cost nothing this time."""

    text: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency_s: float
    cost_usd: float
    model: str
    backend: str
    stop_reason: str
    batched: bool = False
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Completion":
        return cls(**data)


@dataclass(frozen=True)
class Request:
    """One entry of a bulk call. custom_id names it in a Message Batch (resumable runs re-attach by it)."""

    messages: Sequence[Message]
    params: SamplingParams = field(default_factory=SamplingParams)
    custom_id: str | None = None


class LLM(Protocol):
    """A chat model. `backend` and `model` identify it in caches and ledgers; `price` costs its calls."""

    backend: str
    model: str
    price: Price
    batch_discount: bool  # True when complete_many runs at the batch price (Anthropic Message Batches)
    parallel: int  # how many requests complete_many works on at once (1: one after another)

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        """One chat completion."""

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """Completions for many requests, in request order; `on_result` hears of each as it finishes."""


def validate_messages(messages: Iterable[Message]) -> list[Message]:
    """The messages as a list, or UserError naming what is wrong (roles, contents, order)."""
    messages = list(messages)
    if not messages:
        raise UserError("a chat needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise UserError(f"message {i} must be {{'role': one of {ROLES}, 'content': str}}, got {m!r}")
        if m["role"] == "system" and i != 0:
            raise UserError(f"message {i}: only the first message may have role 'system'")
    if messages[-1]["role"] != "user":
        raise UserError("the last message must have role 'user'")
    return messages


def plain_messages(messages: Sequence[Message]) -> list[dict]:
    """Messages with only role and content, for runtimes that know nothing of cache breakpoints."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def complete_sequentially(llm: LLM, requests: Sequence[Request], progress: Progress | None = None,
                          on_result: ResultHook | None = None) -> list[Completion]:
    """The bulk call for runtimes without a batch API: one request after another, reporting progress."""
    results = []
    for done, request in enumerate(requests, start=1):
        results.append(llm.complete(request.messages, request.params))
        if on_result:
            on_result(done - 1, results[-1])
        if progress:
            progress(done, len(requests))
    return results


MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators a chat template adds around each message


def estimate_tokens(text: str) -> int:
    """Rough token count (~4 characters a token) for budgets made before a tokenizer has seen the text."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Rough prompt size of a chat: its texts plus a per-message allowance for the template."""
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)
