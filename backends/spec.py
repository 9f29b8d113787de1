"""Model spec strings (`--teacher`, `--student`) parsed into a ModelSpec, and the LLM each one builds.

Accepted forms:
    anthropic:claude-3-5-haiku-latest        Anthropic Messages API
    llamacpp:path/to/model.gguf              local GGUF through llama-cpp-python
    llamacpp:qwen0.5b  or just  qwen0.5b     a PyPI-shipped model (see model_assets.ASSETS)
    openai:http://127.0.0.1:11434/v1#qwen2.5:7b   OpenAI-compatible server, '#' then model name
    mlx:org/model                            mlx-lm on Apple silicon
    <llamacpp spec>+lora=path/to/adapter.gguf   a GGUF base with a llama.cpp LoRA adapter applied at
                                             load time, e.g. qwen0.5b+lora=student.lora.gguf: the
                                             pair `k1 export` deploys, run exactly as Ollama's ADAPTER runs it
Parsing is pure (no files touched); `build_llm` resolves aliases and loads the model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from backends.model_assets import ASSETS, resolve_alias
from k1core.errors import UserError

BACKENDS = ("anthropic", "llamacpp", "openai", "mlx")
FORMS = ("anthropic:<model-id>, llamacpp:<file.gguf or alias>, openai:<http(s)://host[:port]/v1>#<model>, "
         f"mlx:<org/model>, or an alias ({', '.join(sorted(ASSETS))}); a llamacpp model may add +lora=<adapter.gguf>")
ADAPTER_MARK = "+lora="
ANTHROPIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NO_SPACE = re.compile(r"\S+")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: which backend, which model, (openai only) the server's base URL and
    (llamacpp only) a LoRA adapter GGUF applied to the model at load time."""

    backend: str
    model: str
    base_url: str | None = None
    adapter: str | None = None

    def __str__(self) -> str:
        if self.backend == "openai":
            return f"openai:{self.base_url}#{self.model}"
        return f"{self.backend}:{self.model}" + (f"{ADAPTER_MARK}{self.adapter}" if self.adapter else "")


@dataclass(frozen=True)
class BackendOptions:
    """Runtime knobs that are not part of a model's identity (so not part of the spec string)."""

    n_threads: int | None = None  # llama.cpp threads; None = llama.cpp's default
    n_ctx: int = 4096
    n_batch: int = 256
    parallel: int = 1  # requests worked on at once: llama.cpp sequences in one batch, or concurrent HTTP calls
    anthropic_batches: bool = False  # route bulk calls through Message Batches (50% price)
    batch_dir: Path | None = None  # where batch ids are persisted for resuming
    cache_dir: Path | None = None  # where PyPI-shipped models are assembled; None = user cache


def _bad(text: str, why: str) -> UserError:
    return UserError(f"bad model spec {text!r} ({why}); accepted forms: {FORMS}")


def parse_spec(text: str) -> ModelSpec:
    """Parse a spec string; UserError naming the accepted forms when it fits none of them."""
    if not isinstance(text, str) or not NO_SPACE.fullmatch(text):
        raise _bad(str(text), "empty or contains whitespace")
    base, mark, adapter = text.partition(ADAPTER_MARK)
    if mark:
        spec = _parse_plain(base, text)
        if spec.backend != "llamacpp":
            raise _bad(text, "only a llamacpp model takes a +lora= adapter")
        if not adapter.lower().endswith(".gguf"):
            raise _bad(text, "+lora= needs a LoRA adapter .gguf file")
        return ModelSpec("llamacpp", spec.model, adapter=adapter)
    return _parse_plain(text, text)


def _parse_plain(text: str, whole: str) -> ModelSpec:
    """`text` (a spec without an adapter) parsed; errors quote `whole`, what the user typed."""
    if not text:
        raise _bad(whole, "no model before +lora=")
    if text in ASSETS:
        return ModelSpec("llamacpp", text)
    backend, sep, rest = text.partition(":")
    if not sep or backend not in BACKENDS:
        raise _bad(whole, f"unknown backend {backend!r}" if sep else "no backend prefix")
    if not rest:
        raise _bad(whole, "nothing after the backend")
    if backend == "anthropic" and not ANTHROPIC_ID.fullmatch(rest):
        raise _bad(whole, "an Anthropic model id is letters, digits, '.', '_' and '-'")
    if backend == "llamacpp" and rest not in ASSETS and not rest.lower().endswith(".gguf"):
        raise _bad(whole, "llamacpp needs a .gguf path or a known alias")
    if backend == "openai":
        url, hash_sign, model = rest.partition("#")
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.query or parts.fragment:
            raise _bad(whole, "openai needs an http(s) base URL")
        if not hash_sign or not model:
            raise _bad(whole, "openai needs '#<model>' after the URL")
        return ModelSpec("openai", model, url.rstrip("/"))
    return ModelSpec(backend, rest)


def build_llm(spec: ModelSpec | str, options: BackendOptions = BackendOptions()):
    """The LLM a spec names; imports only the backend it needs."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.backend == "anthropic":
        from backends.anthropic_backend import AnthropicLLM

        return AnthropicLLM(spec.model, use_batches=options.anthropic_batches, batch_dir=options.batch_dir)
    if spec.backend == "llamacpp":
        from backends.llamacpp_backend import LlamaCppLLM

        path = resolve_alias(spec.model, options.cache_dir) if spec.model in ASSETS else Path(spec.model).expanduser()
        adapter = Path(spec.adapter).expanduser() if spec.adapter else None
        return LlamaCppLLM(path, model=str(spec).removeprefix("llamacpp:"), n_ctx=options.n_ctx,
                           n_threads=options.n_threads, n_batch=options.n_batch, lora_path=adapter,
                           parallel=options.parallel)
    if spec.backend == "openai":
        from backends.openai_backend import OpenAICompatibleLLM

        return OpenAICompatibleLLM(spec.base_url, spec.model, parallel=options.parallel)
    from backends.mlx_backend import MlxLLM

    return MlxLLM(spec.model)
