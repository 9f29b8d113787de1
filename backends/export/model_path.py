"""Where a `--base` / `k1 chat` model argument points: a GGUF path, `llamacpp:<path>`, or a shipped alias."""
from __future__ import annotations

from pathlib import Path

from backends.model_assets import ASSETS, resolve_alias
from backends.spec import parse_spec
from k1core.errors import UserError


def resolve_gguf(text: str) -> Path:
    """The local GGUF file `text` names; UserError when it names another backend or no file."""
    if text in ASSETS:
        return resolve_alias(text)
    if not text.startswith("llamacpp:") and text.lower().endswith(".gguf"):
        text = f"llamacpp:{text}"
    spec = parse_spec(text)
    if spec.backend != "llamacpp":
        raise UserError(f"{text}: a local GGUF file is needed here, not a {spec.backend} model")
    path = resolve_alias(spec.model) if spec.model in ASSETS else Path(spec.model).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    return path
