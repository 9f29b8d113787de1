"""Structural plasticity: find candidates for, and apply, prune / merge / grow / reorganize.

Each `*_candidate` reads the last probe pass and returns a description (or None); each `apply_*`
edits the tree and the parameter rows in place. Whether an applied change is kept is decided
elsewhere (snapshots.py validates it and rolls it back if the validation loss got worse).
"""
from __future__ import annotations

import numpy as np

from k1core.k1.network import ForwardResult
from k1core.k1.tree import Tree

AGENT_ROWS = ("agents.w1", "agents.b1", "agents.w2", "agents.b2")


def agent_output(p, a: int, u):
    """Agent a's MLP on u (n, D), for probing (no cache)."""
    return np.maximum(u @ p["agents.w1"][a] + p["agents.b1"][a], 0.0) @ p["agents.w2"][a] + p["agents.b2"][a]


def inputs_at(fwd: ForwardResult, level: int, parent: int):
    """Normalised inputs (n, D) that the probe pass fed to `parent`'s router at `level`."""
    if level >= len(fwd.levels) or fwd.levels[level].parent is None:
        return None
    tr = fwd.levels[level]
    return tr.u[tr.parent == parent]


def remove_router_column(p, node: int, col: int) -> None:
    """Shift the router columns after `col` of `node` left by one and clear the last."""
    for name in ("router.w", "router.b"):
        w = p[name][node]
        w[..., col:-1] = w[..., col + 1:].copy()
        w[..., -1] = 0.0


def clear_agent(p, a: int) -> None:
    for name in AGENT_ROWS:
        p[name][a] = 0.0


# --- prune: low trust and low usage, measured over the agent's recent probes -------------------
def prune_candidate(tree: Tree, trust, share, trust_max: float, share_max: float, old_enough):
    """The leaf with the lowest trust x share among those old enough to have been measured
    (`old_enough`: (capacity,) bool) with trust < trust_max and a share of its parent's tokens below
    share_max x the even share (1 / siblings). Trust and share are moving averages over many probes
    and steps, so one noisy probe cannot condemn an agent; the size cap never forces a prune."""
    def relative_share(n):
        return share[n] * len(tree.children[tree.parent[n]])

    cands = [n for n in tree.leaves()
             if n != 0 and old_enough[n] and trust[n] < trust_max and relative_share(n) < share_max]
    if not cands:
        return None
    n = min(cands, key=lambda a: trust[a] * relative_share(a))
    return {"agent": n, "trust": float(trust[n]), "share": float(share[n]),
            "relative_share": float(relative_share(n))}


def apply_prune(p, tree: Tree, agent: int, **_) -> None:
    parent = int(tree.parent[agent])
    remove_router_column(p, parent, tree.remove_leaf(agent))
    clear_agent(p, agent)


# --- merge: a pair of sibling leaves far more alike than siblings usually are ------------------
def sibling_similarities(p, tree: Tree, fwd: ForwardResult) -> list[tuple[int, int, float]]:
    """(a, b, cosine of their outputs on their parent's probe inputs) for every pair of sibling leaves."""
    pairs = []
    for q in tree.nodes():
        leaves = [c for c in tree.children[q] if tree.is_leaf(c)]
        u = inputs_at(fwd, int(tree.depth[q]) + 1, int(q))
        if len(leaves) < 2 or u is None or len(u) < 4:
            continue
        outs = {c: agent_output(p, c, u).ravel() for c in leaves}
        for i, a in enumerate(leaves):
            for b in leaves[i + 1:]:
                sim = float(outs[a] @ outs[b] / (np.linalg.norm(outs[a]) * np.linalg.norm(outs[b]) + 1e-12))
                pairs.append((int(a), int(b), sim))
    return pairs


MIN_REFERENCE = 32  # sibling-pair similarities measured before merge judges any pair against them


def merge_candidate(pairs, reference: np.ndarray, z: float, floor: float, share):
    """The most alike pair, if its similarity is at least `floor` and `z` standard deviations above
    the mean of the `reference` similarities measured earlier (an outlier among siblings: two agents
    doing the same job, not two that merely share their parent's input statistics)."""
    if not pairs or len(reference) < MIN_REFERENCE:
        return None
    a, b, sim = max(pairs, key=lambda t: t[2])
    threshold = max(floor, float(reference.mean() + z * reference.std()))
    if sim < threshold:
        return None
    return {"agent": a, "other": b, "similarity": sim, "threshold": threshold,
            "share_a": float(share[a]), "share_b": float(share[b])}


