"""Trust: how much each agent measurably helps on held-out bytes, as a score in [0, 1].

Rule (run every `trust_interval` steps on a probe batch the model never trains on):
  gain_a   = mean over probe tokens routed through agent a of
             CE(without a's gated output in the final residual stream) - CE(with it)   [nats]
  target_a = tanh(max(gain_a, 0) / trust_scale)           0 for useless or harmful agents
  trust_a <- (1 - trust_rate) * trust_a + trust_rate * target_a     if a saw probe tokens
  trust_a <- (1 - trust_decay) * trust_a                            otherwise (decay)
The ablation is first order (downstream agents keep their inputs), so it costs one head pass
per level. Trust reaches 1 only if an agent's removal costs >> trust_scale nats per token, so
it cannot saturate by itself the way the published "trust += improvement" did.
"""
from __future__ import annotations

import numpy as np

from k1core.k1.network import ForwardResult, head_loss
from k1core.kernels import NUMPY_KERNELS, KernelSet


def ablation_gain(p, fwd: ForwardResult, y_flat: np.ndarray, capacity: int, k: KernelSet = NUMPY_KERNELS):
    """Per-slot (sum of CE gains from keeping the agent, probe token count)."""
    gain_sum = np.zeros(capacity)
    count = np.zeros(capacity)
    for tr in fwd.levels:
        r_without = fwd.r_final[tr.tokens] - tr.gate[:, None] * tr.out
        gain = head_loss(p, r_without, y_flat[tr.tokens], k) - fwd.per_token[tr.tokens]
        gain_sum += np.bincount(tr.agent, weights=gain, minlength=capacity)
        count += np.bincount(tr.agent, minlength=capacity)
    return gain_sum, count


def trust_update(trust, alive, gain_sum, count, rate: float, scale: float, decay: float) -> np.ndarray:
    """The rule in the module docstring; returns the new (capacity,) trust vector."""
    seen = alive & (count > 0)
    mean_gain = np.where(seen, gain_sum / np.maximum(count, 1), 0.0)
    target = np.tanh(np.maximum(mean_gain, 0.0) / scale)
    new = trust.copy()
    new[seen] = (1.0 - rate) * trust[seen] + rate * target[seen]
    unseen = alive & ~seen
    new[unseen] = (1.0 - decay) * trust[unseen]
    new[~alive] = 0.0
    return np.clip(new, 0.0, 1.0)


def trust_histogram(trust, alive, bins: int = 10) -> list[int]:
    """Counts of alive agents' trust in `bins` equal bins over [0, 1]."""
    return np.histogram(trust[alive], bins=bins, range=(0.0, 1.0))[0].tolist()
