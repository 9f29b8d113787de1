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
    return np.sqrt(grad_sq) * tokens / len(fwd.per_token)


def select_top_k(resp, trust, alive, k: int) -> np.ndarray:
    """Slots of the k alive agents with the largest responsibility x (1 + trust) (> 0 only)."""
    score = np.where(alive, resp * (1.0 + trust), 0.0)
    order = np.argsort(-score, kind="stable")[:k]
    return order[score[order] > 0]


class UpdateIndex:
    """Flat parameter indices per agent slot, and of everything always updated, for AdamW(select=...)."""

    def __init__(self, params: ParamStore, capacity: int, has_tree: bool):
        self.capacity = capacity
        per_slot = [[] for _ in range(capacity)]
        shared = []
        for name, (a, b) in params.offsets.items():
            if has_tree and name in AGENT_ARRAYS:
                rows = np.arange(a, b).reshape(capacity, -1)
                for s in range(capacity):
                    per_slot[s].append(rows[s])
            else:
                shared.append(np.arange(a, b))
        self.shared = np.concatenate(shared)
        self.slot = [np.concatenate(r) if r else np.zeros(0, np.int64) for r in per_slot]

    def select(self, slots) -> np.ndarray:
        """Sorted flat indices of the shared parameters plus the rows of `slots`."""
        return np.sort(np.concatenate([self.shared] + [self.slot[s] for s in slots]))
