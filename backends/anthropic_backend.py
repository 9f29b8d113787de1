"""Claude through the official Anthropic SDK: retries, prompt caching, Message Batches, dollar costs.

Retries are the SDK's own (`max_retries`): it retries 408, 409, 429 and every 5xx including 529
"overloaded", waiting what `retry-after`/`retry-after-ms` asks and backing off exponentially
otherwise. We add no loop of our own on top, so a failing call costs at most max_retries + 1 tries.

Prompt caching: the system prompt, and any message flagged `cache_prefix`, get `cache_control`,
so the static prefix shared by many calls is billed at the cache-read price after the first one.

Message Batches (`use_batches=True`) run `complete_many` at half price. The batch id is written to
`batch_dir` under a name derived from the requests, so a killed run that issues the same bulk call
re-attaches to the batch it already paid for instead of submitting a second one (a kill in the
instant between submission and that write can still cost one duplicate batch). Entries that
error or expire are retried one by one at the full price.
"""
from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import orjson

from backends.llm import (Completion, LLMError, Message, Progress, Request, ResultHook, SamplingParams,
                          complete_sequentially, validate_messages)
from backends.pricing import Price, anthropic_price
from k1core.errors import UserError
from k1core.lazy import require

EPHEMERAL = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API's limit on cache_control blocks per request
# Body fields every SDK version takes as keyword arguments; the rest (temperature, top_p, which
# recent SDKs no longer list) travel in extra_body, so the HTTP request is the same either way.
SDK_KEYWORDS = ("model", "max_tokens", "messages", "system", "stop_sequences")


def message_request(model: str, messages: Sequence[Message], params: SamplingParams) -> dict:
    """The Messages API body: system prompt split out, cache breakpoints on the static prefix.

    Anthropic has no seed; params.seed only enters our cache key. top_p goes out only when it
    narrows sampling, since newer models refuse temperature and top_p together.
    """
    messages = validate_messages(messages)
    body: dict = {"model": model, "max_tokens": params.max_tokens, "temperature": params.temperature}
    if messages[0]["role"] == "system":
        system, messages = messages[0], messages[1:]
        body["system"] = [{"type": "text", "text": system["content"], "cache_control": EPHEMERAL}]
    chat = []
    for m in messages:
        if m.get("cache_prefix"):
            chat.append({"role": m["role"],
                         "content": [{"type": "text", "text": m["content"], "cache_control": EPHEMERAL}]})
        else:
            chat.append({"role": m["role"], "content": m["content"]})
    breakpoints = ("system" in body) + sum(bool(m.get("cache_prefix")) for m in messages)
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        raise UserError(f"at most {MAX_CACHE_BREAKPOINTS} cache breakpoints (system + cache_prefix), got {breakpoints}")
    body["messages"] = chat
    if params.top_p < 1.0:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    return body


def completion_from_message(message, price: Price, latency_s: float, batched: bool) -> Completion:
    """Our Completion from an SDK Message, costed from its usage block."""
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    text = "".join(block.text for block in message.content if block.type == "text")
    return Completion(
        text=text, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=cache_read, cache_write_tokens=cache_write, latency_s=latency_s,
        cost_usd=price.cost_usd(usage.input_tokens, usage.output_tokens, cache_read, cache_write, batched),
        model=message.model, backend="anthropic", stop_reason=message.stop_reason or "unknown",
        batched=batched,
    )


def request_id(body: dict) -> str:
    """A batch custom_id derived from the request body (the API allows [A-Za-z0-9_-]{1,64})."""
    return "r" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]


