import numpy as np

from k1core.optim import AdamW, AdamWConfig, adamw_update, lr_at
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
    opt.step(1e-2, ranges=np.array([[0, 1], [5, 7], [13, 16]]))
    changed = np.flatnonzero(ps.flat != before)
    np.testing.assert_array_equal(changed, [0, 5, 6, 13, 14, 15])


def gathered_step(opt: AdamW, lr: float, ranges: np.ndarray) -> None:
    """The reference top-K update: clip and step a gathered copy of the selected entries, scatter back."""
    sel = np.concatenate([np.arange(a, b) for a, b in ranges])
    ps, c = opt.params, opt.cfg
    g = ps.grad[sel]
    norm = float(np.sqrt(np.dot(g, g)))
    if c.grad_clip > 0 and norm > c.grad_clip:
        g = g * (c.grad_clip / (norm + 1e-12))
    opt.t += 1
    p, m, v = ps.flat[sel], opt.m[sel], opt.v[sel]
    opt.update(p, g, m, v, opt.decay_mask[sel], lr, 1.0 - c.beta1**opt.t, 1.0 - c.beta2**opt.t, c)
    ps.flat[sel], ps.grad[sel], opt.m[sel], opt.v[sel] = p, g, m, v


def assert_in_place_ranges_match_gathered_update(update) -> None:
    """AdamW over flat ranges, in place, equals the gather/update/scatter reference bit for bit
    (float32, clipping active, ranges of several sizes, rest untouched)."""
    rng = np.random.default_rng(0)
    arrays = {"w": rng.normal(size=(6, 40)), "b": rng.normal(size=40), "e": rng.normal(size=(7, 9))}
    cfg = AdamWConfig(grad_clip=0.5, weight_decay=0.1)
    opts = [AdamW(ParamStore(arrays, dtype=np.float32), cfg, update=update) for _ in range(2)]
    ranges = np.array([[0, 40], [80, 200], [240, 241], [250, 280], [300, 343]])
    for step in range(4):
        grad = rng.normal(size=opts[0].params.size).astype(np.float32)
        for opt in opts:
            opt.params.grad[:] = grad
        opts[0].clip_grad(ranges)
        opts[0].step(3e-3 * (step + 1), ranges)
        gathered_step(opts[1], 3e-3 * (step + 1), ranges)
        for a, b in ((opts[0].params.flat, opts[1].params.flat), (opts[0].m, opts[1].m),
                     (opts[0].v, opts[1].v), (opts[0].params.grad, opts[1].params.grad)):
            np.testing.assert_array_equal(a, b)
    assert (opts[0].params.flat[40:80] == np.float32(arrays["w"].reshape(-1)[40:80])).all()


def test_in_place_ranges_match_gathered_update():
    assert_in_place_ranges_match_gathered_update(adamw_update)


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
