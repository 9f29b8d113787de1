"""Autonomy: a parameter controller, a stopping rule and diagnostics with corrective actions.

Two streams of evidence. Every `trust_interval` steps a probe reads one random held-out batch: its
loss swings by ~0.05 nats from batch to batch (default 12 x 64 bytes), so it only serves the two
guards that no noise explains. Every `control_interval` steps the model is evaluated on the same
few held-out batches (fixed at the first evaluation): successive evaluations are paired, so batch
difficulty cancels and what is left is the model's own step-to-step jitter (~0.005 nats at the
default shape). Instability, plateau and stop read only these evaluations, compare windows of
WINDOW of them, and act only on differences beyond the noise measured in the memory (the spread of
successive differences / sqrt 2, in which a trend cancels):
  divergence      probe loss not finite or > best probe-window mean x divergence_factor -> restore
                  the best weights, halve the lr scale; a second divergence stops training
  trust collapse  mean trust < 0.1 -> trust reset to its initial value, exploration boost
  instability     the last WINDOW evaluations lie more than RISE_Z standard errors above the WINDOW
                  before them -> lr scale x 0.7 (floor 0.1); the memory then refills
  plateau         even the optimistic (one-sided 95%) bound on the improvement of the last WINDOW
                  evaluations over the WINDOW before them is below MIN_GAIN nats -> one more agent
                  updated per step (top-K + 1, at most `max_top_k`), an exploration boost (phase 2)
  stop            the plateau shown on `patience` evaluations in a row: continuing is shown not to
                  help; within a fixed budget nothing else ends training early (or a second divergence)
No rule reads the agent count: grow only splits a leaf when both children fit under the size cap,
and prune acts on evidence (trust and traffic), so the cap never forces a prune.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

WINDOW = 8  # evaluations per window: the last WINDOW against the WINDOW before them
MEMORY = 48  # evaluations the noise is measured over
MIN_MEMORY = 3 * WINDOW  # evaluations needed before any test (noise from >= 23 differences)
RISE_Z = 6.0  # standard errors a rise must exceed (stationary noise: max 4.5 over 200,000 tests)
ONE_SIDED_95 = 1.645
MIN_GAIN = 0.01  # nats per window of evaluations below which continuing does not help
PROBE_WINDOW = 8  # random probes averaged for the divergence reference


def window_gap(losses) -> tuple[float, float]:
    """Mean of the last WINDOW losses minus the mean of the WINDOW before them, and its standard
    error from the per-evaluation noise (spread of successive differences / sqrt 2)."""
    h = np.asarray(losses, dtype=float)
    noise = np.diff(h).std(ddof=1) / math.sqrt(2)
    diff = float(h[-WINDOW:].mean() - h[-2 * WINDOW:-WINDOW].mean())
    return diff, float(noise * math.sqrt(2 / WINDOW))


@dataclass
class Controller:
    top_k: int
    patience: int
    divergence_factor: float
    max_top_k: int
    enabled: bool = True  # False: diagnostics are recorded but nothing is adapted, restored or stopped
    lr_scale: float = 1.0
    explore_boost: float = 0.0
    best_probe: float = math.inf  # best mean of PROBE_WINDOW random probes (divergence reference)
    probes: list = field(default_factory=list)  # the last PROBE_WINDOW random-probe losses
    divergences: int = 0
    evals: list = field(default_factory=list)  # the last MEMORY paired evaluations (mean loss)
    best_eval: float = math.inf
    plateau_streak: int = 0

    def _event(self, step: int, kind: str, action: str, **extra) -> dict:
        return {"step": step, "type": "diagnostic", "kind": kind,
                "action": action if self.enabled else "none", **extra}

    def observe(self, step: int, probe_loss: float, mean_trust: float | None) -> list[dict]:
        """The guards on a random probe: divergence and trust collapse ("stop" ends training)."""
        events: list[dict] = []
        if not math.isfinite(probe_loss) or probe_loss > self.best_probe * self.divergence_factor:
            if self.enabled:
                self.divergences += 1
                self.lr_scale *= 0.5
                self.probes.clear()
                self.evals.clear()
            events.append(self._event(step, "divergence", "restore_best", probe_loss=probe_loss,
                                      lr_scale=self.lr_scale))
            if self.divergences >= 2:
                events.append({"step": step, "type": "stop", "reason": "divergence"})
            return events
        self.probes = (self.probes + [float(probe_loss)])[-PROBE_WINDOW:]
        self.best_probe = min(self.best_probe, float(np.mean(self.probes)))
        if mean_trust is not None and mean_trust < 0.1:  # None: no tree, no trust
            if self.enabled:
                self.explore_boost = min(0.2, self.explore_boost + 0.05)
            events.append(self._event(step, "trust_collapse", "reset_trust", mean_trust=mean_trust))
        self.explore_boost *= 0.9  # boosts fade unless renewed
        return events

    def judge(self, step: int, eval_loss: float, adapt: bool) -> list[dict]:
        """Instability, plateau and stop on the latest paired evaluation (mean loss on the fixed
        batches); `adapt`: whether the plateau may raise top-K and exploration (phase 2)."""
        events: list[dict] = []
        self.evals = (self.evals + [float(eval_loss)])[-MEMORY:]
        self.best_eval = min(self.best_eval, float(eval_loss))
        if len(self.evals) < MIN_MEMORY:
            return events
        diff, se = window_gap(self.evals)
        if diff > RISE_Z * se:
            if self.enabled:
                self.lr_scale = max(0.1, self.lr_scale * 0.7)
                self.evals.clear()
            self.plateau_streak = 0
            events.append(self._event(step, "instability", "lower_lr", lr_scale=self.lr_scale, rise=diff, se=se))
            return events
        gain_bound = -diff + ONE_SIDED_95 * se  # the most the last window plausibly improved
        self.plateau_streak = self.plateau_streak + 1 if gain_bound < MIN_GAIN else 0
        if adapt and self.plateau_streak == 1:
            if self.enabled:
                self.top_k = min(self.max_top_k, self.top_k + 1)
                self.explore_boost = min(0.2, self.explore_boost + 0.05)
            events.append(self._event(step, "plateau", "raise_top_k_and_exploration", gain_bound=gain_bound,
                                      top_k=self.top_k, explore_boost=self.explore_boost))
        if self.enabled and self.plateau_streak >= self.patience:
            events.append({"step": step, "type": "stop", "reason": "plateau", "gain_bound": gain_bound,
                           "best": self.best_eval})
        return events

    def state_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    def load_state_dict(self, s: dict) -> None:
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in s.items()})
