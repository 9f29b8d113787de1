"""A model's exact greedy answer from another model's answer: one prompt pass, generation only after they part.

Feed prompt + draft tokens through the model in one batched pass and take its argmax at every
draft position. If the model's argmax equals draft token i for every i < k, its own greedy text
begins with those k tokens (by induction: each step conditions on exactly the tokens it would
have produced). At the first position k where they part, the model's choice is known, and it
generates on from prompt + draft[:k] as usual. So the result is the model's greedy output, found
at the price of a prompt pass when the two models agree, as speculative decoding verifies a draft.
The fidelity gate uses it: the deployed artifact answers once, and the F16 reference and every
other quantization verify that answer instead of each writing their own.
The batched pass computes logits in other batch shapes than token-by-token decoding, which can
flip an argmax at a near-tie, as any change of batch shape in llama.cpp can.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from backends.llm import (Completion, LLMError, Message, Progress, Request, ResultHook, SamplingParams,
                          complete_sequentially)
from k1core.lazy import require


def draft_predictions(llm, tokens: list[int], first: int) -> list[int]:
    """Argmax token after each position >= `first` of `tokens` (whole sequence decoded from an empty cache);
    stops at the first position whose argmax differs from the next token."""
    llama_cpp = require("llama_cpp", "llm")
    llama = llm.llama
    llama.reset()  # the high-level API will re-evaluate its next prompt from position 0
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llama.ctx), True)
    n_batch, n_vocab = llama.n_batch, llama.n_vocab()
    batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
    predicted: list[int] = []
    try:
        for start in range(0, len(tokens), n_batch):
            chunk = tokens[start:start + n_batch]
            batch.n_tokens = len(chunk)
            for j, token in enumerate(chunk):
                batch.token[j], batch.pos[j], batch.n_seq_id[j] = token, start + j, 1
                batch.seq_id[j][0] = 0
                batch.logits[j] = start + j >= first
            if llama_cpp.llama_decode(llama.ctx, batch) != 0:
                raise LLMError(f"llama.cpp ({llm.path.name}): decode failed while checking a draft")
            for j in range(len(chunk)):
                pos = start + j
                if pos < first:
                    continue
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, j), shape=(n_vocab,))
                predicted.append(int(np.argmax(logits)))
                if pos + 1 < len(tokens) and predicted[-1] != tokens[pos + 1]:
                    return predicted
    finally:
        llama_cpp.llama_batch_free(batch)
    return predicted


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to its earliest stop string, and whether one was found."""
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[:min(ends)], True) if ends else (text, False)


@dataclass
class CheckedDraft:
    """What one prompt pass over prompt + draft found: the draft tokens the model agrees with and,
    when it parts from the draft before its answer ends, the tokens to generate on from."""

    prompt: list[int]
    kept: list[int]
    head: str
    started: float
    stop: tuple[str, ...]
    tail_params: SamplingParams | None  # None: the answer is complete without generating
    reason: str = "stop"

    def completion(self, llm, tail: Completion | None = None) -> Completion:
        """The model's greedy answer: the agreed head, then the generated tail if there is one."""
        text, stopped = cut_at_stop(self.head + (tail.text if tail else ""), self.stop)
        reason = tail.stop_reason if tail else self.reason
        return Completion(text=text, input_tokens=len(self.prompt),
                          output_tokens=len(self.kept) + (tail.output_tokens if tail else 0), cache_read_tokens=0,
                          cache_write_tokens=0, latency_s=time.perf_counter() - self.started, cost_usd=0.0,
                          model=llm.model, backend=llm.backend, stop_reason="stop" if stopped else reason)

    @property
    def tokens(self) -> list[int]:
        return self.prompt + self.kept