class AnthropicLLM:
    """The Anthropic Messages API as an LLM; `client` may be injected (tests pass one over a mock transport)."""

    backend = "anthropic"

    def __init__(self, model: str, *, api_key: str | None = None, max_retries: int = 6,
                 timeout_s: float = 600.0, use_batches: bool = False, batch_dir: Path | None = None,
                 poll_interval_s: float = 30.0, http_client=None, client=None):
        self.model = model
        self.price = anthropic_price(model)
        self.batch_discount = use_batches
        self.parallel = 1
        self.batch_dir = Path(batch_dir) if batch_dir else None
        self.poll_interval_s = poll_interval_s
        if use_batches and self.batch_dir is None:
            raise UserError("Message Batches need a batch_dir to persist batch ids for resuming")
        if client is None:
            anthropic = require("anthropic", "llm")
            api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
            if not api_key:
                raise UserError("ANTHROPIC_API_KEY is not set; export it, or pick a local model such as qwen0.5b")
            client = anthropic.Anthropic(api_key=api_key, max_retries=max_retries, timeout=timeout_s,
                                         http_client=http_client)
        self.client = client

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        """One Messages API call (the SDK retries transient failures)."""
        body = message_request(self.model, messages, params)
        start = time.perf_counter()
        keywords = {k: v for k, v in body.items() if k in SDK_KEYWORDS}
        extra = {k: v for k, v in body.items() if k not in SDK_KEYWORDS}
        with translated_errors():
            message = self.client.messages.create(**keywords, extra_body=extra)
        return completion_from_message(message, self.price, time.perf_counter() - start, batched=False)

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """All requests; through one Message Batch at half price when use_batches, else one by one."""
        if not self.batch_discount or not requests:
            return complete_sequentially(self, requests, progress, on_result)
        bodies = [message_request(self.model, r.messages, r.params) for r in requests]
        ids = [r.custom_id or request_id(body) for r, body in zip(requests, bodies)]
        unique = dict(zip(ids, bodies))  # identical requests share one batch entry
        start = time.perf_counter()
        batch_id = self._attach_or_submit(unique)
        self._wait(batch_id, progress, len(unique))
        results = self._collect(batch_id, time.perf_counter() - start)
        completions = []
        for i, (custom_id, request) in enumerate(zip(ids, requests)):
            if custom_id not in results:  # errored, expired or canceled: retry at the full price
                results[custom_id] = self.complete(request.messages, request.params)
            completions.append(results[custom_id])
            if on_result:
                on_result(i, completions[-1])
        return completions

    def _state_file(self, bodies: dict[str, dict]) -> Path:
        """Named by the ids and contents of the requests, so only the very same bulk call re-attaches."""
        digest = hashlib.sha256(orjson.dumps(bodies, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
        return self.batch_dir / f"anthropic-batch-{digest}.json"

    def _attach_or_submit(self, bodies: dict[str, dict]) -> str:
        """The id of the batch for exactly these requests: the persisted one, or a new submission."""
        state = self._state_file(bodies)
        if state.exists():
            return orjson.loads(state.read_bytes())["batch_id"]
        with translated_errors():
            batch = self.client.messages.batches.create(
                requests=[{"custom_id": cid, "params": body} for cid, body in bodies.items()])
        self.batch_dir.mkdir(parents=True, exist_ok=True)
        tmp = state.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"batch_id": batch.id, "model": self.model, "n": len(bodies)}))
        os.replace(tmp, state)
        return batch.id

    def _wait(self, batch_id: str, progress: Progress | None, total: int) -> None:
        while True:
            with translated_errors():
                batch = self.client.messages.batches.retrieve(batch_id)
            counts = batch.request_counts
            if progress:
                progress(total - counts.processing, total)
            if batch.processing_status == "ended":
                return
            time.sleep(self.poll_interval_s)

    def _collect(self, batch_id: str, elapsed_s: float) -> dict[str, Completion]:
        """Succeeded results by custom_id; latency is the batch's wall time seen by this run."""
        completions = {}
        with translated_errors():
            for entry in self.client.messages.batches.results(batch_id):
                if entry.result.type == "succeeded":
                    completions[entry.custom_id] = completion_from_message(
                        entry.result.message, self.price, elapsed_s, batched=True)
        return completions


@contextmanager
def translated_errors():
    """Turn SDK exceptions into UserError (fixable by the user: key, model) or LLMError (the call failed)."""
    anthropic = require("anthropic", "llm")
    try:
        yield
    except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
        raise UserError(f"Anthropic refused the API key ({exc.status_code}); check ANTHROPIC_API_KEY") from None
    except anthropic.NotFoundError as exc:
        raise UserError(f"Anthropic: not found (unknown model?): {exc.message}") from None
    except anthropic.APIStatusError as exc:
        raise LLMError(f"Anthropic API error {exc.status_code}: {exc.message}") from exc
    except anthropic.APIConnectionError as exc:
        raise LLMError(f"cannot reach the Anthropic API: {exc}") from exc
