"""Learned routing: at each internal node a linear gate scores its children for each token.

A token follows one root-to-leaf path. At every internal node its child is the gate's argmax,
or, with probability epsilon (decaying over training), a uniformly random child (exploration).
The chosen child's softmax probability multiplies that child's output, so the gate weights get
an exact gradient from the language-model loss; a Switch-Transformer load-balancing term
(children x sum_j f_j P_j per node, f = dispatched fraction, P = mean probability) keeps
traffic spread over the children.
"""
from __future__ import annotations

import numpy as np

from k1core.k1.agents import group_by_agent
from k1core.kernels import softmax_backward, softmax_forward


def router_param_shapes(capacity: int, d_model: int, max_children: int) -> dict[str, tuple]:
    """Router gate of slot s: column j scores its j-th child."""
    return {"router.w": (capacity, d_model, max_children), "router.b": (capacity, max_children)}


def exploration_rate(step: int, start: float, end: float, decay_steps: int) -> float:
    """Epsilon decaying linearly from `start` to `end` over `decay_steps` steps."""
    if decay_steps <= 0:
        return end
    return end + (start - end) * max(0.0, 1.0 - step / decay_steps)


def route_forward(u, node, p, child_counts, eps: float, rng, forced_col=None):
    """Pick a child column for each token u (n, D) sitting at internal node `node` (n,).

    Returns (col (n,), probs (n, C), cache). With `forced_col` the decision is taken as given
    (used to replay a routing when checking gradients of the loss for fixed decisions).
    """
    n, c = len(u), p["router.w"].shape[2]
    probs = np.zeros((n, c), dtype=u.dtype)
    order, blocks = group_by_agent(node)
    us = u[order]
    for a, s, e in blocks:
        k = int(child_counts[a])
        probs[order[s:e], :k] = softmax_forward(us[s:e] @ p["router.w"][a][:, :k] + p["router.b"][a][:k])
    if forced_col is not None:
        col = np.asarray(forced_col, dtype=np.int64)
    else:
        col = probs.argmax(axis=1)
        if eps > 0:
            explore = rng.random(n) < eps
            if explore.any():
                k = child_counts[node[explore]]
                col[explore] = (rng.random(explore.sum()) * k).astype(np.int64)
    return col, probs, (order, blocks, us, probs, child_counts)


def load_balance(node, col, probs, child_counts, n_tokens: int):
    """Switch load-balancing value summed over nodes, weighted by the node's share of n_tokens,
    and its gradient w.r.t. probs: k_node * f_node,j / n_tokens."""
    slots, c = len(child_counts), probs.shape[1]
    dispatched = np.zeros((slots, c))
    np.add.at(dispatched, (node, col), 1.0)
    at_node = dispatched.sum(axis=1, keepdims=True)
    frac = dispatched / np.maximum(at_node, 1.0)  # f_{node, j}
    coef = (child_counts[:, None] * frac)[node]  # (n, C)
    value = float((coef * probs).sum() / n_tokens)
    return value, (coef / n_tokens).astype(probs.dtype)


def route_backward(dprobs, p, g, cache):
    """Accumulate gate gradients into g and return du (n, D) given d loss / d probs (n, C)."""
    order, blocks, us, probs, child_counts = cache
    dlogits = softmax_backward(dprobs, probs)[order]  # padded columns have probs == 0
    du_sorted = np.empty_like(us)
    for a, s, e in blocks:
        k = int(child_counts[a])
        dl = dlogits[s:e, :k]
        g["router.w"][a][:, :k] += us[s:e].T @ dl
        g["router.b"][a][:k] += dl.sum(axis=0)
        du_sorted[s:e] = dl @ p["router.w"][a][:, :k].T
    du = np.empty_like(du_sorted)
    du[order] = du_sorted
    return du


def routing_entropy(probs, child_counts_at_token) -> float:
    """Mean gate entropy in bits over tokens at nodes with 2+ children."""
    multi = child_counts_at_token > 1
    if not multi.any():
        return 0.0
    pr = probs[multi]
    return float(-(pr * np.log2(np.where(pr > 0, pr, 1.0))).sum(axis=1).mean())
