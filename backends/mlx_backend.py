"""mlx-lm generation on Apple silicon: a Hugging Face model id or local folder, run through Metal.

mlx-lm is imported lazily; elsewhere the constructor raises one line saying it needs an Apple-
silicon Mac and the `mlx` extra. The prompt uses the tokenizer's own chat template. Token counts
come from mlx-lm's generation stream; calls are free.
"""
from __future__ import annotations

import platform
import sys
import time
from typing import Sequence

from backends.llm import (Completion, Message, Progress, Request, ResultHook, SamplingParams, complete_sequentially,
                          plain_messages, validate_messages)
from backends.pricing import FREE
from k1core.errors import UserError
from k1core.lazy import require


def check_platform() -> None:
    """UserError unless this is macOS on Apple silicon, the only place mlx runs."""
    if sys.platform != "darwin" or platform.machine() != "arm64":
        raise UserError(f"the mlx backend needs an Apple-silicon Mac (this is {sys.platform}/{platform.machine()}); "
                        "use a llamacpp: or openai: model instead")


class MlxLLM:
    """An mlx-lm model as an LLM."""

    backend = "mlx"
    price = FREE
    batch_discount = False
    parallel = 1

    def __init__(self, model: str):
        check_platform()
        self.mlx_lm = require("mlx_lm", "mlx")
        self.sample_utils = require("mlx_lm.sample_utils", "mlx")
        self.mx = require("mlx.core", "mlx")
        self.model = model
        self.net, self.tokenizer = self.mlx_lm.load(model)

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        """Stream tokens until EOS, a stop string or max_tokens; the text is cut before a stop string."""
        prompt = self.tokenizer.apply_chat_template(plain_messages(validate_messages(messages)),
                                                    add_generation_prompt=True)
        self.mx.random.seed(params.seed)
        sampler = self.sample_utils.make_sampler(temp=params.temperature, top_p=params.top_p)
        start = time.perf_counter()
        text, stop_reason, last = "", "length", None
        for last in self.mlx_lm.stream_generate(self.net, self.tokenizer, prompt, max_tokens=params.max_tokens,
                                                sampler=sampler):
            text += last.text
            hits = [text.index(s) for s in params.stop if s in text]
            if hits:
                text, stop_reason = text[:min(hits)], "stop"
                break
            if last.finish_reason:
                stop_reason = last.finish_reason
        return Completion(
            text=text, input_tokens=len(prompt), output_tokens=last.generation_tokens if last else 0,
            cache_read_tokens=0, cache_write_tokens=0, latency_s=time.perf_counter() - start, cost_usd=0.0,
            model=self.model, backend=self.backend, stop_reason=stop_reason)

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """One request after another."""
        return complete_sequentially(self, requests, progress, on_result)
