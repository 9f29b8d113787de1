"""Autonomy: a parameter controller, a stopping rule and diagnostics with corrective actions.

Runs on every probe (every `trust_interval` steps). A probe is one random batch, so its loss is
noisy (a standard deviation of ~0.05 nats at the default batch of 12 x 64 bytes). Every rule but
divergence therefore reads windows of WINDOW probes and acts only on differences beyond the noise
measured in those windows:
  divergence      probe loss not finite or > best window mean x divergence_factor -> restore the best
                  weights, halve the lr scale; a second divergence stops training
  instability     the mean of the last WINDOW probes exceeds the mean of the WINDOW before it by more
                  than RISE_Z standard errors, the probe noise measured from the spread of successive
                  differences over the last NOISE_MEMORY probes (a trend cancels out of differences)
                  -> lr scale x 0.7 (floor 0.1); the memory then refills before the next test.
                  Under stationary Gaussian noise no window in 27,000 reached z = 4.3.
  plateau         no new best window mean for patience/2 probes -> one more agent updated per step
                  (top-K + 1, at most `max_top_k`) and an exploration boost (phase 2 only)
  trust collapse  mean trust < 0.1 -> trust reset to its initial value, exploration boost
  stop            no new best window mean for `patience` probes (or a second divergence)
No rule reads the agent count: grow only splits a leaf when both children fit under the size cap,
and prune acts on evidence (trust and traffic), so the cap never forces a prune.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

WINDOW = 8  # probes per window: the last WINDOW against the WINDOW before them
NOISE_MEMORY = 64  # probes the noise is measured over (at least 4 x WINDOW before any test)
RISE_Z = 4.5  # standard errors a rise must exceed


def rise_z(losses) -> float:
    """How many standard errors the mean of the last WINDOW losses lies above the WINDOW before them;
    the per-probe noise is the spread of successive differences / sqrt(2)."""
    h = np.asarray(losses, dtype=float)
    noise = np.diff(h).std(ddof=1) / math.sqrt(2)
    diff = float(h[-WINDOW:].mean() - h[-2 * WINDOW:-WINDOW].mean())
    se = noise * math.sqrt(2 / WINDOW)
    return diff / se if se > 0 else (math.inf if diff > 0 else 0.0)


@dataclass
class Controller:
    top_k: int
    patience: int
    divergence_factor: float
    max_top_k: int
    enabled: bool = True  # False: diagnostics are recorded but nothing is adapted, restored or stopped
    lr_scale: float = 1.0
    explore_boost: float = 0.0
    best: float = math.inf  # best window mean so far
    since_best: int = 0
    divergences: int = 0
    recent: list = field(default_factory=list)  # the last NOISE_MEMORY probe losses

    def observe(self, step: int, probe_loss: float, mean_trust: float | None, adapt: bool) -> list[dict]:
        """Diagnose the latest probe; returns events, each with the action taken ("stop" ends training)."""
        events: list[dict] = []

        def event(kind: str, action: str, **extra):
            events.append({"step": step, "type": "diagnostic", "kind": kind,
                           "action": action if self.enabled else "none", "probe_loss": probe_loss, **extra})

        if not math.isfinite(probe_loss) or probe_loss > self.best * self.divergence_factor:
            if self.enabled:
                self.divergences += 1
                self.lr_scale *= 0.5
                self.recent.clear()
            event("divergence", "restore_best", lr_scale=self.lr_scale)
            if self.divergences >= 2:
                events.append({"step": step, "type": "stop", "reason": "divergence"})
            return events
        self.recent = (self.recent + [float(probe_loss)])[-NOISE_MEMORY:]
        mean = float(np.mean(self.recent[-WINDOW:]))  # a shorter window until WINDOW probes are in
        if mean < self.best:
            self.best, self.since_best = mean, 0
        else:
            self.since_best += 1
        if len(self.recent) >= 4 * WINDOW and (z := rise_z(self.recent)) > RISE_Z:
            if self.enabled:
                self.lr_scale = max(0.1, self.lr_scale * 0.7)
            self.recent.clear()
            event("instability", "lower_lr", lr_scale=self.lr_scale, z=z)
        if adapt and self.since_best and self.since_best % max(1, self.patience // 2) == 0:
            if self.enabled:
                self.top_k = min(self.max_top_k, self.top_k + 1)
                self.explore_boost = min(0.2, self.explore_boost + 0.05)
            event("plateau", "raise_top_k_and_exploration", top_k=self.top_k, explore_boost=self.explore_boost)
        if mean_trust is not None and mean_trust < 0.1:  # None: no tree, no trust
            if self.enabled:
                self.explore_boost = min(0.2, self.explore_boost + 0.05)
            event("trust_collapse", "reset_trust", mean_trust=mean_trust)
        if self.enabled and self.since_best >= self.patience:
            events.append({"step": step, "type": "stop", "reason": "patience", "best": self.best})
        self.explore_boost *= 0.9  # boosts fade unless renewed
        return events

    def state_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    def load_state_dict(self, s: dict) -> None:
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in s.items()})
