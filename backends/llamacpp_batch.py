"""Many chat requests decoded at once in one llama.cpp context: continuous batching with a shared prefix.

Each of `slots` sequences holds one request at a time. Every `llama_decode` call carries one new
token for each generating sequence plus as many prompt tokens of newly started ones as fit in
`n_batch`, so the weights are read once for many tokens: on a CPU that is where the time goes,
and throughput grows several times from 1 to 8 sequences. A sequence that finishes hands its
slot to the next request at once.

The token prefix every prompt of a call shares (system turn, strategy, problem header) is
decoded once into all slots (one KV cell per token, tagged with every slot's sequence id in the
unified KV cache). A slot that takes a new request drops only its own tokens after the prefix.
Models with sliding-window attention (gemma3) decode every prompt whole: their cache cannot
drop part of a sequence.

Sampling is llama.cpp's own sampler chain, built per request as llama-cpp-python builds it for
`create_completion` (greedy at temperature 0; else top-p, temperature, then a draw seeded by the
request's seed), and stop strings, end-of-generation tokens and max_tokens end a request exactly
as there. A batch changes the shapes of the matrix products and so the last bits of the logits:
greedy answers agree with one-at-a-time decoding on nearly every item, not by construction
(bench/bench_llama_agreement.py measures how often).
"""
from __future__ import annotations

import ctypes
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from backends.llm import Completion, LLMError, SamplingParams

CELL_ROUNDING = 256  # KV cells are allocated in multiples of this (llama.cpp pads n_ctx to 256 anyway)
UTF8_SLACK = 16  # tokens a request may run past max_tokens while UTF-8 characters are incomplete (utf8_hold)
ResultHook = Callable[[int, Completion], None]


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens at the start of every prompt, leaving each prompt at least one token of its own
    (its last token's logits start the answer)."""
    first = prompts[0]
    n = min(len(p) for p in prompts) - 1
    for prompt in prompts[1:]:
        n = next((i for i in range(n) if prompt[i] != first[i]), n)
    return max(0, n)


def utf8_hold(text: bytes, hold: int) -> int:
    """How many tokens llama-cpp-python's create_completion waits, after `text`, before it checks
    stop strings and max_tokens again: its rule for a UTF-8 character cut between tokens,
    reproduced byte for byte (lead bytes among the last three) so both paths stop alike."""
    for k, byte in enumerate(text[-3:]):
        k = 3 - k
        for width, pattern in ((2, 192), (3, 224), (4, 240)):
            if width > k and pattern & byte == pattern:
                hold = width - k
    return hold


def load_adapter(llama_cpp, model, ctx, path: str):
    """A LoRA GGUF (llama.cpp's `--lora` format) attached at scale 1 to the context `ctx` of `model`.

    Returns the adapter handle, to free with `llama_adapter_lora_free` after the context.
    """
    adapter = llama_cpp.llama_adapter_lora_init(model, path.encode("utf-8"))
    if not adapter:
        raise LLMError(f"llama.cpp could not load the LoRA adapter {path}")
    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
    if llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, (ctypes.c_float * 1)(1.0)):
        llama_cpp.llama_adapter_lora_free(adapter)
        raise LLMError(f"llama.cpp could not apply the LoRA adapter {path}")
    return adapter


@dataclass
class _Sequence:
    """One request while it occupies a slot: prompt tokens still to decode, tokens generated so far."""

    index: int
    prompt: list[int]
    params: SamplingParams
    max_tokens: int
    sampler: object
    pending: list[int]
    position: int
    started: float = field(default_factory=time.perf_counter)
    generated: list[int] = field(default_factory=list)
    ends_at_eog: bool = True
    stop_reason: str = ""
    utf8_hold: int = 0  # tokens still to generate before stop strings are checked again (see _append)


