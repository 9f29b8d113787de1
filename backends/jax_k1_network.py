"""The K-1 network's loss in JAX, traced once per block layout and differentiated by jax.grad.

The same computation as k1core/k1/network.py (mixer, root-to-leaf argmax routing with gates,
agent MLPs, head, cross-entropy + load balancing), over the same capacity-padded parameter arrays.
Routing decisions are integers, so jax.grad gives the gradient of the loss for fixed decisions,
exactly what the NumPy backward computes by hand.

Grouped agent dispatch uses fixed-size token blocks (as MegaBlocks): at tree level l the tokens
are sorted by agent and each agent's group is padded to a multiple of `block` tokens, so every
block belongs to one agent; one batched matrix product pair over (blocks, block, D) runs each block
with its own agent's weights (gathered once per block, never per token). With S_l slots at depth l
the padded groups need at most ceil(N / block) + min(N, S_l) blocks, a static count that holds any routing:
no token can overflow, however unevenly the gates split them, and the padding costs at most one
block per agent (capacity buckets of (S_l, largest group) would pay S_l x the largest group, which
is most of N when routing is uneven). S_l and the block size are fixed at trace time;
which token sits in which block and which agent owns it are array *arguments*, so routing and tree
edits reuse the compiled program; only a depth outgrowing its S_l compiles a new one (`Layout`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from backends.jax_layers import causal_attention, layernorm
from k1core.k1.config import K1Config
from k1core.lazy import require

jax = require("jax", "jax")
jnp = jax.numpy

MASKED = -1e30  # logit of a router column with no child: exp underflows to exactly 0


@dataclass(frozen=True)
class Layout:
    """Everything static in one compiled step: the few K1Config fields the trace reads, and the blocks.

    (Not the whole K1Config: runs that differ only in schedules or plasticity knobs share programs.)"""

    n_heads: int
    use_tree: bool
    balance_coef: float
    rows: tuple[int, ...]  # S_l for tree levels 1, 2, ...: slots at depth l it has room for
    block: int = 64  # tokens per block (default K1Config: 32 and 64 equally fast, 16 and 128 slower)

    @classmethod
    def of(cls, cfg: K1Config, rows: tuple[int, ...], block: int) -> "Layout":
        return cls(cfg.n_heads, cfg.use_tree, float(cfg.balance_coef), rows, block)

    def count(self, level: int, n_tokens: int) -> int:
        """Blocks at tree level l >= 1: enough for N tokens with each of the at most min(N, S_l)
        non-empty groups padded (an empty group takes no block)."""
        return -(-n_tokens // self.block) + min(n_tokens, self.rows[level - 1])


class TreeArrays(NamedTuple):
    """The tree as jit arguments (shapes depend only on capacity, max_children and Layout)."""

    children: jax.Array  # (capacity, max_children) int32 child slot per router column (0 where none)
    counts: jax.Array  # (capacity,) int32 children per slot
    row: jax.Array  # (capacity,) int32 row of each slot among its depth's slots
    level_slots: tuple  # per level l >= 1: (S_l,) int32 slots at depth l (padded with the root)


class Group(NamedTuple):
    """Where one level's tokens sit: blocks of tokens, each owned by one agent."""

    slots: jax.Array  # (nb,) agent slot owning each block
    index: jax.Array  # (nb, block) token id in each cell; N (out of range) for an empty cell
    cell: jax.Array  # (N,) flat cell of each token (0 for tokens not at this level: masked by the caller)


def mixer(p, e, n_heads: int):
    """h = e + Attn(LN(e)) for e (B, T, D): the causal attention mixer of k1core/k1/mixer.py."""
    a = layernorm(e, p["mix.ln.g"], p["mix.ln.b"])
    return e + causal_attention(a, p["mix.w_qkv"], p["mix.b_qkv"], p["mix.w_out"], p["mix.b_out"], n_heads)


