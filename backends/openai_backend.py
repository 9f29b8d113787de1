"""Any OpenAI-compatible chat server (Ollama, llama-server, vLLM) reached by base URL over httpx.

POSTs `{base_url}/chat/completions`. Local servers are free, so calls cost 0 unless a Price is
given. Token counts are the server's `usage` block (prompt_tokens_details.cached_tokens counts as
cache reads). No retry loop: a local server that fails is reported at once as an LLMError.
"""
from __future__ import annotations

import time
from typing import Sequence

from backends.llm import (Completion, LLMError, Message, Progress, Request, SamplingParams,
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
                 price: Price = FREE, transport=None):
        httpx = require("httpx", "llm")
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

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        """One request after another."""
        return complete_sequentially(self, requests, progress)
