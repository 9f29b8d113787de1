"""The run's models: one cached, metered LLM per role, loading a backend only when a call misses.

A resumed or `--offline` run whose calls are all in the response cache never loads a model (a
GGUF load takes seconds and gigabytes; an API client needs a key). Teacher and student with the
same spec share one loaded model.
"""
from __future__ import annotations

from typing import Sequence

from backends.llm import Completion, Message, Progress, Request, ResultHook, SamplingParams
from backends.pricing import FREE, anthropic_price
from backends.spec import BackendOptions, ModelSpec, build_llm, parse_spec
from lrl.cache import CachedLLM, ResponseCache
from lrl.ledger import Ledger

PARALLEL_BACKENDS = ("llamacpp", "openai")  # those that answer --parallel requests at once


class LazyLLM:
    """An LLM whose identity (backend, model, price) is known from its spec before it is loaded.

    `label` replaces the spec's model name as its identity (the response-cache key): a file
    written by the run is labelled by its content hash, since its path says nothing of its weights.
    """

    def __init__(self, spec: ModelSpec, options: BackendOptions, label: str | None = None):
        self.spec, self.options = spec, options
        self.batch_discount = spec.backend == "anthropic" and options.anthropic_batches
        self.parallel = options.parallel if spec.backend in PARALLEL_BACKENDS else 1
        self.backend, self.model = spec.backend, label or spec.model
        self.price = anthropic_price(spec.model) if spec.backend == "anthropic" else FREE
        self._loaded = None

    @property
    def loaded(self):
        """The real backend, built on first use."""
        if self._loaded is None:
            self._loaded = build_llm(self.spec, self.options)
        return self._loaded

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        return self.loaded.complete(messages, params)

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        return self.loaded.complete_many(requests, progress, on_result)

    def unload(self) -> None:
        """Free the loaded model's memory now, if its backend holds any (a later call loads it again)."""
        close = getattr(self._loaded, "close", None)
        if close is not None:
            close()
        self._loaded = None


def build_role_models(specs: dict, cache: ResponseCache, ledger: Ledger, template_version: str, *,
                      offline: bool, options: BackendOptions, injected: dict | None = None) -> dict:
    """{role: CachedLLM} for roles {"teacher": spec, "student": spec}; `injected` maps a role to a
    ready LLM object instead (tests use a scripted one)."""
    shared: dict[str, object] = {}
    models = {}
    for role, text in specs.items():
        if injected and role in injected:
            llm = injected[role]
        else:
            spec = parse_spec(text)
            llm = shared.setdefault(str(spec), LazyLLM(spec, options))
        models[role] = CachedLLM(llm, cache, template_version=template_version, ledger=ledger, offline=offline)
    return models
