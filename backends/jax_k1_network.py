"""The K-1 network's loss in JAX, traced once per bucket shape and differentiated by jax.grad.

The same computation as k1core/k1/network.py (mixer, root-to-leaf argmax routing with gates,
agent MLPs, head, cross-entropy + load balancing), over the same capacity-padded parameter arrays.
Routing decisions are integers, so jax.grad gives the gradient of the loss for fixed decisions,
exactly what the NumPy backward computes by hand.

Grouped agent dispatch uses capacity buckets: at tree level l the tokens are placed in a
(S_l, C_l, D) array, one row per slot at that depth and up to C_l tokens per slot, and each row
is multiplied by its own agent's weights (one batched matrix product pair per level). S_l and C_l
are powers of two fixed at trace time (`Buckets`); which slot sits in which row and which token in
which cell are array *arguments*, so routing and tree edits reuse the compiled program until a
group outgrows its bucket. A group larger than C_l is reported (`group_max`), never dropped
silently: the caller enlarges the bucket and runs the step again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from k1core.k1.config import K1Config
from k1core.lazy import require

jax = require("jax", "jax")
jnp = jax.numpy

MASKED = -1e30  # logit of a router column with no child: exp underflows to exactly 0


@dataclass(frozen=True)
class Buckets:
    """Static shapes of one compiled step, for tree levels 1, 2, ... (level 0 is the root alone)."""

    slots: tuple[int, ...]  # S_l: rows (agent slots at depth l), a power of two
    per_slot: tuple[int, ...]  # C_l: tokens each row holds, a power of two


class TreeArrays(NamedTuple):
    """The tree as jit arguments (shapes depend only on capacity, max_children and Buckets)."""

    children: jax.Array  # (capacity, max_children) int32 child slot per router column (0 where none)
    counts: jax.Array  # (capacity,) int32 children per slot
    row: jax.Array  # (capacity,) int32 row of each slot in its depth's bucket
    level_slots: tuple  # per level l >= 1: (S_l,) int32 slots at depth l (padded with the root)


class Group(NamedTuple):
    """Where one level's tokens sit in its bucket."""

    slots: jax.Array  # (S,) agent slot of each bucket row
    index: jax.Array  # (S, C) token id in each cell; N (out of range) for an empty cell
    cell: jax.Array  # (N,) flat cell of each token (0 for tokens not at this level: masked by the caller)


def layernorm(x, gain, bias, eps: float = 1e-5):
    """Rows of x (N, D) normalised, as k1core.kernels.layernorm_forward."""
    xc = x - x.mean(axis=-1, keepdims=True)
    return xc * jax.lax.rsqrt(jnp.square(xc).mean(axis=-1, keepdims=True) + eps) * gain + bias


def mixer(p, e, n_heads: int):
    """h = e + Attn(LN(e)) for e (B, T, D): the causal attention mixer of k1core/k1/mixer.py."""
    b, t, d = e.shape
    hs = d // n_heads
    a = layernorm(e, p["mix.ln.g"], p["mix.ln.b"])
    qkv = a @ p["mix.w_qkv"] + p["mix.b_qkv"]  # (B, T, 3D)
    q, k, v = qkv.reshape(b, t, 3, n_heads, hs).transpose(2, 0, 3, 1, 4)  # each (B, H, T, hs)
    scores = (q * (1.0 / hs**0.5)) @ k.transpose(0, 1, 3, 2)  # (B, H, T, T)
    att = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), scores, -jnp.inf), axis=-1)
    o = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
    return e + o @ p["mix.w_out"] + p["mix.b_out"]


def bucket(row, active, n_rows: int, per_row: int, slots) -> tuple[Group, jax.Array]:
    """Place the active tokens in an (n_rows, per_row) bucket by their row; returns the Group and
    the largest row's token count (> per_row means tokens did not fit)."""
    n = row.shape[0]
    key = jnp.where(active, row, n_rows)  # (N,) tokens not at this level go past the last row
    onehot = key[:, None] == jnp.arange(n_rows)[None, :]  # (N, S)
    sizes = onehot.sum(axis=0)  # (S,)
    pos = (jnp.cumsum(onehot, axis=0) * onehot).sum(axis=1) - 1  # (N,) rank within its row
    fits = active & (pos < per_row)
    cell = jnp.where(fits, key * per_row + pos, 0)
    index = jnp.full(n_rows * per_row, n, jnp.int32)
    index = index.at[jnp.where(fits, cell, n_rows * per_row)].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
    return Group(slots, index.reshape(n_rows, per_row), cell), sizes.max()


def per_slot_affine(u, group: Group, w, b):
    """u[i] @ w[slot of i] + b[slot of i] for every token, as one batched product over the bucket.

    u (N, D), w (capacity, D, K), b (capacity, K) -> (N, K)."""
    ub = u.at[group.index].get(mode="fill", fill_value=0.0)  # (S, C, D)
    yb = jnp.einsum("scd,sdk->sck", ub, w[group.slots]) + b[group.slots][:, None, :]
    return yb.reshape(-1, yb.shape[-1])[group.cell]


