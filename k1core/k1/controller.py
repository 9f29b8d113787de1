"""Autonomy: a parameter controller, a stopping rule and diagnostics with corrective actions.

Runs on every probe (every `trust_interval` steps). Diagnostics and stopping run in both phases;
the parameter controller only adapts in phase 2. Each probe is a fresh random batch, so the rules
below (but divergence) read an exponential moving average of the probe loss: the minimum of raw
noisy probes is biased low, which made "no new best" and "three rises" fire on noise alone.
  divergence      probe loss not finite or > best x divergence_factor -> restore the best
                  weights, halve the lr scale; a second divergence stops training
  instability     probe loss rose on 3 consecutive probes -> lr scale x 0.7
  plateau         no new best for patience/2 probes -> one more agent updated per step (top-K + 1)
                  and an exploration boost (in phase 2)
  trust collapse  mean trust < 0.1 -> trust reset to its initial value, exploration boost
  bloat           max_agents_soft agents or more -> the next structural op is a prune
  stop            no new best probe loss for `patience` probes (or a second divergence)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Controller:
    top_k: int
    patience: int
    divergence_factor: float
    max_agents_soft: int
    lr_scale: float = 1.0
    explore_boost: float = 0.0
    force_prune: bool = False
    best: float = math.inf
    since_best: int = 0
    rises: int = 0
    divergences: int = 0
    last: float = math.inf
    smoothed: float = math.inf  # EMA of the probe loss
    smoothing: float = 0.3  # weight of the newest probe in the EMA
    history: list = field(default_factory=list)

    def observe(self, step: int, probe_loss: float, mean_trust: float | None, n_agents: int, adapt: bool) -> list[dict]:
        """Diagnose the latest probe; returns events, each with the action taken ("stop" ends training)."""
        events = []

        def event(kind: str, action: str, **extra):
            events.append({"step": step, "type": "diagnostic", "kind": kind, "action": action,
                           "probe_loss": probe_loss, **extra})

        if not math.isfinite(probe_loss) or probe_loss > self.best * self.divergence_factor:
            self.divergences += 1
            self.lr_scale *= 0.5
            event("divergence", "restore_best", lr_scale=self.lr_scale)
            if self.divergences >= 2:
                events.append({"step": step, "type": "stop", "reason": "divergence"})
            return events
        a = self.smoothing
        self.smoothed = probe_loss if math.isinf(self.smoothed) else (1 - a) * self.smoothed + a * probe_loss
        self.rises = self.rises + 1 if self.smoothed > self.last else 0
        self.last = self.smoothed
        if self.smoothed < self.best:
            self.best, self.since_best = self.smoothed, 0
        else:
            self.since_best += 1
        if self.rises >= 3:
            self.lr_scale = max(0.1, self.lr_scale * 0.7)
            self.rises = 0
            event("instability", "lower_lr", lr_scale=self.lr_scale)
        if adapt and self.since_best and self.since_best % max(1, self.patience // 2) == 0:
            self.top_k += 1
            self.explore_boost = min(0.2, self.explore_boost + 0.05)
            event("plateau", "raise_top_k_and_exploration", top_k=self.top_k, explore_boost=self.explore_boost)
        if mean_trust is not None and mean_trust < 0.1:  # None: no tree, no trust
            self.explore_boost = min(0.2, self.explore_boost + 0.05)
            event("trust_collapse", "reset_trust", mean_trust=mean_trust)
        if n_agents >= self.max_agents_soft and not self.force_prune:
            self.force_prune = True
            event("bloat", "force_prune", agents=n_agents)
        if self.since_best >= self.patience:
            events.append({"step": step, "type": "stop", "reason": "patience", "best": self.best})
        self.explore_boost *= 0.9  # boosts fade unless renewed
        return events

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "history"}

    def load_state_dict(self, s: dict) -> None:
        self.__dict__.update(s)