def apply_merge(p, tree: Tree, agent: int, other: int, share_a: float, share_b: float, **_) -> None:
    """Usage-weighted average of both agents and of their gate columns into `agent`; `other` is removed."""
    wa = (share_a + 1e-6) / (share_a + share_b + 2e-6)
    for name in AGENT_ROWS:
        p[name][agent] = wa * p[name][agent] + (1 - wa) * p[name][other]
    parent = int(tree.parent[agent])
    ca, cb = tree.column(agent), tree.column(other)
    for name in ("router.w", "router.b"):
        w = p[name][parent]
        w[..., ca] = wa * w[..., ca] + (1 - wa) * w[..., cb]
    apply_prune(p, tree, other)


# --- grow: split a persistently high-loss leaf into two children -------------------------------
SPLIT = 2  # children a grow adds: a Net2Net-style split, so the two can divide the high-loss cluster
GROW_Z = 2.0  # standard errors by which a leaf's probe loss must clear the bar (one-sided ~98%)


def leaf_losses(fwd: ForwardResult, capacity: int, ratio: float):
    """(mean probe loss per leaf slot, high-loss mask): a leaf is high-loss when its mean loss on
    the probe tokens that ended there exceeds `ratio` x the probe's mean by more than GROW_Z standard
    errors of that mean (from the spread of its own per-token losses), so a leaf that drew a few hard
    tokens is not taken for a high-loss cluster."""
    leaf = fwd.paths[np.arange(len(fwd.paths)), (fwd.paths >= 0).sum(axis=1) - 1]
    n = np.bincount(leaf, minlength=capacity)
    mean = np.bincount(leaf, weights=fwd.per_token, minlength=capacity) / np.maximum(n, 1)
    square = np.bincount(leaf, weights=fwd.per_token**2, minlength=capacity) / np.maximum(n, 1)
    stderr = np.sqrt(np.maximum(square - mean**2, 0.0) / np.maximum(n - 1, 1))
    return mean, (n > 1) & (mean - GROW_Z * stderr > ratio * fwd.ce)


def grow_candidate(tree: Tree, streak, leaf_loss, patience: int, max_agents: int):
    """The deepenable leaf with the highest probe loss among those high-loss (`leaf_losses`) for
    `patience` probes in a row; none unless both children of the split fit under `max_agents` and
    the capacity (the cap refuses grows, so nothing has to prune them back)."""
    cands = [n for n in tree.leaves()
             if streak[n] >= patience and tree.depth[n] + 1 < tree.max_depth and tree.max_children >= SPLIT]
    if not cands or tree.alive.sum() + SPLIT > min(max_agents, tree.capacity):
        return None
    n = max(cands, key=lambda a: leaf_loss[a])
    return {"agent": n, "loss": float(leaf_loss[n]), "streak": int(streak[n])}


def apply_grow(p, tree: Tree, agent: int, rng=None, **_) -> list[int]:
    """Split `agent` into two new children, function-preserving (Net2Net-style).

    Both children copy the parent's hidden layer, each with its own small noise so their gradients
    differ, and get zero output layers, so the model's outputs are unchanged. Their gate columns have
    equal (zero) biases and opposite tiny weights +r / -r: the gate probabilities stay ~1/2 each, but
    the argmax sends the tokens on either side of the random hyperplane r to different children, so
    from the first step each child trains on its own part of the high-loss cluster. (With exactly
    equal logits every token would go to the first child.) Without `rng` there is no noise and both
    gate columns are zero. Children that fail to specialise stay near-identical, which is exactly
    what the merge rule looks for. Returns the two new slots.
    """
    d = p["agents.w1"][agent].shape
    split = 0.0 if rng is None else rng.normal(0.0, 1e-3, p["router.w"][agent].shape[0])
    children = []
    for sign in (1.0, -1.0):  # the SPLIT children
        child = tree.add_child(agent)
        col = tree.column(child)
        noise = 0.0 if rng is None else rng.normal(0.0, 1e-3, d)
        p["agents.w1"][child] = p["agents.w1"][agent] + noise
        p["agents.b1"][child] = p["agents.b1"][agent]
        p["agents.w2"][child] = 0.0
        p["agents.b2"][child] = 0.0
        p["router.w"][agent][:, col] = sign * split
        p["router.b"][agent][col] = 0.0
        children.append(child)
    return children


