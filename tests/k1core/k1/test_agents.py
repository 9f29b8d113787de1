import numpy as np

from k1core.k1.agents import agents_backward, agents_forward


def test_grouped_dispatch_matches_per_token_reference():
    rng = np.random.default_rng(0)
    s, d, h, n = 5, 6, 7, 40
    p = {"agents.w1": rng.normal(size=(s, d, h)), "agents.b1": rng.normal(size=(s, h)),
         "agents.w2": rng.normal(size=(s, h, d)), "agents.b2": rng.normal(size=(s, d))}
    u, ids = rng.normal(size=(n, d)), rng.integers(0, s, size=n)
    out, cache = agents_forward(u, ids, p)
    ref = np.stack([np.maximum(u[i] @ p["agents.w1"][a] + p["agents.b1"][a], 0) @ p["agents.w2"][a]
                    + p["agents.b2"][a] for i, a in enumerate(ids)])
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dout = rng.normal(size=out.shape)
    du = agents_backward(dout, p, g, cache)
    unused = np.setdiff1d(np.arange(s), ids)
    for k in g:
        assert not g[k][unused].any()  # agents with no tokens get no gradient
    assert du.shape == u.shape
