"""Traffic bookkeeping: tokens per agent, share of its parent's tokens, path depths, gate entropy."""
from __future__ import annotations

import numpy as np

from k1core.k1.network import ForwardResult
from k1core.k1.routing import routing_entropy


class UsageTracker:
    """Running traffic statistics over training steps (arrays indexed by agent slot)."""

    def __init__(self, capacity: int, max_depth: int, ema: float = 0.95):
        self.capacity, self.ema = capacity, ema
        self.total = np.zeros(capacity)  # tokens routed through each slot, ever
        self.share = np.zeros(capacity)  # EMA share of the parent's tokens (root: 1)
        self.last_seen = np.full(capacity, -1, dtype=np.int64)  # last step with >= 1 token
        self.depth_hist = np.zeros(max_depth + 1, dtype=np.int64)  # agents per token path
        self.entropy = 0.0  # EMA of the mean gate entropy, bits

    def reset_slot(self, slot: int, share: float) -> None:
        """A new agent in `slot` starts with `share` and no traffic history."""
        self.total[slot], self.share[slot], self.last_seen[slot] = 0.0, share, -1

    def record(self, fwd: ForwardResult, step: int, parent, alive) -> None:
        """Add one training forward pass's routing (`parent`, `alive`: the tree's arrays)."""
        for tr in fwd.levels:
            counts = np.bincount(tr.agent, minlength=self.capacity)
            self.total += counts
            self.last_seen[counts > 0] = step
            if tr.parent is None:
                self.share[tr.agent[0]] = 1.0
                continue
            at_parent = np.bincount(tr.parent, minlength=self.capacity)
            # every child of a parent that saw tokens this step, including children that got none
            kids = np.flatnonzero(alive & (parent >= 0))
            kids = kids[at_parent[parent[kids]] > 0]
            now = counts[kids] / at_parent[parent[kids]]
            self.share[kids] = self.ema * self.share[kids] + (1 - self.ema) * now
            e = routing_entropy(tr.probs, (tr.probs > 0).sum(axis=1))
            self.entropy = self.ema * self.entropy + (1 - self.ema) * e
        self.depth_hist += np.bincount((fwd.paths >= 0).sum(axis=1), minlength=len(self.depth_hist))

    def traffic_fraction(self, alive, step: int, window: int) -> float:
        """Fraction of alive agents that received at least one token in the last `window` steps."""
        recent = self.last_seen[alive] >= step - window
        return float(recent.mean()) if recent.size else 0.0

    def mean_path_length(self) -> float:
        h = self.depth_hist
        return float((h * np.arange(len(h))).sum() / max(1, h.sum()))

    def state_dict(self) -> dict:
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    def load_state_dict(self, s: dict) -> None:
        self.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()})
