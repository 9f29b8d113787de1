"""A local GGUF model run in-process by llama-cpp-python: greedy by default, seeded, free.

The prompt is rendered with the chat template stored in the GGUF (`tokenizer.chat_template`,
run in a sandboxed jinja2 environment the way Hugging Face renders it), so a model is prompted
exactly as it was fine-tuned. GGUFs without a template (base models such as gemma270m) get the
message contents joined by blank lines: plain text for a base model to continue.

A LoRA adapter GGUF (`lora_path`, as `k1 export` writes it) is applied by llama.cpp at load time,
the way `llama-cli --lora` and Ollama's ADAPTER apply it, so the base keeps its shipped quantization
and the adapter's delta is added in full precision; it applies on both decoding paths.

`complete_many` with `parallel` > 1 decodes that many requests at once in one context
(`llamacpp_batch.BatchDecoder`: continuous batching, the shared prompt prefix decoded once),
several times the throughput of one request after another on a CPU; `parallel=1` keeps the
one-at-a-time path.

The file is validated by `gguf_header.read_header` first, because llama.cpp may abort the
process on a corrupt file. llama-cpp-python must be the crash-free build from scripts/setup.sh:
the default native build segfaults on batched decode (n_batch > 1) on some AVX512 CPUs.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Sequence

from backends.gguf_header import read_header
from backends.llm import (Completion, LLMError, Message, Progress, Request, ResultHook, SamplingParams,
                          complete_sequentially, plain_messages, validate_messages)
from backends.pricing import FREE
from k1core.errors import UserError
from k1core.lazy import require


def render_chat(template: str | None, messages: Sequence[Message], bos_token: str, eos_token: str) -> str:
    """The prompt text for `messages`: the GGUF's jinja2 chat template, or plain paragraphs without one."""
    messages = plain_messages(validate_messages(messages))
    if template is None:
        return "\n\n".join(m["content"] for m in messages)
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(template).render(
            messages=messages, bos_token=bos_token, eos_token=eos_token,
            add_generation_prompt=True, raise_exception=raise_exception)
    except (TemplateError, TypeError, ValueError) as err:  # the template is data from the file: report, don't crash
        raise UserError(f"the model's chat template failed on these messages: {err}") from None


def check_adapter(path: Path, base_arch: str | None) -> None:
    """UserError unless `path` is a LoRA adapter GGUF for the base's architecture (llama.cpp may abort on others)."""
    meta = read_header(path).metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise UserError(f"{path}: not a LoRA adapter GGUF (general.type={meta.get('general.type')!r}); "
                        f"`k1 export` writes one as <out>.lora.gguf")
    if meta.get("general.architecture") != base_arch:
        raise UserError(f"{path}: an adapter for {meta.get('general.architecture')!r}, "
                        f"but the base model is {base_arch!r}")


