"""Credit assignment: only the top-K agents by responsibility x (1 + trust) are updated.

responsibility_a = ||grad of agent a's weights|| x (tokens routed through a) / N.
(Not x its output norm: a function-preservingly grown agent outputs exactly zero, would never be
selected, never learn, and be pruned as useless; the token share has no such trap.)
The shared layers (embeddings, mixer, level norms, head) and the router gates are always updated;
agent rows outside the top K keep their values and Adam moments this step.
"""
from __future__ import annotations

import numpy as np

from k1core.k1.network import ForwardResult
from k1core.params import ParamStore

AGENT_ARRAYS = ("agents.w1", "agents.b1", "agents.w2", "agents.b2")


def responsibility(g, fwd: ForwardResult, capacity: int) -> np.ndarray:
    """(capacity,) gradient norm times share of the batch's tokens per agent slot."""
    grad_sq = sum((g[k].reshape(capacity, -1).astype(np.float64) ** 2).sum(axis=1) for k in AGENT_ARRAYS)
    tokens = sum(np.bincount(tr.agent, minlength=capacity) for tr in fwd.levels)
    return np.sqrt(grad_sq) * tokens / len(fwd.paths)


def select_top_k(resp, trust, alive, k: int) -> np.ndarray:
    """Slots of the k alive agents with the largest responsibility x (1 + trust) (> 0 only)."""
    score = np.where(alive, resp * (1.0 + trust), 0.0)
    order = np.argsort(-score, kind="stable")[:k]
    return order[score[order] > 0]


class UpdateIndex:
    """Flat [start, stop) ranges of each agent slot's rows and of everything always updated, for
    AdamW's in-place update of the selected parameters (AdamW.step(lr, ranges))."""

    def __init__(self, params: ParamStore, capacity: int, has_tree: bool):
        self.shared: list[tuple[int, int]] = []
        self.slot: list[list[tuple[int, int]]] = [[] for _ in range(capacity)]
        for name, (a, b) in params.offsets.items():
            if has_tree and name in AGENT_ARRAYS:
                row = (b - a) // capacity  # stacked arrays: slot s owns one contiguous row
                for s in range(capacity):
                    self.slot[s].append((a + s * row, a + (s + 1) * row))
            else:
                self.shared.append((a, b))

    def select(self, slots) -> np.ndarray:
        """(R, 2) sorted ranges of the shared parameters plus the rows of `slots`, touching ones merged."""
        merged: list[list[int]] = []
        for a, b in sorted(self.shared + [r for s in slots for r in self.slot[s]]):
            if merged and merged[-1][1] == a:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        return np.array(merged, dtype=np.int64).reshape(-1, 2)
