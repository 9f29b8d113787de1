"""K1SelfLearningLM: the K-1 network plus trust, top-K credit, plasticity and autonomy.

Phase 1 (steps < cfg.phase2_step): fixed tree; routing, trust and top-K credit run.
Phase 2: every `plasticity_interval` steps one structural op (grow, prune, merge, reorganize in
rotation, the first with a candidate) is applied under a snapshot and validated; the parameter
controller adapts lr scale, top-K and exploration.
"""
from __future__ import annotations

import copy
import dataclasses
from collections import Counter

import numpy as np

from k1core.errors import UserError
from k1core.k1 import plasticity as ops
from k1core.k1.agents import agent_param_count
from k1core.k1.config import K1Config, config_from_mapping
from k1core.k1.controller import Controller
from k1core.k1.credit import UpdateIndex, responsibility, select_top_k
from k1core.k1.mixer import mixer_flops_per_token
from k1core.k1.network import backward, forward, init_params
from k1core.k1.routing import exploration_rate
from k1core.k1.snapshots import restore_snapshot, take_snapshot, validated_change
from k1core.k1.tree import Tree
from k1core.k1.trust import ablation_gain, trust_histogram, trust_update
from k1core.k1.usage import UsageTracker
from k1core.kernels import NUMPY_KERNELS, KernelSet
from k1core.optim import AdamW, AdamWConfig, decay_named, lr_at
from k1core.params import ParamStore
from k1core.sampling import generate_ids, mean_loss

STRUCTURAL_OPS = ("grow", "prune", "merge", "reorganize")
EVENT_TYPES = STRUCTURAL_OPS + ("rollback",)
TABU_STEPS = 150  # after an op on an agent, kept or rolled back, that op leaves the agent alone this long
TRAFFIC_WINDOW = 100  # steps within which an agent must have seen a token to count as "receiving traffic"
SIMILARITY_MEMORY = 256  # sibling-pair similarities kept as merge's reference distribution
DECAYED = ("tok_emb", "pos_emb", "mix.w_qkv", "mix.w_out", "agents.w1", "agents.w2", "router.w", "head.w")


