"""Agents: 2-layer ReLU MLPs whose weights are stacked one row per slot.

Tokens routed to different agents are computed with grouped matrix products (as mlx-lm's
switch layers): sort the tokens by agent, then one matmul pair per agent on its contiguous
block. The cost is proportional to the routed tokens, never to tokens x agents, and there is
no Python loop over tokens.
"""
from __future__ import annotations

import numpy as np


def agent_param_shapes(capacity: int, d_model: int, d_hidden: int) -> dict[str, tuple]:
    """Stacked MLP weights: row s belongs to the agent in slot s."""
    return {
        "agents.w1": (capacity, d_model, d_hidden), "agents.b1": (capacity, d_hidden),
        "agents.w2": (capacity, d_hidden, d_model), "agents.b2": (capacity, d_model),
    }


def group_by_agent(agent_ids: np.ndarray):
    """Stable sort order and (agent, start, stop) blocks over the sorted tokens."""
    order = np.argsort(agent_ids, kind="stable")
    sorted_ids = agent_ids[order]
    agents, starts = np.unique(sorted_ids, return_index=True)
    stops = np.r_[starts[1:], len(sorted_ids)]
    return order, list(zip(agents.tolist(), starts.tolist(), stops.tolist()))


def agents_forward(u, agent_ids, p):
    """MLP_{agent_ids[i]}(u[i]) for u (n, D); returns (out (n, D), cache)."""
    order, blocks = group_by_agent(agent_ids)
    us = u[order]
    hidden = np.empty((len(u), p["agents.b1"].shape[1]), dtype=u.dtype)
    out_sorted = np.empty_like(us)
    for a, s, e in blocks:
        hidden[s:e] = np.maximum(us[s:e] @ p["agents.w1"][a] + p["agents.b1"][a], 0.0)
        out_sorted[s:e] = hidden[s:e] @ p["agents.w2"][a] + p["agents.b2"][a]
    out = np.empty_like(out_sorted)
    out[order] = out_sorted
    return out, (order, blocks, us, hidden)


def agents_backward(dout, p, g, cache):
    """Accumulate agent weight gradients into g and return du (n, D)."""
    order, blocks, us, hidden = cache
    dsorted = dout[order]
    du_sorted = np.empty_like(us)
    for a, s, e in blocks:
        dy, h = dsorted[s:e], hidden[s:e]
        g["agents.w2"][a] += h.T @ dy
        g["agents.b2"][a] += dy.sum(axis=0)
        dh = (dy @ p["agents.w2"][a].T) * (h > 0)
        g["agents.w1"][a] += us[s:e].T @ dh
        g["agents.b1"][a] += dh.sum(axis=0)
        du_sorted[s:e] = dh @ p["agents.w1"][a].T
    du = np.empty_like(du_sorted)
    du[order] = du_sorted
    return du


def agent_param_count(d_model: int, d_hidden: int) -> int:
    """Scalars in one agent."""
    return 2 * d_model * d_hidden + d_hidden + d_model
