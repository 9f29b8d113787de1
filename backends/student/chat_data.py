"""Chat JSONL -> token ids with a loss mask -> packed fixed-shape batches.

Each line is {"messages": [{"role", "content"}, ...]} (mlx-lm's chat format); the last message must
come from the assistant and is the only part that carries loss. Examples are packed into rows of
`seq_len` tokens with segment ids, so attention never crosses examples and shapes stay static
(one compiled step); the loss-position count is bucketed to a multiple of the logit chunk.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from backends.student.tokenizer import render_chat
from k1core.errors import UserError


@dataclass(frozen=True)
class Example:
    ids: tuple  # prompt + completion token ids
    n_prompt: int  # tokens before the assistant's answer (masked from the loss)


def read_chat_jsonl(path: str | Path) -> list[list[dict]]:
    """The message lists of a chat JSONL file; a bad line is a UserError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such data file")
    out = []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            raise UserError(f"{path}:{n}: invalid JSON ({err})") from None
        msgs = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in msgs):
            raise UserError(f"{path}:{n}: expected {{\"messages\": [{{\"role\": str, \"content\": str}}, ...]}}")
        if msgs[-1]["role"] != "assistant":
            raise UserError(f"{path}:{n}: the last message must be the assistant's answer (got {msgs[-1]['role']!r})")
        out.append(msgs)
    if not out:
        raise UserError(f"{path}: no examples")
    return out


def encode_chat(tokenizer, template: str, messages: list[dict], max_len: int) -> Example:
    """Prompt (all but the last message, with the generation prompt) and completion, tokenized separately
    so the mask boundary is exact; the completion includes the template's end-of-turn tokens."""
    prompt = render_chat(template, messages[:-1], add_generation_prompt=True)
    full = render_chat(template, messages)
    if not full.startswith(prompt):
        raise UserError("chat template renders the prompt differently inside the full conversation; cannot mask it")
    p_ids = tokenizer.encode(prompt)
    c_ids = tokenizer.encode(full[len(prompt):].rstrip("\n"))
    ids = (p_ids + c_ids)[:max_len]
    if len(p_ids) >= len(ids):
        raise UserError(f"an example's prompt ({len(p_ids)} tokens) leaves no answer within seq_len {max_len}")
    return Example(tuple(ids), len(p_ids))


def pack_rows(examples: list[Example], seq_len: int) -> list[list[Example]]:
    """Greedy first-fit packing of examples (in the given order) into rows of at most seq_len tokens."""
    rows, fill = [], []
    for ex in examples:
        for i, used in enumerate(fill):
            if used + len(ex.ids) <= seq_len:
                rows[i].append(ex)
                fill[i] += len(ex.ids)
                break
        else:
            rows.append([ex])
            fill.append(len(ex.ids))
    return rows


def make_batch(rows: list[list[Example]], seq_len: int, chunk: int) -> dict[str, np.ndarray]:
    """Arrays for packed rows: tokens/positions/segments (B, T); loss_index/targets/loss_weight (B, P).

    Position t predicts token t+1; it carries loss when t+1 lies in the answer of the same example.
    """
    B = len(rows)
    tokens = np.zeros((B, seq_len), np.int32)
    positions = np.zeros((B, seq_len), np.int32)
    segments = np.zeros((B, seq_len), np.int32)
    picks = []
    for b, row in enumerate(rows):
        start, pick = 0, []
        for s, ex in enumerate(row, 1):
            n = len(ex.ids)
            tokens[b, start:start + n] = ex.ids
            positions[b, start:start + n] = np.arange(n)
            segments[b, start:start + n] = s
            pick += [(start + t, ex.ids[t + 1]) for t in range(ex.n_prompt - 1, n - 1)]
            start += n
        picks.append(pick)
    P = max(chunk, -(-max(len(p) for p in picks) // chunk) * chunk)
    index = np.zeros((B, P), np.int32)
    targets = np.zeros((B, P), np.int32)
    weight = np.zeros((B, P), np.float32)
    for b, pick in enumerate(picks):
        if pick:
            index[b, :len(pick)], targets[b, :len(pick)] = zip(*pick)
            weight[b, :len(pick)] = 1.0
    return {"tokens": tokens, "positions": positions, "segments": segments,
            "loss_index": index, "targets": targets, "loss_weight": weight}