def agents(u, group: Group, p):
    """MLP_{agent of i}(u[i]) for u (N, D) -> (N, D), each agent's tokens on its bucket row."""
    ub = u.at[group.index].get(mode="fill", fill_value=0.0)  # (S, C, D)
    hidden = jax.nn.relu(jnp.einsum("scd,sdh->sch", ub, p["agents.w1"][group.slots])
                         + p["agents.b1"][group.slots][:, None, :])
    yb = jnp.einsum("sch,shd->scd", hidden, p["agents.w2"][group.slots]) + p["agents.b2"][group.slots][:, None, :]
    return yb.reshape(-1, yb.shape[-1])[group.cell]


def load_balance(parent, col, probs, active, counts, n_tokens: int):
    """The Switch load-balancing term of k1core/k1/routing.py; the dispatch fractions are constants."""
    capacity, width = counts.shape[0], probs.shape[1]
    dispatched = jnp.zeros((capacity, width), probs.dtype).at[parent, col].add(active.astype(probs.dtype))
    frac = dispatched / jnp.maximum(dispatched.sum(axis=1, keepdims=True), 1.0)
    coef = jax.lax.stop_gradient(counts[:, None] * frac)[parent] * active[:, None]  # (N, K)
    return (coef * probs).sum() / n_tokens


def route(u, prev: Group, parent, active, tree: TreeArrays, p, eps, explore_u, column_u):
    """Child column of each token: the gate's argmax or, with probability eps, a uniform child.

    Returns (col (N,), probs (N, K)); probs are zero on columns without a child."""
    k = tree.counts[parent]  # (N,)
    logits = per_slot_affine(u, prev, p["router.w"], p["router.b"])  # (N, K)
    has_child = jnp.arange(logits.shape[1])[None, :] < k[:, None]
    probs = jax.nn.softmax(jnp.where(has_child, logits, MASKED), axis=-1)
    col = jnp.argmax(probs, axis=1).astype(jnp.int32)
    random_col = jnp.minimum((column_u * k).astype(jnp.int32), jnp.maximum(k - 1, 0))
    col = jnp.where(explore_u < eps, random_col, col)
    return col, jnp.where(active[:, None], probs, 0.0)


def loss_terms(p, tree: TreeArrays, x, y, eps, explore_u, column_u, cfg: K1Config, buckets: Buckets):
    """Loss (CE + balance_coef x balance) for ids x, y (B, T), and what the host needs to know.

    explore_u, column_u (levels, N): uniform draws for exploration (eps = 0 turns it off)."""
    b, t = x.shape
    n = b * t
    e = p["tok_emb"][x] + p["pos_emb"][:t]  # (B, T, D)
    r = mixer(p, e, cfg.n_heads).reshape(n, cfg.d_model)  # (N, D) residual stream
    active = jnp.ones(n, dtype=bool)
    agent = jnp.zeros(n, jnp.int32)  # every path starts at the root
    group = Group(jnp.zeros(1, jnp.int32), jnp.arange(n, dtype=jnp.int32)[None, :], jnp.arange(n))
    balance = jnp.zeros((), r.dtype)
    paths, probs_per_level, group_max = [], [], []
    for level in range(1 + len(buckets.slots) if cfg.use_tree else 0):  # no levels in the ablation
        u = layernorm(r, p["tree.ln.g"][level], p["tree.ln.b"][level])  # (N, D)
        gate = jnp.ones(n, r.dtype)
        if level > 0:
            parent = agent
            active = active & (tree.counts[parent] > 0)  # tokens at a leaf have finished their path
            col, probs = route(u, group, parent, active, tree, p, eps, explore_u[level], column_u[level])
            agent = jnp.where(active, tree.children[parent, col], 0)
            gate = probs[jnp.arange(n), col]
            balance = balance + load_balance(parent, col, probs, active, tree.counts, n)
            group, biggest = bucket(tree.row[agent], active, buckets.slots[level - 1],
                                    buckets.per_slot[level - 1], tree.level_slots[level - 1])
            probs_per_level.append(probs)
            group_max.append(biggest)
        paths.append(jnp.where(active, agent, -1))
        r = r + jnp.where(active[:, None], gate[:, None] * agents(u, group, p), 0.0)
    f = layernorm(r, p["ln_f.g"], p["ln_f.b"])
    logits = f @ p["head.w"] + p["head.b"]  # (N, V)
    per_token = jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y.reshape(n, 1), axis=1)[:, 0]
    ce = per_token.mean()
    aux = {"ce": ce, "balance": balance, "per_token": per_token,
           "paths": jnp.stack(paths) if paths else jnp.zeros((0, n), jnp.int32),  # (levels, N)
           "probs": tuple(probs_per_level), "group_max": jnp.stack(group_max) if group_max else jnp.zeros(0)}
    return ce + cfg.balance_coef * balance, aux


def loss_and_grad(p, tree, x, y, eps, explore_u, column_u, cfg: K1Config, buckets: Buckets):
    """((loss, aux), gradients of every parameter) for one batch; jitted per (cfg, buckets, shapes)."""
    return jax.value_and_grad(loss_terms, has_aux=True)(p, tree, x, y, eps, explore_u, column_u, cfg, buckets)


jit_loss_and_grad = jax.jit(loss_and_grad, static_argnames=("cfg", "buckets"))