class BatchDecoder:
    """A llama.cpp context with `slots` sequences beside a loaded `llama_cpp.Llama` (which tokenizes,
    detokenizes and owns the weights). `decode` runs a list of tokenized prompts to completions."""

    def __init__(self, llama, slots: int, n_batch: int, n_ctx_per_sequence: int, adapter: str | None = None,
                 *, backend: str = "llamacpp", model: str = ""):
        import llama_cpp

        self.api, self.llama, self.slots = llama_cpp, llama, slots
        self.n_batch = max(n_batch, slots)  # every generating sequence needs its token in each decode
        self.n_ctx_per_sequence, self.adapter_path = n_ctx_per_sequence, adapter
        self.backend, self.model = backend, model
        self.vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self.ctx, self.adapter, self.cells = None, None, 0
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, slots)

    def _context_for(self, cells: int) -> None:
        """A context with at least `cells` KV cells (rebuilt only when a call needs more)."""
        if self.ctx is not None and cells <= self.cells:
            return
        self._free_context()
        api = self.api
        params = api.llama_context_params.from_buffer_copy(self.llama.context_params)  # threads etc. as the Llama's
        params.n_ctx = -(-cells // CELL_ROUNDING) * CELL_ROUNDING
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = self.slots
        params.kv_unified = True  # one cell holds the shared prefix for every sequence
        # Every token attends over all the slots' cells (masked): without flash attention 8 sequences
        # answered 1.04x the items/s of one instead of 1.31x (bench_llama_batch, AMD EPYC Zen 2).
        params.flash_attn_type = api.LLAMA_FLASH_ATTN_TYPE_AUTO
        self.ctx = api.llama_init_from_model(self.llama.model, params)
        if not self.ctx:
            raise LLMError(f"llama.cpp could not create a context of {params.n_ctx} cells for {self.slots} sequences")
        self.cells = params.n_ctx
        if self.adapter_path:
            self.adapter = load_adapter(api, self.llama.model, self.ctx, self.adapter_path)

    def _free_context(self) -> None:
        if self.ctx is not None:
            self.api.llama_free(self.ctx)
            self.ctx = None
        if self.adapter is not None:
            self.api.llama_adapter_lora_free(self.adapter)
            self.adapter = None

    def close(self) -> None:
        """Free the context, the adapter and the batch (the Llama's weights stay with the Llama)."""
        self._free_context()
        if self.batch is not None:
            self.api.llama_batch_free(self.batch)
            self.batch = None

    def _sampler(self, params: SamplingParams):
        api = self.api
        chain = api.llama_sampler_chain_init(api.llama_sampler_chain_default_params())
        if params.temperature == 0:
            api.llama_sampler_chain_add(chain, api.llama_sampler_init_greedy())
        else:
            api.llama_sampler_chain_add(chain, api.llama_sampler_init_top_p(params.top_p, 1))
            api.llama_sampler_chain_add(chain, api.llama_sampler_init_temp(params.temperature))
            api.llama_sampler_chain_add(chain, api.llama_sampler_init_dist(params.seed))
        return chain

    def decode(self, prompts: Sequence[list[int]], params: Sequence[SamplingParams],
               on_result: ResultHook | None = None, *, ends_at_eog: bool = True) -> list[Completion]:
        """Completions of every prompt, in order; `on_result(i, completion)` as each one finishes.

        `ends_at_eog=False` decodes past end-of-generation tokens up to max_tokens (benchmarks use it
        to time answers of a given length from a model that would stop sooner)."""
        limit = self.n_ctx_per_sequence
        for i, prompt in enumerate(prompts):
            if len(prompt) >= limit:
                raise LLMError(f"llama.cpp: request {i}: its prompt of {len(prompt)} tokens does not fit the "
                               f"context of {limit} tokens")
        max_tokens = [min(p.max_tokens, limit - len(t)) for t, p in zip(prompts, params)]
        prefix = 0 if self.api.llama_model_n_swa(self.llama.model) > 0 else shared_prefix_length(prompts)
        own = sorted((len(t) - prefix + m + UTF8_SLACK for t, m in zip(prompts, max_tokens)), reverse=True)
        self._context_for(prefix + sum(own[:self.slots]))
        memory = self.api.llama_get_memory(self.ctx)
        self.api.llama_memory_clear(memory, True)
        self._decode_prefix(prompts[0][:prefix])
        results: list[Completion | None] = [None] * len(prompts)
        queue = deque(range(len(prompts)))
        active: dict[int, _Sequence] = {}
        try:
            while queue or active:
                for slot in range(self.slots):
                    if slot not in active and queue:
                        active[slot] = self._start(memory, slot, queue.popleft(), prompts, params, max_tokens, prefix)
                        active[slot].ends_at_eog = ends_at_eog
                for slot, sequence in self._step(active):
                    results[sequence.index] = self._finish(sequence)
                    del active[slot]
                    if on_result:
                        on_result(sequence.index, results[sequence.index])
        finally:
            for sequence in active.values():
                self.api.llama_sampler_free(sequence.sampler)
        return results

    def _decode_prefix(self, tokens: list[int]) -> None:
        """The shared prefix, decoded once into every slot's sequence (chunks of n_batch tokens)."""
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            self.batch.n_tokens = 0
            for offset, token in enumerate(chunk):
                self._add(token, start + offset, range(self.slots), False)
            self._llama_decode()

    def _start(self, memory, slot: int, index: int, prompts, params, max_tokens, prefix: int) -> _Sequence:
        """Request `index` in `slot`: drop the slot's tokens after the prefix, queue the rest of its prompt."""
        prompt = prompts[index]
        if not self.api.llama_memory_seq_rm(memory, slot, prefix, -1):
            raise LLMError(f"llama.cpp could not free sequence {slot} after position {prefix}")
        return _Sequence(index, prompt, params[index], max_tokens[index], self._sampler(params[index]),
                         pending=list(prompt[prefix:]), position=prefix)

    def _add(self, token: int, position: int, seq_ids, logits: bool) -> None:
        batch, n = self.batch, self.batch.n_tokens
        batch.token[n], batch.pos[n] = token, position
        seq_ids = list(seq_ids)
        batch.n_seq_id[n] = len(seq_ids)
        for j, seq in enumerate(seq_ids):
            batch.seq_id[n][j] = seq
        batch.logits[n] = logits
        batch.n_tokens = n + 1

    def _llama_decode(self) -> None:
        status = self.api.llama_decode(self.ctx, self.batch)
        if status != 0:
            raise LLMError(f"llama.cpp: llama_decode failed with status {status} "
                           f"({'no free KV cells' if status == 1 else 'runtime error'})")

    def _step(self, active: dict[int, _Sequence]) -> list[tuple[int, _Sequence]]:
        """One llama_decode over all active slots; the (slot, sequence) pairs that finished."""
        self.batch.n_tokens = 0
        sampled_at: dict[int, int] = {}  # slot -> batch row whose logits give its next token
        generating = [slot for slot, s in active.items() if not s.pending]
        for slot in generating:
            sequence = active[slot]
            sampled_at[slot] = self.batch.n_tokens
            self._add(sequence.generated[-1], sequence.position, (slot,), True)
            sequence.position += 1
        for slot, sequence in active.items():
            room = self.n_batch - self.batch.n_tokens
            if not sequence.pending or room <= 0:
                continue
            chunk, sequence.pending = sequence.pending[:room], sequence.pending[room:]
            for k, token in enumerate(chunk):
                last = not sequence.pending and k == len(chunk) - 1
                if last:
                    sampled_at[slot] = self.batch.n_tokens
                self._add(token, sequence.position, (slot,), last)
                sequence.position += 1
        self._llama_decode()
        finished = []
        for slot, row in sampled_at.items():
            sequence = active[slot]
            token = self.api.llama_sampler_sample(sequence.sampler, self.ctx, row)
            if self._append(sequence, token):
                finished.append((slot, sequence))
        return finished

    def _append(self, sequence: _Sequence, token: int) -> bool:
        """Add a sampled token; True when the request is done (end of generation, stop string, max_tokens)."""
        if sequence.ends_at_eog and self.api.llama_vocab_is_eog(self.vocab, token):
            sequence.stop_reason = "stop"
            return True
        sequence.generated.append(token)
        text = self.llama.detokenize(sequence.generated)
        sequence.utf8_hold = utf8_hold(text, sequence.utf8_hold)
        if sequence.utf8_hold and len(sequence.generated) < sequence.max_tokens + UTF8_SLACK:
            sequence.utf8_hold -= 1
            return False
        if any(stop.encode("utf-8") in text for stop in sequence.params.stop):
            sequence.stop_reason = "stop"
            return True
        if len(sequence.generated) >= sequence.max_tokens:
            sequence.stop_reason = "length"
            return True
        return False

    def _finish(self, sequence: _Sequence) -> Completion:
        """The request's Completion, its text cut at the first listed stop string that occurs."""
        self.api.llama_sampler_free(sequence.sampler)
        text = self.llama.detokenize(sequence.generated)
        for stop in sequence.params.stop:
            if stop.encode("utf-8") in text:
                text = text[:text.index(stop.encode("utf-8"))]
                break
        return Completion(
            text=text.decode("utf-8", errors="ignore"), input_tokens=len(sequence.prompt),
            output_tokens=len(sequence.generated), cache_read_tokens=0, cache_write_tokens=0,
            latency_s=time.perf_counter() - sequence.started, cost_usd=0.0, model=self.model,
            backend=self.backend, stop_reason=sequence.stop_reason)
