"""K-1 on JAX: the whole training step (forward, loss, every gradient, top-K credit, clipping and
the AdamW update) runs as one compiled XLA program (backends/jax_k1_update.py).

Generation's logits come from a second compiled program (the same forward, greedy routing, a window
of fixed length `context`). The host keeps the rest as the NumPy model's code on the host
parameters: usage recording, trust probes, plasticity, snapshots, the controller and evaluation.
The host ParamStore and AdamW moments stay the truth between steps (they go in and come back each
step), and keep their capacity-padded NumPy layout, so checkpoints move between backends and
structural edits (grow, prune, merge, reorganize) change values, never shapes.

A compile happens only for a new `Layout` (a depth gaining agents past a power of two) or
batch shape, never for a routing change; compiles are counted and timed apart from the
steady-state step (`compiles`, `compile_seconds`).
Exploration draws come from the model's rng like NumPy's but in a different order, so with
exploration on the two backends take different random detours; with it off they match.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from backends.jax_k1_network import Layout, TreeArrays, jit_loss_and_grad, jit_next_logits
from backends.jax_k1_update import FlatSpec, jit_train_step
from k1core.errors import UserError
from k1core.k1.config import K1Config
from k1core.k1.model import K1SelfLearningLM
from k1core.lazy import require

jax = require("jax", "jax")
# Room for agents at a depth opened after the start begins at 8, so the splits that open it (two
# agents each) compile once, not again at 4 and 8 agents; each spare row costs one block per step.
NEW_DEPTH_ROWS = 8
# Generation sends one token through the tree: blocks of one cell, so each level gathers the weights
# of that token's agent (and of one empty block), not 64-row blocks
GENERATION_BLOCK = 1


@dataclass
class RoutedLevel:
    """The routing fields of k1core.k1.network.LevelTrace that credit and usage read."""

    tokens: np.ndarray  # (n,) flat token indices at this level
    agent: np.ndarray  # (n,) slot of each token's agent
    parent: np.ndarray | None  # (n,) parent slot (None at the root)
    probs: np.ndarray | None  # (n, max_children) parent's gate distribution (None at the root)


@dataclass
class RoutedStep:
    """What K1SelfLearningLM.credit_and_update reads of a forward pass, as computed on the device."""

    ce: float
    per_token: np.ndarray  # (N,) cross-entropy per token
    paths: np.ndarray  # (N, max_depth) slot per level, -1 after the leaf
    levels: list[RoutedLevel]


def power_of_two(n: int) -> int:
    """Smallest power of two >= max(n, 1)."""
    return 1 << max(0, int(n) - 1).bit_length()


def tree_arrays(tree, rows: dict[int, int]) -> tuple[TreeArrays, tuple[int, ...]]:
    """The tree as fixed-shape int32 arrays, and the room S_l for agents at depths l >= 1.

    `rows` (depth -> S_l) is raised to the power of two that fits the depth's agents and never
    lowered, so a prune or move that empties rows reuses the compiled step."""
    table, counts = tree.children_table()
    row = np.zeros(tree.capacity, dtype=np.int32)
    level_slots, sizes = [], []
    for depth in range(1, int(tree.depth[tree.alive].max()) + 1):
        slots = np.flatnonzero(tree.alive & (tree.depth == depth))
        size = rows[depth] = max(rows.get(depth, NEW_DEPTH_ROWS), power_of_two(len(slots)))
        row[slots] = np.arange(len(slots))
        level_slots.append(np.pad(slots, (0, size - len(slots))).astype(np.int32))  # spare rows: the root, no tokens
        sizes.append(size)
    arrays = TreeArrays(np.maximum(table, 0).astype(np.int32), counts.astype(np.int32), row, tuple(level_slots))
    return arrays, tuple(sizes)


def routed_step(aux: dict, max_depth: int) -> RoutedStep:
    """Host copy of the step's routing; levels end at the first one no token reached (as NumPy's)."""
    on_device = np.asarray(aux["paths"])  # (levels, N)
    n = on_device.shape[1]
    paths = np.full((n, max_depth), -1, dtype=np.int64)
    if on_device.shape[0] == 0:  # the no-tree ablation routes nothing
        return RoutedStep(float(aux["ce"]), np.asarray(aux["per_token"], dtype=np.float64), paths, [])
    levels = [RoutedLevel(np.arange(n), np.zeros(n, dtype=np.int64), None, None)]
    paths[:, 0] = 0
    for level in range(1, on_device.shape[0]):
        tokens = np.flatnonzero(on_device[level] >= 0)
        if tokens.size == 0:
            break
        paths[tokens, level] = on_device[level, tokens]
        probs = np.asarray(aux["probs"][level - 1])[tokens]
        levels.append(RoutedLevel(tokens, paths[tokens, level], paths[tokens, level - 1], probs))
    return RoutedStep(float(aux["ce"]), np.asarray(aux["per_token"], dtype=np.float64), paths, levels)


class JaxK1(K1SelfLearningLM):
    """K1SelfLearningLM whose training step is one jitted XLA program."""

    def __init__(self, cfg: K1Config, block: int = 64, update_on_device: bool = True):
        if cfg.dtype != "float32":
            raise UserError("the jax backend runs K-1 in float32 (set dtype=float32 or use --backend numpy)")
        super().__init__(cfg)
        # depth -> S_l, only ever grown; the initial tree's depths start at their own agent counts
        depths, counts = np.unique(self.tree.depth[self.tree.alive], return_counts=True)
        self.rows = {int(d): power_of_two(c) for d, c in zip(depths, counts) if d > 0}
        self.block = block
        self.generation_block = GENERATION_BLOCK
        # False: only loss and gradients are compiled; credit, clipping and AdamW run on the host
        # (the NumPy model's code over the selected rows only: measured faster on a 2-core CPU)
        self.update_on_device = update_on_device
        self.spec = FlatSpec.of(self.params, self.opt.decay, cfg.capacity, cfg.use_tree, self.opt.cfg)
        self.programs: dict[tuple, object] = {}  # (kind, Layout, batch shape) -> compiled program
        self.compile_seconds: dict[str, float] = {}

    @property
    def compiles(self) -> int:
        """Programs this model has compiled: training steps, gradients, generation (one per layout and shape)."""
        return len(self.programs)

    def train_step(self, x, y) -> float:
        """The whole step (forward, backward, top-K credit, clipping, AdamW) as one compiled program.

        The host ParamStore and AdamW moments stay the truth between steps (probes, plasticity,
        snapshots and checkpoints edit them in place): they go in as flat buffers and the updated
        ones are copied back. The host then records usage from the step's routing.
        (With update_on_device off: compiled loss and gradients, then the host's credit_and_update.)"""
        eps = self.exploration()
        if not self.update_on_device:
            step = self.gradients(x, y, eps)
            self.credit_and_update(step)
            return step.ce
        layout, inputs = self._inputs(x, y, eps)
        opt = self.opt
        bc1, bc2 = opt.advance()
        args = (self.params.flat, opt.m, opt.v, *inputs, self.trust.astype(np.float32), self.tree.alive,
                np.int32(self.controller.top_k), np.float32(self.learning_rate()), np.float32(bc1), np.float32(bc2))
        p, m, v, aux = self._program("train_step", jit_train_step, args, layout, np.shape(x), spec=self.spec)(*args)
        for host, new in ((self.params.flat, p), (opt.m, m), (opt.v, v)):
            np.copyto(host, new)
        step = routed_step(aux, self.cfg.max_depth)
        self.record_step(step, np.flatnonzero(np.asarray(aux["selected"])) if self.cfg.use_tree else None)
        return step.ce

    def gradients(self, x, y, eps: float) -> RoutedStep:
        """Loss and every gradient (into params.g) on the device, nothing updated; returns the step's
        routing. (The gradients alone, for equivalence tests and for timing the host-side update.)"""
        layout, inputs = self._inputs(x, y, eps)
        args = (self.params.p, *inputs)
        (_, aux), grads = self._program("gradients", jit_loss_and_grad, args, layout, np.shape(x))(*args)
        for name, g in grads.items():
            self.params.g[name][...] = g
        return routed_step(aux, self.cfg.max_depth)

    def next_logits_fn(self):
        """Generation's logits from a compiled forward: the weights and tree go to the device once per
        call; the window is right-padded to `context`, so one program serves every prompt length."""
        context = self.cfg.context
        tree, slots = tree_arrays(self.tree, self.rows) if self.cfg.use_tree else (None, ())
        layout = Layout.of(self.cfg, slots, self.generation_block)
        weights = {name: jax.numpy.asarray(value) for name, value in self.params.p.items()}

        def next_logits(ids: np.ndarray) -> np.ndarray:
            window = np.zeros((1, context), dtype=np.int32)
            window[0, :ids.size] = ids[-context:]
            args = (weights, tree, window, np.int32(min(ids.size, context) - 1))
            return np.asarray(self._program("next_logits", jit_next_logits, args, layout, window.shape)(*args))
        return next_logits

    def _inputs(self, x, y, eps: float) -> tuple[Layout, tuple]:
        """The step's layout and its data arguments: (tree, x, y, eps, explore_u, column_u)."""
        x, y = np.asarray(x, dtype=np.int32), np.asarray(y, dtype=np.int32)
        tree, slots = tree_arrays(self.tree, self.rows) if self.cfg.use_tree else (None, ())
        n, levels = x.size, 1 + len(slots)
        if eps > 0:  # drawn only when exploring, so eps = 0 leaves the rng exactly where NumPy leaves it
            explore_u, column_u = self.rng.random((2, levels, n), dtype=np.float32)
        else:
            explore_u = column_u = np.zeros((levels, n), dtype=np.float32)
        return Layout.of(self.cfg, slots, self.block), (tree, x, y, np.float32(eps), explore_u, column_u)

    def _program(self, kind: str, fn, args, layout: Layout, shape: tuple, **static):
        """The compiled `kind` program for this layout and batch `shape`; compiled (and timed) the first time."""
        key = (kind, layout, shape)
        if key not in self.programs:
            start = time.perf_counter()
            self.programs[key] = fn.lower(*args, layout=layout, **static).compile()
            label = f"{kind} rows={layout.rows} block={layout.block} batch={shape}"
            self.compile_seconds[label] = time.perf_counter() - start
        return self.programs[key]

    def stats(self) -> dict:
        return super().stats() | {"backend": "jax", "compiles": self.compiles,
                                  "compile_seconds": sum(self.compile_seconds.values())}