def check_draft(llm, messages: Sequence[Message], draft: str, params: SamplingParams) -> CheckedDraft:
    """One prompt pass of `llm` (a LlamaCppLLM) over `messages` + `draft`: how much of its greedy answer
    the draft already is."""
    started = time.perf_counter()
    prompt = llm.prompt_tokens(messages)
    draft_tokens = llm.llama.tokenize(draft.encode("utf-8"), add_bos=False, special=False)[:params.max_tokens]
    with llm._lock:
        predicted = draft_predictions(llm, prompt + draft_tokens, len(prompt) - 1)
    agreed = len(predicted) - 1  # draft tokens the model would write itself
    kept = draft_tokens[:agreed]
    head = llm.llama.detokenize(kept).decode("utf-8", errors="replace")
    budget = params.max_tokens - agreed
    if budget <= 0 or _is_end(llm, predicted[-1]):
        return CheckedDraft(prompt, kept, head, started, params.stop, None, "length" if budget <= 0 else "stop")
    tail = SamplingParams(temperature=0.0, max_tokens=budget, seed=params.seed, stop=params.stop)
    return CheckedDraft(prompt, kept, head, started, params.stop, tail)


def greedy_from_draft(llm, messages: Sequence[Message], draft: str, params: SamplingParams) -> Completion:
    """`llm`'s (a LlamaCppLLM) greedy completion of `messages`, checked against `draft` in one pass."""
    checked = check_draft(llm, messages, draft, params)
    if checked.tail_params is None:
        return checked.completion(llm)
    return checked.completion(llm, llm.complete_tokens(checked.tokens, checked.tail_params))


def _is_end(llm, token: int) -> bool:
    """Whether `token` ends generation for this model (EOS, <|im_end|>, ...)."""
    llama_cpp = require("llama_cpp", "llm")
    return bool(llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.llama.model), token))


class DraftCheckedLLM:
    """An LLM whose greedy calls verify a given draft answer per prompt (`drafts`: messages key -> text);
    other calls, and prompts without a draft, go to the model as usual."""

    def __init__(self, llm, drafts: dict[str, str]):
        self.llm, self.drafts = llm, drafts
        self.backend, self.model, self.price = llm.backend, llm.model, llm.price
        self.batch_discount = getattr(llm, "batch_discount", False)
        self.parallel = getattr(llm, "parallel", 1)

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        target = self._checkable(messages, params)
        if target is None:
            return self.llm.complete(messages, params)
        return greedy_from_draft(target, messages, self.drafts[messages_key(messages)], params)

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """Every draft checked in one prompt pass each; the requests that part from their draft then
        generate on together in one batch, as do those without a draft, when the model decodes
        many sequences at once (else one after another, as `complete` does)."""
        if self.parallel == 1:
            return complete_sequentially(self, requests, progress, on_result)
        results: list[Completion | None] = [None] * len(requests)

        def finished(index: int, completion: Completion) -> None:
            results[index] = completion
            if on_result:
                on_result(index, completion)
            if progress:
                progress(sum(r is not None for r in results), len(requests))

        plain, tails = [], []
        for i, request in enumerate(requests):
            target = self._checkable(request.messages, request.params)
            if target is None:
                plain.append(i)
                continue
            checked = check_draft(target, request.messages, self.drafts[messages_key(request.messages)],
                                  request.params)
            if checked.tail_params is None:
                finished(i, checked.completion(target))
            else:
                tails.append((i, checked))
        if tails:
            target = getattr(self.llm, "loaded", self.llm)
            target.complete_tokens_many([c.tokens for _, c in tails], [c.tail_params for _, c in tails],
                                        lambda j, tail: finished(tails[j][0], tails[j][1].completion(target, tail)))
        if plain:
            self.llm.complete_many([requests[i] for i in plain], None, lambda j, c: finished(plain[j], c))
        return results

    def _checkable(self, messages: Sequence[Message], params: SamplingParams):
        """The LlamaCppLLM that checks this request's draft, or None when the request goes to the model as is."""
        from backends.llamacpp_backend import LlamaCppLLM

        if params.temperature > 0 or messages_key(messages) not in self.drafts:
            return None
        target = getattr(self.llm, "loaded", self.llm)
        return target if isinstance(target, LlamaCppLLM) else None


def messages_key(messages: Sequence[Message]) -> str:
    """A prompt's identity for looking up its draft."""
    return "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in messages)
