"""Where a `--base` / `k1 chat` model argument points: a GGUF path, `llamacpp:<path>`, or a shipped alias."""
from __future__ import annotations

from pathlib import Path

from backends.model_assets import ASSETS, resolve_alias
from backends.spec import ADAPTER_MARK, ModelSpec, parse_spec
from k1core.errors import UserError


def local_spec(text: str) -> ModelSpec:
    """`text` as a llamacpp spec (a bare .gguf path gets the prefix); UserError for another backend."""
    head = text.partition(ADAPTER_MARK)[0]
    if head not in ASSETS and not head.startswith("llamacpp:") and head.lower().endswith(".gguf"):
        text = f"llamacpp:{text}"
    spec = parse_spec(text)
    if spec.backend != "llamacpp":
        raise UserError(f"{text}: a local GGUF file is needed here, not a {spec.backend} model")
    return spec


def resolve_gguf(text: str) -> Path:
    """The local GGUF file `text` names (no adapter); UserError when it names another backend or no file."""
    spec = local_spec(text)
    if spec.adapter:
        raise UserError(f"{text}: a single GGUF file is needed here, without {ADAPTER_MARK}")
    path = resolve_alias(spec.model) if spec.model in ASSETS else Path(spec.model).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    return path