class LlamaCppLLM:
    """A GGUF file (plus an optional LoRA GGUF) as an LLM. One instance holds one loaded model; calls
    are serialized by a lock."""

    backend = "llamacpp"
    price = FREE
    batch_discount = False

    def __init__(self, path: Path, *, model: str | None = None, n_ctx: int = 4096, n_threads: int | None = None,
                 n_batch: int = 256, parallel: int = 1, lora_path: Path | None = None, verbose: bool = False):
        if n_batch < 1 or n_ctx < 16 or parallel < 1:
            raise UserError(f"n_batch and parallel must be >= 1 and n_ctx >= 16, got {n_batch}, {parallel} and {n_ctx}")
        self.path = Path(path)
        self.model = model or self.path.name
        self.n_ctx, self.n_batch, self.parallel = n_ctx, n_batch, parallel
        header = read_header(self.path)
        self.chat_template = header.metadata.get("tokenizer.chat_template")
        self.lora_path = Path(lora_path) if lora_path else None
        if self.lora_path:
            check_adapter(self.lora_path, header.metadata.get("general.architecture"))
        llama_cpp = require("llama_cpp", "llm")
        try:
            # n_threads_batch too: llama.cpp runs every multi-token decode (prompts, batched sequences) on it,
            # and llama-cpp-python's default there is every core, whatever n_threads says. Flash attention
            # as in the batched path (llamacpp_batch), so both paths compute alike.
            self.llama = llama_cpp.Llama(str(self.path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                                         flash_attn=True, n_batch=n_batch, seed=0, verbose=verbose,
                                         lora_path=str(self.lora_path) if self.lora_path else None)
        except (ValueError, RuntimeError) as err:  # "Failed to load model from file" / "...LoRA adapter..."
            what = f"{self.path} with adapter {self.lora_path}" if self.lora_path else str(self.path)
            raise UserError(f"llama.cpp could not load {what}: {err}") from None
        self.add_bos = bool(header.metadata.get("tokenizer.ggml.add_bos_token", False))
        self.bos_token = self._token_text(self.llama.token_bos())
        self.eos_token = self._token_text(self.llama.token_eos())
        self._lock = threading.Lock()
        self._batch_decoder = None

    def _token_text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self.llama.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the rendered chat prompt, BOS added once when the model wants one."""
        prompt = render_chat(self.chat_template, messages, self.bos_token, self.eos_token)
        add_bos = self.add_bos and not (self.bos_token and prompt.startswith(self.bos_token))
        return self.llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        """Generate until an end-of-generation token, a stop string or max_tokens."""
        return self.complete_tokens(self.prompt_tokens(messages), params)

    def complete_tokens(self, tokens: list[int], params: SamplingParams) -> Completion:
        """`complete` for a prompt given as token ids (a chat prompt, or one with the start of its answer
        already written)."""
        start = time.perf_counter()
        with self._lock:
            # Re-evaluate the whole prompt: reusing a cached KV prefix changes the batch shapes and so
            # the last bits of the logits, which made equal requests give different sampled text.
            self.llama.reset()
            try:
                out = self.llama.create_completion(
                    tokens, max_tokens=params.max_tokens, temperature=params.temperature,
                    top_p=params.top_p, top_k=0, min_p=0.0, repeat_penalty=1.0,  # only what params say
                    seed=params.seed, stop=list(params.stop) or None)
            except ValueError as err:  # e.g. prompt + max_tokens exceed the context window
                raise LLMError(f"llama.cpp ({self.path.name}): {err}") from err
        choice, usage = out["choices"][0], out["usage"]
        return Completion(
            text=choice["text"], input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"],
            cache_read_tokens=0, cache_write_tokens=0, latency_s=time.perf_counter() - start, cost_usd=0.0,
            model=self.model, backend=self.backend, stop_reason=choice["finish_reason"] or "unknown")

    def close(self) -> None:
        """Free the model's memory (weights and KV caches) now rather than at garbage collection."""
        if self._batch_decoder is not None:
            self._batch_decoder.close()
            self._batch_decoder = None
        self.llama.close()

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """All requests, `parallel` at a time in one batched context (one after another when parallel is 1)."""
        if self.parallel == 1 or not requests:
            return complete_sequentially(self, requests, progress, on_result)
        done = [0]

        def finished(index: int, completion: Completion) -> None:
            done[0] += 1
            if on_result:
                on_result(index, completion)
            if progress:
                progress(done[0], len(requests))

        return self.complete_tokens_many([self.prompt_tokens(r.messages) for r in requests],
                                         [r.params for r in requests], finished)

    def complete_tokens_many(self, prompts: Sequence[list[int]], params: Sequence[SamplingParams],
                             on_result: ResultHook | None = None) -> list[Completion]:
        """`complete_tokens` for many prompts, `parallel` at a time in one batched context."""
        with self._lock:
            if self._batch_decoder is None:
                from backends.llamacpp_batch import BatchDecoder

                self._batch_decoder = BatchDecoder(self.llama, self.parallel, self.n_batch, self.n_ctx,
                                                   str(self.lora_path) if self.lora_path else None,
                                                   backend=self.backend, model=self.model)
            return self._batch_decoder.decode(prompts, params, on_result)
