import numpy as np

from k1core.optim import AdamW, AdamWConfig, lr_at
from k1core.params import ParamStore


def _reference_adamw(p, g, m, v, t, lr, c, decay):
    m = c.beta1 * m + (1 - c.beta1) * g
    v = c.beta2 * v + (1 - c.beta2) * g * g
    p = p * (1 - lr * c.weight_decay * decay)
    p = p - lr * (m / (1 - c.beta1**t)) / (np.sqrt(v / (1 - c.beta2**t)) + c.eps)
    return p, m, v


def test_adamw_matches_textbook_update_and_only_touches_selection():
    rng = np.random.default_rng(0)
    ps = ParamStore({"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}, dtype=np.float64)
    cfg = AdamWConfig(grad_clip=0.0)
    opt = AdamW(ps, cfg)
    ref_p, ref_m, ref_v = ps.flat.copy(), np.zeros(16), np.zeros(16)
    decay = np.r_[np.ones(12), np.zeros(4)]
    for t in range(1, 4):
        ps.grad[:] = rng.normal(size=16)
        ref_p, ref_m, ref_v = _reference_adamw(ref_p, ps.grad.copy(), ref_m, ref_v, t, 1e-2, cfg, decay)
        opt.step(1e-2)
    np.testing.assert_allclose(ps.flat, ref_p, rtol=1e-12)

    before = ps.flat.copy()
    ps.grad[:] = 1.0
    sel = np.array([0, 5, 13])
    opt.step(1e-2, select=sel)
    changed = np.flatnonzero(ps.flat != before)
    np.testing.assert_array_equal(changed, sel)


def test_clip_scales_to_max_norm():
    ps = ParamStore({"w": np.zeros(4)}, dtype=np.float64)
    opt = AdamW(ps, AdamWConfig(grad_clip=1.0))
    ps.grad[:] = [3.0, 4.0, 0.0, 0.0]
    assert opt.clip_grad() == 5.0
    np.testing.assert_allclose(np.linalg.norm(ps.grad), 1.0)


def test_schedule_warmup_then_cosine_to_min():
    cfg = AdamWConfig(lr=1e-3, min_lr=1e-4, warmup_steps=100, total_steps=2000)
    assert lr_at(0, cfg) == 1e-5
    assert abs(lr_at(99, cfg) - 1e-3) < 1e-12
    assert abs(lr_at(2000, cfg) - 1e-4) < 1e-12
    assert lr_at(1000, cfg) < lr_at(500, cfg)


def test_state_survives_rebind_by_name():
    ps = ParamStore({"a": np.ones(2), "b": np.ones(3)}, dtype=np.float64)
    opt = AdamW(ps, AdamWConfig())
    ps.grad[:] = 1.0
    opt.step(1e-3)
    grown = ParamStore({"a": ps["a"], "c": np.ones(5)}, dtype=np.float64)
    m_a = opt.state_dict()["m"]["a"].copy()
    opt.rebind(grown)
    np.testing.assert_array_equal(opt.state_dict()["m"]["a"], m_a)
    assert not opt.state_dict()["m"]["c"].any()
