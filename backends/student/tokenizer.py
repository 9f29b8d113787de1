"""Tokenize with the model's own vocabulary and render its chat template.

GGUF: llama.cpp itself with vocab_only=True (exact, loads no weights). HF directory: the
`tokenizers` library on tokenizer.json. Both are optional imports with a clear message.
"""
from __future__ import annotations

from pathlib import Path

from k1core.errors import UserError
from k1core.lazy import require


class LlamaCppTokenizer:
    """llama.cpp's tokenizer for a GGUF file (no weights loaded)."""

    def __init__(self, path: str | Path):
        llama_cpp = require("llama_cpp", "llm")
        try:
            self._llama = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        except Exception as err:
            raise UserError(f"{path}: llama.cpp cannot read its vocabulary ({err})") from None

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, special tokens like <|im_start|> parsed, no BOS added."""
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def decode(self, ids: list[int]) -> str:
        return self._llama.detokenize(list(ids), special=True).decode("utf-8", errors="replace")


class HFTokenizer:
    """The `tokenizers` library on an HF directory's tokenizer.json."""

    def __init__(self, path: str | Path):
        tokenizers = require("tokenizers", "lora")
        try:
            self._tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as err:
            raise UserError(f"{path}: cannot read tokenizer ({err})") from None

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)


def gguf_tokenizer(path: str | Path, reader=None) -> LlamaCppTokenizer:
    """Tokenizer for a GGUF model file."""
    return LlamaCppTokenizer(path)


def render_chat(template: str | None, messages: list[dict], add_generation_prompt: bool = False,
                bos_token: str = "", eos_token: str = "") -> str:
    """Render `messages` through the model's Jinja chat template (a UserError when it has none)."""
    if not template:
        raise UserError("the model has no chat template (tokenizer.chat_template / tokenizer_config.json)")
    jinja2 = require("jinja2", "lora")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise UserError(f"chat template: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                bos_token=bos_token, eos_token=eos_token)
    except jinja2.TemplateError as err:
        raise UserError(f"chat template failed to render: {err}") from None
