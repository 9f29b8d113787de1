"""K1Config: every knob of the K-1 model, validated once when the config is built."""
from __future__ import annotations

from dataclasses import dataclass, fields

from k1core.errors import UserError
from k1core.layers import check_heads


@dataclass(frozen=True)
class K1Config:
    # model shape
    vocab_size: int = 256
    context: int = 64
    d_model: int = 128
    n_heads: int = 4
    d_hidden: int = 128  # hidden width of each agent MLP
    use_tree: bool = True  # False = ablation: mixer + head only
    # hierarchy
    tree_levels: int = 3  # levels at start, root included: 1 + 4 + 16 = 21 agents
    branching: int = 4
    max_depth: int = 4  # grow may add one level below the initial leaves
    max_children: int = 6
    capacity: int = 32  # agent slots (stacked weight rows)
    # optimisation
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    total_steps: int = 1000
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    top_k_agents: int = 8  # agents updated per step (shared layers and gates always are)
    dense_updates: bool = False  # True = ablation: every alive agent is updated each step (no top-K credit)
    # routing
    explore_start: float = 0.2
    explore_end: float = 0.02
    explore_decay_steps: int = 600
    balance_coef: float = 0.01
    # trust
    trust_initial: float = 0.5
    trust_rate: float = 0.2  # EMA rate toward the measured target
    trust_scale: float = 0.01  # nats of improvement that map to target tanh(1) ~ 0.76
    trust_decay: float = 0.05  # per probe, for agents that saw no probe tokens
    trust_interval: int = 10
    # phase 2: plasticity and autonomy
    phase2_fraction: float = 0.5
    # grow, prune, merge and reorganize in phase 2. Off by default: over 3 seeds it did not pay at equal
    # time (full - frozen tree: +0.010 [-0.024, 0.043] nats at the default shape) and a step cost 7%
    # more (docs/k1.md, results/k1-ablation/plasticity-2000-reorganize-evidence/)
    plasticity: bool = False
    plasticity_interval: int = 15
    prune_trust: float = 0.3
    prune_usage: float = 0.6  # share of the parent's tokens, relative to an even split
    prune_min_age: int = 200  # steps an agent lives before prune may judge it (its trust must be measured)
    merge_similarity: float = 0.3  # floor on the cosine similarity of sibling outputs on a probe batch
    merge_z: float = 3.0  # and standard deviations above the mean similarity of sibling pairs so far
    grow_loss_ratio: float = 1.02  # leaf's probe loss vs the mean, by 2 standard errors: a high-loss cluster
    grow_patience: int = 2  # consecutive probes the cluster must stay high-loss
    reorganize_margin: float = 0.05  # preference gain needed to move an agent (by 2 standard errors)
    reorganize_patience: int = 3  # consecutive probes the gain must hold
    keep_tolerance: float = 0.0005  # nats a structural op may cost on the validation batch
    # controller and stopping
    # adapt the lr scale, top-K and exploration, restore and stop on evidence. Off by default: over 3
    # seeds at the default shape it took no action on any K-1 with a tree and did not pay at equal time
    # (frozen tree with - without: -0.004 [-0.036, 0.028] nats; docs/k1.md,
    # results/k1-ablation/default-2000/), while its paired evaluations cost 1.4% of the steps.
    # Off, the guards' diagnostics are still logged and nothing is adapted, restored or stopped
    controller: bool = False
    control_interval: int = 100  # steps between the controller's paired evaluations
    control_batches: int = 4  # fixed held-out batches of each paired evaluation
    patience: int = 8  # paired evaluations in a row that must show a plateau before "stop"
    divergence_factor: float = 1.5  # probe loss above best x factor = divergence
    max_agents_soft: int = 26  # grow (a split into 2) happens only when both children fit under this
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        def need(ok: bool, key: str, why: str):
            if not ok:
                raise UserError(f"k1 config: {key} {why} (got {getattr(self, key)!r})")

        kinds = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, kinds[f.type]) or (f.type != "bool" and isinstance(v, bool)):
                raise UserError(f"k1 config: {f.name} must be of type {f.type} (got {v!r})")
        for key in ("vocab_size", "context", "d_model", "n_heads", "d_hidden", "tree_levels", "branching",
                    "max_depth", "max_children", "capacity", "total_steps", "top_k_agents",
                    "trust_interval", "plasticity_interval", "control_interval", "control_batches", "patience",
                    "grow_patience", "reorganize_patience"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        check_heads(self.d_model, self.n_heads)
        need(self.max_depth >= self.tree_levels, "max_depth", "must be >= tree_levels")
        need(self.max_children >= self.branching, "max_children", "must be >= branching")
        n0 = sum(self.branching**i for i in range(self.tree_levels))
        need(self.capacity >= n0, "capacity", f"must hold the initial {n0} agents")
        for key in ("explore_start", "explore_end", "trust_initial", "trust_rate", "trust_decay",
                    "prune_trust", "prune_usage", "merge_similarity", "phase2_fraction"):
            need(0.0 <= getattr(self, key) <= 1.0, key, "must be in [0, 1]")
        for key in ("lr", "min_lr", "trust_scale", "divergence_factor"):
            need(getattr(self, key) > 0, key, "must be > 0")
        for key in ("weight_decay", "grad_clip", "balance_coef", "keep_tolerance", "reorganize_margin",
                    "warmup_steps", "explore_decay_steps", "prune_min_age", "merge_z"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        need(self.dtype in ("float32", "float64"), "dtype", "must be float32 or float64")

    @property
    def phase2_step(self) -> int:
        """First step of phase 2 (plasticity and autonomy)."""
        return int(round(self.phase2_fraction * self.total_steps))


# Names used by the published K-1 API, accepted as aliases of K1Config fields.
ALIASES = {"embed_dim": "d_model", "hidden_dim": "d_hidden", "hierarchy_depth": "tree_levels",
           "branching_factor": "branching", "learning_rate": "lr", "max_steps": "total_steps"}


def config_from_mapping(values: dict) -> K1Config:
    """K1Config from a plain dict (K1Config field names or the published aliases); unknown keys are errors."""
    known = {f.name for f in fields(K1Config)}
    out = {}
    for key, value in values.items():
        name = ALIASES.get(key, key)
        if name not in known:
            raise UserError(f"k1 config: unknown key {key!r}")
        out[name] = value
    return K1Config(**out)
