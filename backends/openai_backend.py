"""Any OpenAI-compatible chat server (Ollama, llama-server, vLLM) reached by base URL over httpx.

POSTs `{base_url}/chat/completions`. Local servers are free, so calls cost 0 unless a Price is
given. Token counts are the server's `usage` block (prompt_tokens_details.cached_tokens counts as
cache reads). No retry loop: a local server that fails is reported at once as an LLMError.
`complete_many` keeps up to `parallel` requests in flight at once, so a server that batches
(llama.cpp's server with several slots, vLLM, Ollama with OLLAMA_NUM_PARALLEL) works at its
full throughput.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Sequence

from backends.llm import (Completion, LLMError, Message, Progress, Request, ResultHook, SamplingParams,
                          complete_sequentially, plain_messages, validate_messages)
from backends.pricing import FREE, Price
from k1core.errors import UserError
from k1core.lazy import require


def chat_request(model: str, messages: Sequence[Message], params: SamplingParams) -> dict:
    """The /chat/completions body for one call."""
    body = {"model": model, "messages": plain_messages(validate_messages(messages)),
            "temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens,
            "seed": params.seed}
    if params.stop:
        body["stop"] = list(params.stop)
    return body


class OpenAICompatibleLLM:
    """A chat model behind an OpenAI-compatible HTTP API. `transport` lets tests inject httpx.MockTransport."""

    backend = "openai"
    batch_discount = False

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 600.0,
                 price: Price = FREE, parallel: int = 1, transport=None):
        if parallel < 1:
            raise UserError(f"parallel must be >= 1, got {parallel}")
        httpx = require("httpx", "llm")
        self.parallel = parallel
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.price = price
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers, transport=transport)
        self._httpx = httpx

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        """One POST to /chat/completions."""
        body = chat_request(self.model, messages, params)
        start = time.perf_counter()
        try:
            response = self.http.post("/chat/completions", json=body)
        except self._httpx.ConnectError:
            raise UserError(f"cannot reach an OpenAI-compatible server at {self.base_url}; is it running?") from None
        except self._httpx.HTTPError as err:
            raise LLMError(f"{self.base_url}: {type(err).__name__}: {err}") from err
        latency = time.perf_counter() - start
        if response.status_code != 200:
            raise LLMError(f"{self.base_url}/chat/completions returned {response.status_code}: {response.text[:200]}")
        return self._completion(response, latency)

    def _completion(self, response, latency_s: float) -> Completion:
        try:
            data = response.json()
            choice, usage = data["choices"][0], data.get("usage") or {}
            text = choice["message"]["content"] or ""
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            prompt_tokens, output_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise LLMError(f"{self.base_url}: malformed chat completion ({type(err).__name__}: {err})") from None
        uncached = prompt_tokens - cached
        return Completion(
            text=text, input_tokens=uncached, output_tokens=output_tokens, cache_read_tokens=cached,
            cache_write_tokens=0, latency_s=latency_s,
            cost_usd=self.price.cost_usd(uncached, output_tokens, cache_read_tokens=cached),
            model=data.get("model") or self.model, backend=self.backend,
            stop_reason=choice.get("finish_reason") or "unknown")

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """All requests, up to `parallel` in flight at once; the first failure stops new ones going out
        and is raised once those in flight have finished (and been reported to `on_result`)."""
        if self.parallel == 1 or len(requests) < 2:
            return complete_sequentially(self, requests, progress, on_result)
        results: list[Completion | None] = [None] * len(requests)
        failure, finished = None, 0
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(requests))) as pool:
            futures = {pool.submit(self.complete, r.messages, r.params): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    failure = failure or future.exception()
                    for waiting in futures:
                        waiting.cancel()  # only those not yet sent; the ones in flight still finish
                    continue
                i, finished = futures[future], finished + 1
                results[i] = future.result()
                if on_result:
                    on_result(i, results[i])
                if progress:
                    progress(finished, len(requests))
        if failure is not None:
            raise failure
        return results
