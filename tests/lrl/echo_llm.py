"""A deterministic in-memory LLM for cache and ledger tests: echoes the prompt, counts calls, can fail on cue."""
import math

from backends.llm import Completion, LLMError, complete_sequentially
from backends.pricing import Price

PRICE = Price(input=1.0, output=2.0, cache_write=1.25, cache_read=0.1)  # $ per MTok


class ScriptedLLM:
    backend = "scripted"
    model = "echo-1"
    price = PRICE

    def __init__(self, fail_on: str | None = None, batch_discount: bool = False, parallel: int = 1):
        self.calls, self.bulk_calls, self.fail_on, self.batch_discount = [], [], fail_on, batch_discount
        self.parallel = parallel

    def complete(self, messages, params):
        prompt = messages[-1]["content"]
        self.calls.append(prompt)
        if self.fail_on and self.fail_on in prompt:
            raise LLMError(f"scripted failure on {prompt!r}")
        n_in = sum(math.ceil(len(m["content"]) / 4) + 4 for m in messages)  # ~ what a real tokenizer reports
        n_out = min(params.max_tokens, 500)
        return Completion(text=f"echo:{prompt}:{params.temperature}", input_tokens=n_in, output_tokens=n_out,
                          cache_read_tokens=0, cache_write_tokens=0, latency_s=0.01,
                          cost_usd=self.price.cost_usd(n_in, n_out, batched=self.batch_discount),
                          model=self.model, backend=self.backend, stop_reason="end_turn",
                          batched=self.batch_discount)

    def complete_many(self, requests, progress=None, on_result=None):
        self.bulk_calls.append(len(requests))
        return complete_sequentially(self, requests, progress, on_result)