def group_blocks(row, active, slots, n_blocks: int, block: int) -> Group:
    """Blocks of the active tokens grouped by their agent's row in `slots` (S,); each non-empty group
    starts on a fresh block, so n_blocks >= ceil(N / block) + min(N, S) always holds every token."""
    n, n_rows = row.shape[0], slots.shape[0]
    key = jnp.where(active, row, n_rows)  # (N,) tokens not at this level go past the last row
    onehot = key[:, None] == jnp.arange(n_rows)[None, :]  # (N, S)
    pos = (jnp.cumsum(onehot, axis=0) * onehot).sum(axis=1) - 1  # (N,) rank within its group
    blocks_per_row = -(-onehot.sum(axis=0) // block)  # (S,)
    first_block = jnp.cumsum(blocks_per_row) - blocks_per_row  # (S,)
    cell = jnp.where(active, first_block[jnp.minimum(key, n_rows - 1)] * block + pos, 0)
    index = jnp.full(n_blocks * block, n, jnp.int32)
    index = index.at[jnp.where(active, cell, n_blocks * block)].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
    owner = (jnp.arange(n_blocks)[:, None] >= (first_block + blocks_per_row)[None, :]).sum(axis=1)  # (nb,) row
    return Group(slots[jnp.minimum(owner, n_rows - 1)], index.reshape(n_blocks, block), cell)


def blockwise(u, group: Group, fn):
    """fn(blocks of u (nb, block, D), owning slots (nb,)) -> (nb, block, K), mapped back to tokens (N, K)."""
    ub = u.at[group.index].get(mode="fill", fill_value=0.0)  # (nb, block, D); empty cells are 0
    yb = fn(ub, group.slots)
    return yb.reshape(-1, yb.shape[-1])[group.cell]


def affine(xb, slots, w, b):
    """xb[j] @ w[slots[j]] + b[slots[j]] for each block j: xb (nb, block, D), w (capacity, D, K)."""
    return jnp.einsum("scd,sdk->sck", xb, w[slots]) + b[slots][:, None, :]


def agents(u, group: Group, p):
    """MLP_{agent of i}(u[i]) for u (N, D) -> (N, D), each block through its agent's weights."""
    def mlp(ub, slots):
        hidden = jax.nn.relu(affine(ub, slots, p["agents.w1"], p["agents.b1"]))  # (nb, block, H)
        return affine(hidden, slots, p["agents.w2"], p["agents.b2"])
    return blockwise(u, group, mlp)


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
    logits = blockwise(u, prev, lambda ub, slots: affine(ub, slots, p["router.w"], p["router.b"]))  # (N, K)
    has_child = jnp.arange(logits.shape[1])[None, :] < k[:, None]
    probs = jax.nn.softmax(jnp.where(has_child, logits, MASKED), axis=-1)
    col = jnp.argmax(probs, axis=1).astype(jnp.int32)
    random_col = jnp.minimum((column_u * k).astype(jnp.int32), jnp.maximum(k - 1, 0))
    col = jnp.where(explore_u < eps, random_col, col)
    return col, jnp.where(active[:, None], probs, 0.0)


def forward(p, tree: TreeArrays, x, eps, explore_u, column_u, layout: Layout):
    """Logits (N, V) for ids x (B, T), the load-balancing term, and the routing the host reads:
    {"paths": (levels, N) slot per level, -1 after the leaf; "probs": per level l >= 1 (N, K)}.

    explore_u, column_u (levels, N): uniform draws for exploration (eps = 0 turns it off)."""
    return tree_and_head(p, tree, residual(p, x, layout), eps, explore_u, column_u, layout)


def residual(p, x, layout: Layout):
    """The residual stream (N, D) entering the tree: embeddings plus the causal mixer, ids x (B, T)."""
    b, t = x.shape
    e = p["tok_emb"][x] + p["pos_emb"][:t]  # (B, T, D)
    return mixer(p, e, layout.n_heads).reshape(b * t, e.shape[-1])


def tree_and_head(p, tree: TreeArrays, r, eps, explore_u, column_u, layout: Layout):
    """forward() from the residual stream r (N, D) on: every token's path through the tree, then the head."""
    n = r.shape[0]
    active = jnp.ones(n, dtype=bool)
    agent = jnp.zeros(n, jnp.int32)  # every path starts at the root
    group = Group(jnp.zeros(1, jnp.int32), jnp.arange(n, dtype=jnp.int32)[None, :], jnp.arange(n))
    balance = jnp.zeros((), r.dtype)
    paths, probs_per_level = [], []
    for level in range(1 + len(layout.rows) if layout.use_tree else 0):  # no levels in the ablation
        u = layernorm(r, p["tree.ln.g"][level], p["tree.ln.b"][level])  # (N, D)
        gate = jnp.ones(n, r.dtype)
        if level > 0:
            parent = agent
            active = active & (tree.counts[parent] > 0)  # tokens at a leaf have finished their path
            col, probs = route(u, group, parent, active, tree, p, eps, explore_u[level], column_u[level])
            agent = jnp.where(active, tree.children[parent, col], 0)
            gate = probs[jnp.arange(n), col]
            balance = balance + load_balance(parent, col, probs, active, tree.counts, n)
            group = group_blocks(tree.row[agent], active, tree.level_slots[level - 1],
                                 layout.count(level, n), layout.block)
            probs_per_level.append(probs)
        paths.append(jnp.where(active, agent, -1))
        r = r + jnp.where(active[:, None], gate[:, None] * agents(u, group, p), 0.0)
    f = layernorm(r, p["ln_f.g"], p["ln_f.b"])
    routing = {"paths": jnp.stack(paths) if paths else jnp.zeros((0, n), jnp.int32), "probs": tuple(probs_per_level)}
    return f @ p["head.w"] + p["head.b"], balance, routing


def loss_terms(p, tree: TreeArrays, x, y, eps, explore_u, column_u, layout: Layout):
    """Loss (CE + balance_coef x balance) for ids x, y (B, T), and what the host needs to know."""
    logits, balance, routing = forward(p, tree, x, eps, explore_u, column_u, layout)  # (N, V)
    n = logits.shape[0]
    per_token = jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y.reshape(n, 1), axis=1)[:, 0]
    ce = per_token.mean()
    aux = {"ce": ce, "balance": balance, "per_token": per_token} | routing
    return ce + layout.balance_coef * balance, aux


def loss_and_grad(p, tree, x, y, eps, explore_u, column_u, layout: Layout):
    """((loss, aux), gradients of every parameter) for one batch; jitted per (layout, shapes)."""
    return jax.value_and_grad(loss_terms, has_aux=True)(p, tree, x, y, eps, explore_u, column_u, layout)


jit_loss_and_grad = jax.jit(loss_and_grad, static_argnames=("layout",))


def next_logits(p, tree: TreeArrays, window, pos, layout: Layout):
    """Logits (V,) at position `pos` of a (1, T) window, greedy routing. Attention is causal, so the
    window's cells after pos change nothing and one program (fixed T) serves every prompt length;
    past the mixer tokens never meet, so only token pos goes through the tree and the head."""
    r = jax.lax.dynamic_slice_in_dim(residual(p, window, layout), pos, 1)  # (1, D)
    draws = jnp.zeros((1 + len(layout.rows), 1), jnp.float32)
    logits, _, _ = tree_and_head(p, tree, r, 0.0, draws, draws, layout)
    return logits[0]


jit_next_logits = jax.jit(next_logits, static_argnames=("layout",))
