"""Keep freed heap memory in the process, so per-step NumPy temporaries do not page-fault.

A training step allocates and frees the same few dozen arrays of 0.1-2 MB every time. glibc serves
blocks that large with fresh mmap()s and hands freed heap tops back to the kernel, so each step
re-faults every page it touches; measured here that cost ~40% of a GPT step. Raising glibc's mmap
and trim thresholds makes freed blocks reusable. Other C libraries (macOS) keep their own policy.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_LIMIT = 1 << 30  # blocks up to 1 GiB come from the reusable heap


def keep_freed_memory() -> bool:
    """Tune glibc malloc for reuse (once per process); returns False where it does not apply."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl): nothing to tune
    ok = mallopt(_M_MMAP_THRESHOLD, _LIMIT) and mallopt(_M_TRIM_THRESHOLD, _LIMIT)
    mallopt(_M_TOP_PAD, 64 << 20)
    return bool(ok)