class K1SelfLearningLM:
    """The K-1 language model; implements k1core.model_api.LanguageModel."""

    def __init__(self, cfg: K1Config | dict | None = None, kernels: KernelSet = NUMPY_KERNELS):
        if isinstance(cfg, dict):
            cfg = config_from_mapping(cfg)
        self.cfg = cfg = cfg or K1Config()
        self.k = kernels
        self.rng = np.random.default_rng(cfg.seed)
        self.tree = Tree.balanced(cfg.tree_levels, cfg.branching, cfg.capacity, cfg.max_depth, cfg.max_children)
        init = init_params(cfg, self.rng)
        if cfg.use_tree:  # free slots and gate columns without a child start (and stay) at zero
            dead = ~self.tree.alive
            for name in ("agents.w1", "agents.b1", "agents.w2", "agents.b2"):
                init[name][dead] = 0.0
            for n in range(cfg.capacity):
                k = len(self.tree.children[n])
                init["router.w"][n][:, k:] = 0.0
                init["router.b"][n][k:] = 0.0
        self.params = ParamStore(init, dtype=np.dtype(cfg.dtype))
        self.opt = AdamW(self.params, AdamWConfig(lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps,
                                                  total_steps=cfg.total_steps, weight_decay=cfg.weight_decay,
                                                  grad_clip=cfg.grad_clip), decay=decay_named(DECAYED),
                        update=kernels.adamw_update)
        self.index = UpdateIndex(self.params, cfg.capacity, cfg.use_tree)
        self.trust = np.where(self.tree.alive, cfg.trust_initial, 0.0)
        self.usage = UsageTracker(cfg.capacity, cfg.max_depth)
        self.usage.share[self.tree.alive] = 1.0 / cfg.branching
        self.leaf_loss = np.zeros(cfg.capacity)
        self.streak = np.zeros(cfg.capacity, dtype=np.int64)
        self.move_streak = np.zeros((cfg.capacity, cfg.capacity), dtype=np.int64)  # probes a move c -> q held
        self.controller = Controller(cfg.top_k_agents, cfg.patience, cfg.divergence_factor, cfg.capacity,
                                     enabled=cfg.controller)
        self.born = np.zeros(cfg.capacity, dtype=np.int64)  # step each slot's agent was created at
        self.similarities: list[float] = []  # recent sibling-pair output cosines: merge's reference
        self.step = 0
        self.probe_fwd = None
        self.best_snapshot = None
        self.control_set: list = []  # the controller's fixed held-out batches
        self.control_history: list[list] = []  # [step, mean loss on control_set] per paired evaluation
        self.op_cursor = 0
        self.tabu: dict[tuple[str, int], int] = {}
        self.closest_similarity = None  # cosine of the most alike sibling pair at the last merge search
        self.events = Counter()
        self.kept = Counter()
        self.history: list[dict] = []
        self.updated_fraction_sum, self.updated_fraction_last = 0.0, 1.0
        self.last_selected = None  # agent slots top-K credit updated at the last step

    # --- LanguageModel ------------------------------------------------------------------
    def train_step(self, x, y) -> float:
        fwd = forward(self.params.p, self.tree, self.cfg, x, y, self.exploration(), self.rng, k=self.k)
        self.params.zero_grad()
        backward(self.params.p, self.params.g, self.cfg, fwd, self.k)
        self.credit_and_update(fwd)
        return fwd.ce

    def exploration(self) -> float:
        """This step's routing exploration rate: the decaying schedule plus the controller's boost."""
        cfg = self.cfg
        return min(1.0, exploration_rate(self.step, cfg.explore_start, cfg.explore_end, cfg.explore_decay_steps)
                   + self.controller.explore_boost)

    def credit_and_update(self, fwd) -> None:
        """Given gradients in params.g and the step's routing `fwd`: top-K credit, usage, clipping and
        the AdamW update (shared by every backend that computes the gradients its own way)."""
        cfg, ctl = self.cfg, self.controller
        ranges = slots = None
        if cfg.use_tree:
            if cfg.dense_updates:
                slots = self.tree.nodes()
            else:
                resp = responsibility(self.params.g, fwd, cfg.capacity)
                slots = select_top_k(resp, self.trust, self.tree.alive, ctl.top_k)
            ranges = self.index.select(slots)
        self.opt.clip_grad(ranges)
        self.opt.step(self.learning_rate(), ranges)
        self.record_step(fwd, slots)

    def learning_rate(self) -> float:
        """This step's lr: the warmup + cosine schedule times the controller's scale."""
        return lr_at(self.step, self.opt.cfg) * self.controller.lr_scale

    def record_step(self, fwd, slots) -> None:
        """Bookkeeping after a step's update: usage, the updated fraction, the step count.

        `slots`: the agents top-K credit selected (None without a tree); kept as `last_selected`."""
        if self.cfg.use_tree:
            self.usage.record(fwd, self.step, self.tree.parent, self.tree.alive)
            self.updated_fraction_last = self._updated_params(len(slots)) / self.param_count()
        self.last_selected = slots
        self.updated_fraction_sum += self.updated_fraction_last
        self.step += 1

    def loss(self, x, y) -> float:
        return forward(self.params.p, self.tree, self.cfg, x, y, k=self.k).ce

    def evaluate(self, batches) -> float:
        return mean_loss(self.loss, batches)

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k=None, seed: int = 0):
        return generate_ids(self.next_logits_fn(), prompt_ids, max_new_tokens, temperature, top_k, seed,
                            self.cfg.context)

    def next_logits_fn(self):
        """ids (T,) with T <= context -> logits (V,) of the byte after them, with the current weights
        and tree (generation asks once per call, so a backend can prepare the weights once)."""
        return lambda ids: forward(self.params.p, self.tree, self.cfg, ids[None, :], None, k=self.k).logits[-1]

    def on_step_end(self, step: int, probe) -> list[dict]:
        cfg = self.cfg
        events: list[dict] = []
        phase2 = cfg.use_tree and self.step >= cfg.phase2_step
        if self.step % cfg.trust_interval == 0:
            events += self._probe(step, probe())
        if cfg.controller and self.step % cfg.control_interval == 0:
            events += self._control(step, probe, adapt=phase2)
        if phase2 and cfg.plasticity and self.step % cfg.plasticity_interval == 0 and self.probe_fwd is not None:
            events += self._structural_step(step, probe())
        for e in events:
            self.events[e["type"]] += 1
            if e["type"] in STRUCTURAL_OPS and e["kept"]:
                self.kept[e["type"]] += 1
        return events

    # --- probes: trust, high-loss clusters, controller -----------------------------------
    def _probe(self, step: int, batch) -> list[dict]:
        cfg, tree = self.cfg, self.tree
        x, y = batch
        fwd = forward(self.params.p, tree, cfg, x, y, k=self.k)
        if cfg.use_tree:
            gain, count = ablation_gain(self.params.p, fwd, y.reshape(-1), cfg.capacity, self.k)
            self.trust = trust_update(self.trust, tree.alive, gain, count, cfg.trust_rate, cfg.trust_scale,
                                      cfg.trust_decay)
            self.leaf_loss, high = ops.leaf_losses(fwd, cfg.capacity, cfg.grow_loss_ratio)
            self.streak = np.where(high, self.streak + 1, 0)
            if cfg.plasticity and self.step >= cfg.phase2_step:
                clears = ops.reorganize_evidence(self.params.p, tree, fwd, cfg.reorganize_margin)
                self.move_streak = np.where(clears, self.move_streak + 1, 0)
            self.probe_fwd = fwd
        mean_trust = self.mean_trust() if cfg.use_tree else None
        events = self.controller.observe(step, fwd.ce, mean_trust)
        for e in events:
            if e.get("action") == "restore_best" and self.best_snapshot is not None:
                restore_snapshot(self, self.best_snapshot)
            elif e.get("action") == "reset_trust":
                self.trust = np.where(tree.alive, cfg.trust_initial, 0.0)
        self.history.append({"step": int(step), "agents": self.agent_count(), "mean_trust": self.mean_trust(),
                             "probe_loss": float(fwd.ce), "lr_scale": self.controller.lr_scale,
                             "top_k": self.controller.top_k})
        return events

    def _control(self, step: int, probe, adapt: bool) -> list[dict]:
        """The controller's paired evaluation: mean loss on the same held-out batches every time
        (drawn from the probe data at the first evaluation), and the weights kept when it is the best."""
        if not self.control_set:
            self.control_set = [probe() for _ in range(self.cfg.control_batches)]
        loss = self.evaluate(self.control_set)
        if loss < self.controller.best_eval:
            self.best_snapshot = take_snapshot(self)
        self.control_history.append([int(step), float(loss)])
        return self.controller.judge(step, loss, adapt)

    # --- structural plasticity -----------------------------------------------------------
    def _structural_step(self, step: int, val_batch) -> list[dict]:
        """Apply the next structural op that has a candidate, under snapshot + validation."""
        order = list(STRUCTURAL_OPS[self.op_cursor:] + STRUCTURAL_OPS[:self.op_cursor])
        for op in order:
            cand = self._candidate(op)
            if cand is None or self.tabu.get((op, cand["agent"]), -1) > step:
                continue
            self.op_cursor = (STRUCTURAL_OPS.index(op) + 1) % len(STRUCTURAL_OPS)
            vx, vy = val_batch
            events = validated_change(self, op, cand, lambda: self._apply(op, cand),
                                      lambda: self.loss(vx, vy), self.cfg.keep_tolerance, step)
            if events[0]["kept"]:
                self.probe_fwd = None  # the tree changed: wait for a fresh probe
            # a rolled-back change is not retried at once, and a kept one is given time to show its
            # effect before the same op may touch that agent again (a moved agent is not moved back)
            self.tabu[(op, cand["agent"])] = step + TABU_STEPS
            return events
        return []

    def _candidate(self, op: str):
        cfg, p, tree, fwd = self.cfg, self.params.p, self.tree, self.probe_fwd
        if op == "prune":
            old_enough = self.step - self.born >= cfg.prune_min_age
            return ops.prune_candidate(tree, self.trust, self.usage.share, cfg.prune_trust, cfg.prune_usage,
                                       old_enough)
        if op == "merge":
            pairs = ops.sibling_similarities(p, tree, fwd)
            reference = np.array(self.similarities)
            self.similarities = (self.similarities + [sim for _, _, sim in pairs])[-SIMILARITY_MEMORY:]
            pair = ops.merge_candidate(pairs, reference, cfg.merge_z, cfg.merge_similarity, self.usage.share)
            self.closest_similarity = max((sim for _, _, sim in pairs), default=None)
            return pair
        if op == "grow":
            return ops.grow_candidate(tree, self.streak, self.leaf_loss, cfg.grow_patience, cfg.max_agents_soft)
        return ops.reorganize_candidate(p, tree, fwd, self.move_streak, cfg.reorganize_patience)

    def _apply(self, op: str, cand: dict) -> None:
        p, tree = self.params.p, self.tree
        if op == "grow":
            children = ops.apply_grow(p, tree, rng=self.rng, **cand)
            for child in children:
                self.trust[child] = self.cfg.trust_initial
                self.born[child] = self.step
                self.usage.reset_slot(child, 1.0 / len(tree.children[cand["agent"]]))
            self.streak[cand["agent"]] = 0
            self._reset_moments(children, [cand["agent"]])
        elif op == "prune":
            parent = int(tree.parent[cand["agent"]])
            ops.apply_prune(p, tree, **cand)
            self.trust[cand["agent"]] = 0.0
            self._reset_moments([cand["agent"]], [parent])
        elif op == "merge":
            parent = int(tree.parent[cand["agent"]])
            ops.apply_merge(p, tree, **cand)
            self.trust[cand["other"]] = 0.0
            self.usage.share[cand["agent"]] += self.usage.share[cand["other"]]
            self._reset_moments([cand["agent"], cand["other"]], [parent])
        else:
            ops.apply_reorganize(p, tree, **cand)
            self.move_streak[cand["agent"]] = 0
            self._reset_moments([], [cand["old_parent"], cand["new_parent"]])

    def _reset_moments(self, agent_slots, router_slots) -> None:
        """Zero Adam moments of rewritten agent rows and of routers whose columns moved."""
        ps, opt = self.params, self.opt
        for name, slots in (("agents.w1", agent_slots), ("agents.b1", agent_slots), ("agents.w2", agent_slots),
                            ("agents.b2", agent_slots), ("router.w", router_slots), ("router.b", router_slots)):
            for buf in (opt.m, opt.v):
                ps._view(buf, name)[list(slots)] = 0.0

    # --- structure state (what a snapshot must restore besides params and optimizer) --------
    def structure_state(self) -> dict:
        return {"tree": self.tree.state_dict(), "trust": self.trust, "usage": self.usage.state_dict(),
                "leaf_loss": self.leaf_loss, "streak": self.streak, "move_streak": self.move_streak,
                "born": self.born}

    def load_structure_state(self, s: dict) -> None:
        self.tree = Tree.from_state(s["tree"])
        self.trust, self.leaf_loss, self.streak = s["trust"].copy(), s["leaf_loss"].copy(), s["streak"].copy()
        self.born, self.move_streak = s["born"].copy(), s["move_streak"].copy()
        self.usage.load_state_dict(s["usage"])

    # --- measurements --------------------------------------------------------------------
    def agent_count(self) -> int:
        return int(self.tree.alive.sum()) if self.cfg.use_tree else 0

    def mean_trust(self) -> float:
        return float(self.trust[self.tree.alive].mean()) if self.cfg.use_tree else 0.0

    def _router_params(self) -> int:
        kids = sum(len(self.tree.children[n]) for n in self.tree.nodes())
        return (self.cfg.d_model + 1) * kids

    def _shared_params(self) -> int:
        return sum(b - a for name, (a, b) in self.params.offsets.items()
                   if not name.startswith(("agents.", "router.")))

    def param_count(self) -> int:
        """Parameters of the live model (free agent slots and unused gate columns excluded)."""
        if not self.cfg.use_tree:
            return self.params.size
        per_agent = agent_param_count(self.cfg.d_model, self.cfg.d_hidden)
        return self._shared_params() + self._router_params() + self.agent_count() * per_agent

    def _updated_params(self, n_agents_updated: int) -> int:
        per_agent = agent_param_count(self.cfg.d_model, self.cfg.d_hidden)
        return self._shared_params() + self._router_params() + n_agents_updated * per_agent

    def flops_per_token(self) -> float:
        """3 x forward: mixer, the agents on the average path (+ their gates), head."""
        c = self.cfg
        fwd = mixer_flops_per_token(c.d_model, c.context) + 2 * c.d_model * c.vocab_size
        if c.use_tree:
            path = self.usage.mean_path_length() or c.tree_levels
            fwd += path * 2 * 2 * c.d_model * c.d_hidden + (path - 1) * 2 * c.d_model * c.branching
        return 3.0 * fwd

    def stats(self) -> dict:
        alive = self.tree.alive
        out = {
            "model": "k1", "step": self.step, "params": self.param_count(),
            "params_updated_fraction": self.updated_fraction_sum / max(1, self.step),
            "params_updated_fraction_last": self.updated_fraction_last,
            "flops_per_token": self.flops_per_token(), "use_tree": self.cfg.use_tree,
            "phase": 2 if self.step >= self.cfg.phase2_step and self.cfg.use_tree else 1,
            "lr_scale": self.controller.lr_scale, "top_k": self.controller.top_k,
            "history": list(self.history), "control_history": list(self.control_history),
        }
        if self.cfg.use_tree:
            nodes = self.tree.nodes()
            out |= {
                "agents": self.agent_count(),
                "traffic_fraction": self.usage.traffic_fraction(alive, self.step, TRAFFIC_WINDOW),
                "usage_per_agent": {str(n): int(self.usage.total[n]) for n in nodes},
                "share_per_agent": {str(n): round(float(self.usage.share[n]), 4) for n in nodes},
                "trust_per_agent": {str(n): round(float(self.trust[n]), 4) for n in nodes},
                "parent_per_agent": {str(n): int(self.tree.parent[n]) for n in nodes},
                "depth_histogram": self.usage.depth_hist[1:].tolist(),  # tokens whose path has 1, 2, ... agents
                "routing_entropy_bits": float(self.usage.entropy),
                "mean_trust": self.mean_trust(), "trust_histogram": trust_histogram(self.trust, alive),
                "events": {t: int(self.events[t]) for t in EVENT_TYPES},
                "events_kept": {t: int(self.kept[t]) for t in STRUCTURAL_OPS},
                "diagnostics": int(self.events["diagnostic"]),
                "closest_sibling_similarity": self.closest_similarity,
            }
        return out

    # --- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"config": dataclasses.asdict(self.cfg), "params": self.params.state_dict(),
                "opt": self.opt.state_dict(), "step": self.step, "rng": self.rng.bit_generator.state,
                "structure": copy.deepcopy(self.structure_state()),
                "controller": self.controller.state_dict(), "control_history": list(self.control_history),
                "control_set": [[np.asarray(x), np.asarray(y)] for x, y in self.control_set],
                "op_cursor": self.op_cursor, "similarities": list(self.similarities),
                "tabu": [[op, a, until] for (op, a), until in self.tabu.items()], "events": dict(self.events), "kept": dict(self.kept),
                "history": list(self.history), "updated_fraction": [self.updated_fraction_sum,
                                                                    self.updated_fraction_last]}

    def load_state_dict(self, state: dict) -> None:
        if state.get("config") != dataclasses.asdict(self.cfg):
            raise UserError("checkpoint was saved with a different K-1 config")
        self.params.load_state_dict(state["params"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
        self.load_structure_state(copy.deepcopy(state["structure"]))
        self.controller.load_state_dict(state["controller"])
        self.control_history = [list(r) for r in state["control_history"]]
        self.control_set = [(np.asarray(x), np.asarray(y)) for x, y in state["control_set"]]
        self.op_cursor = int(state["op_cursor"])
        self.similarities = [float(x) for x in state["similarities"]]
        self.tabu = {(op, int(a)): int(until) for op, a, until in state["tabu"]}
        self.events, self.kept = Counter(state["events"]), Counter(state["kept"])
        self.history = list(state["history"])
        self.updated_fraction_sum, self.updated_fraction_last = state["updated_fraction"]
        self.probe_fwd = None
