import math

import numpy as np

from k1core.k1.controller import NOISE_MEMORY, WINDOW, Controller, rise_z


def _ctl(**kw):
    return Controller(**({"top_k": 4, "patience": 4, "divergence_factor": 1.5, "max_top_k": 6} | kw))


def test_divergence_restores_then_stops():
    c = _ctl()
    assert c.observe(0, 2.0, 0.5, adapt=True) == []
    ev = c.observe(1, math.nan, 0.5, adapt=True)
    assert ev[0]["kind"] == "divergence" and ev[0]["action"] == "restore_best" and c.lr_scale == 0.5
    ev = c.observe(2, 9.0, 0.5, adapt=True)
    assert ev[-1] == {"step": 2, "type": "stop", "reason": "divergence"}


def test_plateau_raises_top_k_up_to_its_limit_and_patience_stops():
    c = _ctl(patience=8)
    kinds = [e.get("kind", e["type"]) for s in range(40) for e in c.observe(s, 2.0, 0.5, adapt=True)]
    assert "plateau" in kinds and c.top_k == 6 and kinds[-1] == "stop"


def test_stationary_noisy_probes_never_look_unstable():
    for seed in range(20):
        c = _ctl(patience=10**6)
        losses = 2.0 + 0.1 * np.random.default_rng(seed).standard_normal(500)
        events = [e for s, loss in enumerate(losses) for e in c.observe(s, float(loss), 0.5, adapt=False)]
        assert not [e for e in events if e.get("kind") == "instability"], seed
        assert c.lr_scale == 1.0


def test_a_real_rise_is_called_unstable_and_lowers_the_lr():
    c = _ctl(patience=10**6)
    rng = np.random.default_rng(0)
    flat = 2.0 + 0.1 * rng.standard_normal(NOISE_MEMORY)
    rising = 2.0 + 0.03 * np.arange(1, 3 * WINDOW + 1) + 0.1 * rng.standard_normal(3 * WINDOW)
    events = [e for s, loss in enumerate([*flat, *rising]) for e in c.observe(s, float(loss), 0.5, adapt=False)]
    unstable = [e for e in events if e.get("kind") == "instability"]
    assert unstable and unstable[0]["step"] >= NOISE_MEMORY and c.lr_scale < 1.0


def test_rise_z_measures_the_step_against_the_probe_noise():
    noise = 0.1 * np.random.default_rng(0).standard_normal(4 * WINDOW)
    assert abs(rise_z(2.0 + noise)) < 3
    assert rise_z(2.0 + noise + np.r_[np.zeros(3 * WINDOW), np.full(WINDOW, 0.5)]) > 6


def test_trust_collapse_is_diagnosed_and_a_disabled_controller_only_reports():
    c = _ctl()
    assert any(e.get("kind") == "trust_collapse" for e in c.observe(0, 2.0, 0.05, adapt=False))
    off = _ctl(enabled=False, patience=2)
    events = [e for s in range(30) for e in off.observe(s, 2.0 if s != 5 else math.nan, 0.5, adapt=True)]
    assert events and all(e.get("action") == "none" for e in events if e["type"] == "diagnostic")
    assert not [e for e in events if e["type"] == "stop"] and off.lr_scale == 1.0 and off.top_k == 4
