"""One JSON object from bytes: every reader of a config, a cache row or a JSONL line checks the same two things."""
from __future__ import annotations

import orjson


def json_object(raw: bytes | str) -> dict:
    """The JSON object in `raw`; ValueError saying why it is not one (each caller names the file)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    return data
