"""Where a benchmark's JSON goes: bench/results/<name>-<UTC time>.json, so runs never overwrite each other."""
from __future__ import annotations

import time
from pathlib import Path

import orjson

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, payload: dict) -> Path:
    """Write `payload` as indented JSON under bench/results/ and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return path
