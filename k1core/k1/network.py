"""The K-1 network's forward and backward pass, as functions of (params, tree, routing).

    ids -> token + position embedding -> causal attention mixer (h)
        -> level 0: r += MLP_root(LN_0(r))                    every token
        -> level l: r += gate * MLP_child(LN_l(r))            child picked by the parent's router
        -> LN_f -> linear head -> cross-entropy (+ balance_coef x load-balancing term)

Routing decisions are discrete, so the loss is piecewise smooth in the parameters. Given fixed
decisions (`paths`), it is smooth and `backward` returns its exact gradient, including the
gate weights through the chosen child's softmax probability.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from k1core.k1.agents import agent_param_shapes, agents_backward, agents_forward
from k1core.k1.config import K1Config
from k1core.kernels import NUMPY_KERNELS, KernelSet
from k1core.k1.mixer import mixer_backward, mixer_forward, mixer_param_shapes
from k1core.k1.routing import load_balance, route_backward, route_forward, router_param_shapes
from k1core.k1.tree import ROOT, Tree


def param_shapes(cfg: K1Config) -> dict[str, tuple]:
    """Every parameter of the model (agent and router rows for all slots, alive or not)."""
    shapes = {"tok_emb": (cfg.vocab_size, cfg.d_model), "pos_emb": (cfg.context, cfg.d_model)}
    shapes |= mixer_param_shapes(cfg.d_model)
    if cfg.use_tree:
        shapes |= {"tree.ln.g": (cfg.max_depth, cfg.d_model), "tree.ln.b": (cfg.max_depth, cfg.d_model)}
        shapes |= agent_param_shapes(cfg.capacity, cfg.d_model, cfg.d_hidden)
        shapes |= router_param_shapes(cfg.capacity, cfg.d_model, cfg.max_children)
    shapes |= {"ln_f.g": (cfg.d_model,), "ln_f.b": (cfg.d_model,),
               "head.w": (cfg.d_model, cfg.vocab_size), "head.b": (cfg.vocab_size,)}
    return shapes


def init_params(cfg: K1Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """GPT-2 style init: N(0, 0.02) weights, residual outputs scaled down by depth, unit LN gains."""
    out = {}
    residual_std = 0.02 / np.sqrt(2 * (1 + cfg.max_depth))
    for name, shape in param_shapes(cfg).items():
        if name.endswith(".g"):
            out[name] = np.ones(shape)
        elif name.endswith((".b", "b_qkv", "b_out", ".b1", ".b2")):
            out[name] = np.zeros(shape)
        elif name in ("mix.w_out", "agents.w2"):
            out[name] = rng.normal(0.0, residual_std, shape)
        else:
            out[name] = rng.normal(0.0, 0.02, shape)
    return out


@dataclass
class LevelTrace:
    """What one tree level did: which tokens, at which agents, with which gates and outputs."""

    tokens: np.ndarray  # (n,) flat token indices still on a path
    u: np.ndarray  # (n, D) normalised input the router and agent saw
    agent: np.ndarray  # (n,) slot of the agent at this level
    gate: np.ndarray  # (n,) chosen child's probability (1 at the root)
    out: np.ndarray  # (n, D) agent output before gating
    probs: np.ndarray | None  # (n, C) parent's gate distribution (None at the root)
    parent: np.ndarray | None  # (n,) parent slot
    col: np.ndarray | None  # (n,) chosen column
    ln_cache: tuple
    agent_cache: tuple
    route_cache: tuple | None


def token_losses(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy (nats) of each row of logits (N, V) against targets (N,), in float64.

    K-1 needs losses per token (trust ablations, leaf losses); the kernels' fused
    softmax_xent_forward_backward gives only their mean, and the training step needs only that."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return np.log(np.exp(z).sum(axis=-1)) - z[np.arange(len(targets)), targets]


@dataclass
class ForwardResult:
    loss: float  # cross-entropy + balance term (what the gradient is of)
    ce: float  # mean cross-entropy, nats/byte
    balance: float
    targets: np.ndarray | None  # (N,) next-byte ids (None in generation)
    logits: np.ndarray  # (N, V)
    paths: np.ndarray  # (N, max_depth) slot per level, -1 after the leaf
    levels: list[LevelTrace]
    r_final: np.ndarray  # (N, D) residual stream entering LN_f
    cache: tuple

    @cached_property
    def per_token(self) -> np.ndarray | None:
        """(N,) cross-entropy per token (None without targets); computed only when asked for."""
        return None if self.targets is None else token_losses(self.logits, self.targets)


def forward(p, tree: Tree, cfg: K1Config, x, y, eps: float = 0.0, rng=None, paths=None,
            k: KernelSet = NUMPY_KERNELS) -> ForwardResult:
    """Loss on (x, y) (B, T); routes with the gates (+ epsilon exploration) unless `paths` is given.

    With y None only the logits are computed (generation). Element-wise work runs on the kernels `k`."""
    b, t = x.shape
    n = b * t
    e = p["tok_emb"][x] + p["pos_emb"][:t]  # (B, T, D)
    h, mix_cache = mixer_forward(e, p, cfg.n_heads, k)
    r = h.reshape(n, cfg.d_model).copy()
    levels: list[LevelTrace] = []
    out_paths = np.full((n, cfg.max_depth), -1, dtype=np.int64)
    balance, lb_grads = 0.0, []
    if cfg.use_tree:
        table, counts = tree.children_table()
        tokens, agent = np.arange(n), np.full(n, ROOT, dtype=np.int64)
        for level in range(cfg.max_depth):
            if level > 0:
                keep = counts[agent] > 0  # tokens at a leaf have finished their path
                tokens, parent = tokens[keep], agent[keep]
                if tokens.size == 0:
                    break
            u, ln_cache = k.layernorm_forward(r[tokens], p["tree.ln.g"][level], p["tree.ln.b"][level])
            probs = col = route_cache = None
            if level == 0:
                gate = np.ones(len(tokens), dtype=r.dtype)
            else:
                forced = None if paths is None else tree.column_table()[paths[tokens, level]]
                col, probs, route_cache = route_forward(u, parent, p, counts, eps, rng, forced)
                agent = table[parent, col]
                gate = probs[np.arange(len(tokens)), col]
                lb_value, lb_grad = load_balance(parent, col, probs, counts, n)
                balance += lb_value
                lb_grads.append(lb_grad)
            out, agent_cache = agents_forward(u, agent, p)
            r[tokens] += gate[:, None] * out
            out_paths[tokens, level] = agent
            levels.append(LevelTrace(tokens, u, agent.copy(), gate, out, probs, None if level == 0 else parent,
                                     col, ln_cache, agent_cache, route_cache))
    f, lnf_cache = k.layernorm_forward(r, p["ln_f.g"], p["ln_f.b"])
    logits = f @ p["head.w"] + p["head.b"]  # (N, V)
    targets = None if y is None else y.reshape(-1)
    ce, dlogits = (float("nan"), None) if y is None else \
        k.softmax_xent_forward_backward(logits.copy(), targets)  # the kernel consumes its input
    loss = ce + cfg.balance_coef * balance
    return ForwardResult(loss, ce, balance, targets, logits, out_paths, levels, r,
                         (x, mix_cache, f, lnf_cache, dlogits, lb_grads))


def backward(p, g, cfg: K1Config, fwd: ForwardResult, k: KernelSet = NUMPY_KERNELS) -> None:
    """Put d loss / d params into g (dict of arrays, zeroed by the caller); one call per forward."""
    x, mix_cache, f, lnf_cache, dlogits, lb_grads = fwd.cache
    g["head.w"] += f.T @ dlogits
    g["head.b"] += dlogits.sum(axis=0)
    dr, dg, db = k.layernorm_backward(dlogits @ p["head.w"].T, lnf_cache, p["ln_f.g"])
    g["ln_f.g"] += dg
    g["ln_f.b"] += db
    for level in range(len(fwd.levels) - 1, -1, -1):
        tr = fwd.levels[level]
        d_in = dr[tr.tokens]  # (n, D) gradient of the residual after this level
        du = agents_backward(tr.gate[:, None] * d_in, p, g, tr.agent_cache)
        if level > 0:
            dprobs = cfg.balance_coef * lb_grads[level - 1]
            dprobs[np.arange(len(tr.tokens)), tr.col] += (d_in * tr.out).sum(axis=1)
            du += route_backward(dprobs, p, g, tr.route_cache)
        dx, dg, db = k.layernorm_backward(du, tr.ln_cache, p["tree.ln.g"][level])
        g["tree.ln.g"][level] += dg
        g["tree.ln.b"][level] += db
        dr[tr.tokens] += dx
    b, t = x.shape
    de = mixer_backward(dr.reshape(b, t, cfg.d_model), p, g, mix_cache, k)  # (B, T, D)
    k.embedding_backward(g["tok_emb"], x.reshape(-1), de.reshape(b * t, cfg.d_model))
    g["pos_emb"][:t] += de.sum(axis=0)


def head_loss(p, r, y_flat, k: KernelSet = NUMPY_KERNELS) -> np.ndarray:
    """Per-token cross-entropy from a residual stream r (N, D) (used to ablate agents)."""
    f, _ = k.layernorm_forward(r, p["ln_f.g"], p["ln_f.b"])
    return token_losses(f @ p["head.w"] + p["head.b"], y_flat)
