"""A GGUFWriter that only ever leaves a complete file at its destination.

The writer streams to `<out>.tmp`; when the body finishes, the file is closed and renamed over
`out` (atomic on one filesystem), so an interrupted export never leaves a truncated GGUF that
llama.cpp would later fail on. On any error the temporary file is removed and the error re-raised.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from k1core.lazy import require


@contextmanager
def atomic_gguf_writer(out_path: str | Path, arch: str):
    """Yield a gguf.GGUFWriter for `arch` writing `out_path.tmp`; replace `out_path` with it on success."""
    gguf = require("gguf", "lora")
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    try:
        yield writer
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
