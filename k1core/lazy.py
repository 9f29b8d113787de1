"""Lazy import of optional extras, with a one-line message naming the extra to install."""
from __future__ import annotations

import importlib

from k1core.errors import UserError


def require(module: str, extra: str):
    """Import `module` or raise UserError telling the user which k1 extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise UserError(
            f"{module} is not installed ({err.msg}); install it with: pip install 'k1[{extra}]'"
        ) from None