# --- reorganize: move an agent to a parent whose router prefers it, on repeated evidence ---------
REORGANIZE_Z = 2.0  # standard errors by which a move's preference gain must clear the margin


def current_share(tree: Tree, tr, c: int) -> tuple[float, int]:
    """(share of its parent's probe tokens that went to agent c, how many tokens its parent saw)."""
    at_parent = tr.parent == tree.parent[c]
    return (float((tr.agent[at_parent] == c).mean()) if at_parent.any() else 0.0), int(at_parent.sum())


def preference(p, tree: Tree, tr, c: int, q: int) -> tuple[float, int]:
    """(fraction of parent q's probe tokens for which agent c's gate column, as trained at its own
    parent, outscores every column of q's router; how many tokens q saw)."""
    old, col = int(tree.parent[c]), tree.column(c)
    u, k = tr.u[tr.parent == q], len(tree.children[q])
    if not len(u):
        return 0.0, 0
    wins = u @ p["router.w"][old][:, col] + p["router.b"][old][col] > (u @ p["router.w"][q][:, :k]
                                                                         + p["router.b"][q][:k]).max(axis=1)
    return float(wins.mean()), len(u)


def reorganize_evidence(p, tree: Tree, fwd: ForwardResult, margin: float) -> np.ndarray:
    """(capacity, capacity) bool: [c, q] when moving agent c under parent q would raise the share of
    tokens whose gate picks c by more than `margin`, by REORGANIZE_Z standard errors of the difference
    of the two proportions on this probe, so a handful of probe tokens cannot move an agent."""
    clears = np.zeros((tree.capacity, tree.capacity), dtype=bool)
    for c in tree.nodes():
        level = int(tree.depth[c])
        if c == 0 or level < 2 or level >= len(fwd.levels):
            continue
        tr = fwd.levels[level]
        share, n_old = current_share(tree, tr, c)
        for q in tree.nodes():
            if tree.depth[q] != level - 1 or not tree.children[q] or not tree.can_move(int(c), int(q)):
                continue
            pref, n_new = preference(p, tree, tr, c, q)
            if min(n_old, n_new) < 4:
                continue
            stderr = np.sqrt(pref * (1 - pref) / n_new + share * (1 - share) / n_old)
            clears[c, q] = pref - share - REORGANIZE_Z * stderr > margin
    return clears


def reorganize_candidate(p, tree: Tree, fwd: ForwardResult, streak: np.ndarray, patience: int):
    """(agent, new parent) with the largest preference gain on this probe among the moves whose
    evidence (`reorganize_evidence`) has held for `patience` probes in a row (`streak`)."""
    best = None
    for c, q in zip(*np.nonzero(streak >= patience)):
        c, q = int(c), int(q)
        if not tree.alive[c] or not tree.can_move(c, q):
            continue
        tr = fwd.levels[int(tree.depth[c])]
        pref, share = preference(p, tree, tr, c, q)[0], current_share(tree, tr, c)[0]
        if best is None or pref - share > best["gain"]:
            best = {"agent": c, "new_parent": q, "old_parent": int(tree.parent[c]), "preference": pref,
                    "current_share": share, "gain": pref - share, "streak": int(streak[c, q])}
    return best


def apply_reorganize(p, tree: Tree, agent: int, new_parent: int, **_) -> None:
    old = int(tree.parent[agent])
    col = tree.column(agent)
    wc, bc = p["router.w"][old][:, col].copy(), float(p["router.b"][old][col])
    old_col, new_col = tree.move(agent, new_parent)
    remove_router_column(p, old, old_col)
    p["router.w"][new_parent][:, new_col] = wc
    p["router.b"][new_parent][new_col] = bc
