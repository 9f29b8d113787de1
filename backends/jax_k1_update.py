"""K-1's update in JAX: top-K credit, global-norm clipping and AdamW over the selected parameters.

The traced twin of K1SelfLearningLM.credit_and_update (k1core/k1/credit.py, k1core/optim.py), so
the whole training step (forward, backward, credit, optimizer) is one compiled program:
  responsibility_a = ||grad of agent a's rows|| x (tokens through a) / N
  selected         = the top_k alive agents by responsibility x (1 + trust), score > 0, ties in slot
                     order (a stable sort, as select_top_k)
  clip             = the global norm of the shared parameters' and the selected rows' gradients
  AdamW            = decoupled decay on the decayed names only; unselected agent rows keep their
                     values and moments.
trust, the alive mask, top_k, the lr and the bias corrections are arguments, so controller changes
and the lr schedule never recompile. The parameters travel as the ParamStore's flat buffers
(values, Adam m and v), cut into named views inside the program by static offsets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from backends.jax_k1_network import Layout, loss_terms
from backends.jax_layers import adamw_array, clip_scale
from k1core.k1.credit import AGENT_ARRAYS
from k1core.lazy import require
from k1core.optim import AdamWConfig
from k1core.params import ParamStore

jax = require("jax", "jax")
jnp = jax.numpy


@dataclass(frozen=True)
class FlatSpec:
    """The static side of the update: the flat buffer's named arrays and the optimizer constants."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    decayed: tuple[bool, ...]  # decoupled weight decay applies to this array
    agent_rows: tuple[bool, ...]  # stacked per agent slot: top-K credit picks its rows
    capacity: int
    optim: AdamWConfig

    @classmethod
    def of(cls, params: ParamStore, decay, capacity: int, has_tree: bool, optim: AdamWConfig) -> "FlatSpec":
        names = tuple(params.shapes)
        return cls(names, tuple(params.shapes[n] for n in names),
                   tuple(bool(decay(n, params.shapes[n])) for n in names),
                   tuple(has_tree and n in AGENT_ARRAYS for n in names), capacity, optim)

    def split(self, flat) -> dict:
        """Named arrays of a flat buffer (P,): static slices, no copy in the compiled program."""
        out, pos = {}, 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            out[name] = flat[pos:pos + size].reshape(shape)
            pos += size
        return out

    def join(self, arrays: dict):
        """The flat buffer (P,) of named arrays, in the ParamStore's order."""
        return jnp.concatenate([arrays[name].reshape(-1) for name in self.names])


def responsibility(g: dict, paths, capacity: int):
    """(capacity,) gradient norm of each slot's agent rows times its share of the N tokens.

    paths (levels, N): slot of each token per level, -1 where its path has ended."""
    grad_sq = sum(jnp.square(g[name].reshape(capacity, -1)).sum(axis=1) for name in AGENT_ARRAYS)
    tokens = jnp.zeros(capacity, grad_sq.dtype).at[jnp.where(paths >= 0, paths, capacity)].add(1.0, mode="drop")
    return jnp.sqrt(grad_sq) * tokens / paths.shape[1]


def top_k_selected(resp, trust, alive, top_k):
    """(capacity,) bool: the top_k alive slots by resp x (1 + trust) with a positive score; among
    equal scores the lower slot wins (a stable descending sort, as k1core.k1.credit.select_top_k)."""
    score = jnp.where(alive, resp * (1.0 + trust), 0.0)
    order = jnp.argsort(-score, stable=True)
    rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))
    return (rank < top_k) & (score > 0)


def update_masks(selected, spec: FlatSpec) -> dict:
    """Per name: which elements this step updates (broadcastable to the array)."""
    masks = {}
    for name, shape, rows in zip(spec.names, spec.shapes, spec.agent_rows):
        masks[name] = selected.reshape((spec.capacity,) + (1,) * (len(shape) - 1)) if rows else jnp.array(True)
    return masks


def clipped_adamw(p: dict, g: dict, m: dict, v: dict, masks: dict, lr, bc1, bc2, spec: FlatSpec):
    """Clip the masked gradients to global norm <= grad_clip, then AdamW (k1core.optim.adamw_update)
    on the masked elements; the rest keep their values and moments. Returns (p, m, v)."""
    c = spec.optim
    norm = jnp.sqrt(sum(jnp.where(masks[n], jnp.square(g[n]), 0.0).sum() for n in spec.names))
    scale = clip_scale(norm, c)
    out_p, out_m, out_v = {}, {}, {}
    for name, decayed in zip(spec.names, spec.decayed):
        pn, mn, vn = adamw_array(p[name], g[name] * scale, m[name], v[name], lr, bc1, bc2, decayed, c)
        keep = masks[name]
        out_p[name], out_m[name], out_v[name] = (jnp.where(keep, new, old) for new, old in
                                                 ((pn, p[name]), (mn, m[name]), (vn, v[name])))
    return out_p, out_m, out_v


def train_step(p_flat, m_flat, v_flat, tree, x, y, eps, explore_u, column_u, trust, alive, top_k, lr, bc1, bc2,
               layout: Layout, spec: FlatSpec):
    """One whole K-1 step on flat buffers (P,): loss, gradients, top-K credit, clipping, AdamW.

    trust (capacity,) float32, alive (capacity,) bool, top_k int32; lr, bc1 = 1 - beta1^t and
    bc2 = 1 - beta2^t float32 scalars from the host; the rest as loss_terms.

    Returns (p, m, v) updated, and the loss terms' aux plus `selected` (capacity,) bool."""
    p = spec.split(p_flat)
    (_, aux), g = jax.value_and_grad(loss_terms, has_aux=True)(p, tree, x, y, eps, explore_u, column_u, layout)
    if layout.use_tree:
        selected = top_k_selected(responsibility(g, aux["paths"], spec.capacity), trust, alive, top_k)
    else:  # the ablation has no agents: every parameter is shared
        selected = jnp.zeros(spec.capacity, dtype=bool)
    p, m, v = clipped_adamw(p, g, spec.split(m_flat), spec.split(v_flat), update_masks(selected, spec),
                            lr, bc1, bc2, spec)
    return spec.join(p), spec.join(m), spec.join(v), aux | {"selected": selected}


jit_train_step = jax.jit(train_step, static_argnames=("layout", "spec"))
