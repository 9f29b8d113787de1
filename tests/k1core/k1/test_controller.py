import math

from k1core.k1.controller import Controller


def _ctl(**kw):
    return Controller(top_k=4, patience=4, divergence_factor=1.5, max_agents_soft=10, **kw)


def test_divergence_restores_then_stops():
    c = _ctl()
    assert c.observe(0, 2.0, 0.5, 5, adapt=True) == []
    ev = c.observe(1, math.nan, 0.5, 5, adapt=True)
    assert ev[0]["kind"] == "divergence" and ev[0]["action"] == "restore_best" and c.lr_scale == 0.5
    ev = c.observe(2, 9.0, 0.5, 5, adapt=True)
    assert ev[-1] == {"step": 2, "type": "stop", "reason": "divergence"}


def test_plateau_raises_top_k_and_patience_stops():
    c = _ctl()
    c.observe(0, 2.0, 0.5, 5, adapt=True)
    kinds = [e.get("kind", e["type"]) for s in range(1, 5) for e in c.observe(s, 2.0, 0.5, 5, adapt=True)]
    assert "plateau" in kinds and c.top_k > 4 and kinds[-1] == "stop"


def test_instability_trust_collapse_and_bloat():
    c = _ctl()
    events = [e for s, loss in enumerate([2.0, 2.1, 2.2, 2.3]) for e in c.observe(s, loss, 0.05, 12, adapt=False)]
    kinds = {e.get("kind") for e in events}
    assert {"instability", "trust_collapse", "bloat"} <= kinds and c.lr_scale < 1 and c.force_prune
