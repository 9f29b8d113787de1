import copy
from dataclasses import replace

import numpy as np
import orjson
import pytest

from k1core.errors import UserError
from k1core import registry
from k1core.k1 import K1Config, K1SelfLearningLM, build_k1, build_k1_no_tree
from k1core.k1.config import config_from_mapping


def test_training_lowers_the_loss(tiny_cfg, batches):
    m = K1SelfLearningLM(tiny_cfg)
    data = batches(4)
    first = m.evaluate(data)
    for i in range(40):
        m.train_step(*data[i % 4])
    assert m.evaluate(data) < first - 0.5


def test_phase2_run_fires_validated_structural_events(tiny_cfg, batches):
    m = K1SelfLearningLM(replace(tiny_cfg, merge_similarity=0.0, grow_loss_ratio=0.5, grow_patience=1))
    held = batches(30)
    events = []
    for step, (x, y) in enumerate(batches(60)):
        m.train_step(x, y)
        events += m.on_step_end(step, lambda: held[step % 30])
    structural = [e for e in events if e["type"] in ("grow", "prune", "merge", "reorganize")]
    assert structural and all({"val_before", "val_after", "kept"} <= set(e) for e in structural)
    assert all(e["step"] >= m.cfg.phase2_step - 1 for e in structural)  # none in phase 1
    st = m.stats()
    assert st["events"]["grow"] >= 1 and sum(st["events"].values()) == len(structural) + st["events"]["rollback"]
    assert st["agents"] == m.tree.alive.sum() and len(st["history"]) == 30
    orjson.dumps(st)  # JSON-ready


def test_state_dict_resumes_bit_identically(tiny_cfg, batches):
    data = batches(12)
    a = K1SelfLearningLM(tiny_cfg)
    for x, y in data[:6]:
        a.train_step(x, y)
    state = copy.deepcopy(a.state_dict())
    losses_a = [a.train_step(x, y) for x, y in data[6:]]
    b = K1SelfLearningLM(tiny_cfg)
    b.load_state_dict(state)
    assert [b.train_step(x, y) for x, y in data[6:]] == losses_a
    with pytest.raises(UserError):
        K1SelfLearningLM(replace(tiny_cfg, seed=5)).load_state_dict(state)


def test_generate_greedy_is_deterministic_and_extends_prompt(tiny_cfg):
    m = K1SelfLearningLM(tiny_cfg)
    out = m.generate(np.array([1, 2, 3]), 12, temperature=0)
    assert out[:3].tolist() == [1, 2, 3] and len(out) == 15 and out.max() < 32
    assert (m.generate([1, 2, 3], 12, temperature=0) == out).all()
    assert len(m.generate([5], 20, temperature=1.0, top_k=4, seed=1)) == 21


def test_ablation_without_tree(tiny_cfg, batches):
    full, bare = K1SelfLearningLM(tiny_cfg), K1SelfLearningLM(replace(tiny_cfg, use_tree=False))
    x, y = batches(1)[0]
    assert np.isfinite(bare.train_step(x, y)) and bare.param_count() < full.param_count()
    assert "agents" not in bare.stats() and bare.stats()["params_updated_fraction"] == 1.0
    assert bare.flops_per_token() < full.flops_per_token()
    events = []
    for step in range(4):
        bare.train_step(x, y)
        events += bare.on_step_end(step, lambda: (x, y))
    assert len(bare.history) == 2  # probes ran (trust_interval 2)
    assert not [e for e in events if e.get("kind") == "trust_collapse"]  # no tree, no trust to collapse


def test_config_validation_names_the_key():
    with pytest.raises(UserError, match="n_heads"):
        K1Config(d_model=10, n_heads=4)
    with pytest.raises(UserError, match="capacity"):
        K1Config(capacity=5)
    with pytest.raises(UserError, match="bogus"):
        config_from_mapping({"bogus": 1})
    with pytest.raises(UserError, match="lr"):
        K1Config(lr="fast")
    with pytest.raises(UserError, match="d_hidden"):
        K1Config(d_hidden=12.5)
    with pytest.raises(UserError, match="use_tree"):
        K1Config(use_tree="no")
    cfg = config_from_mapping({"embed_dim": 64, "hierarchy_depth": 2, "branching_factor": 3, "learning_rate": 1e-3})
    assert (cfg.d_model, cfg.tree_levels, cfg.branching, cfg.lr) == (64, 2, 3, 1e-3)


def test_builders_and_registry():
    assert registry.builder("k1") is build_k1
    assert registry.builder("k1-notree") is build_k1_no_tree
    from k1core.config import make_config

    run = make_config({"steps": 77, "context": 32, "seed": 3, "d_model": 32, "n_heads": 2, "k1": {"d_hidden": 8}})
    m = build_k1(run, d_hidden=16)  # overrides win over the run's [k1] table
    assert (m.cfg.total_steps, m.cfg.context, m.cfg.seed, m.cfg.d_model, m.cfg.d_hidden) == (77, 32, 3, 32, 16)
    assert not build_k1_no_tree(None, d_model=32, n_heads=2).cfg.use_tree


def test_float32_model_computes_in_float32(tiny_cfg, batches):
    """No float64 scalar may promote the activations (NumPy 2 promotes float32 * np.float64)."""
    from k1core.k1.network import forward
    m = K1SelfLearningLM(tiny_cfg)
    x, y = batches(1)[0]
    fwd = forward(m.params.p, m.tree, m.cfg, x, y, 0.1, m.rng)
    arrays = [fwd.logits, fwd.r_final] + [a for tr in fwd.levels for a in (tr.u, tr.out, tr.gate, tr.probs)
                                          if a is not None]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}


def test_generation_behaves_like_the_gpts(tiny_cfg):
    """K-1 and the GPT share one sampler: same errors for an empty prompt or a negative temperature."""
    from k1core.gpt import BaselineGPT, GPTConfig

    k1 = K1SelfLearningLM(tiny_cfg)
    gpt = BaselineGPT(GPTConfig(context=tiny_cfg.context, d_model=16, n_heads=2, n_layers=1))
    for model in (k1, gpt):
        with pytest.raises(UserError, match="at least one byte"):
            model.generate(np.array([], dtype=np.int64), 3)
        with pytest.raises(UserError, match="temperature"):
            model.generate(np.array([5]), 3, temperature=-1.0)
        out = model.generate(np.array([5, 6]), 5, temperature=0.8, top_k=3, seed=1)
        assert out[:2].tolist() == [5, 6] and len(out) == 7
        np.testing.assert_array_equal(out, model.generate(np.array([5, 6]), 5, temperature=0.8, top_k=3, seed=1))


def test_paired_evaluations_use_fixed_batches_and_resume_through_a_checkpoint(tiny_cfg, batches, tmp_path):
    from k1core.checkpoint import load_checkpoint, save_checkpoint
    # frozen tree: a resumed plastic model waits for a fresh probe before its next structural op
    cfg = replace(tiny_cfg, control_interval=4, control_batches=2, plasticity=False)
    data, held = batches(40), batches(300)

    def run(model, steps, drawn):  # drawn: [how many held-out batches the probes have taken]
        def probe():
            drawn[0] += 1
            return held[drawn[0] - 1]
        for step in steps:
            model.train_step(*data[step])
            model.on_step_end(step, probe)

    a, drawn_a = K1SelfLearningLM(cfg), [0]
    run(a, range(20), drawn_a)
    first_set = [x.copy() for x, _ in a.control_set]
    save_checkpoint(tmp_path / "c.npz", {"model": a.state_dict()})
    drawn_b = list(drawn_a)
    run(a, range(20, 40), drawn_a)
    assert [h[0] for h in a.control_history] == list(range(3, 40, 4))
    assert all((x == y).all() for x, y in zip(first_set, [x for x, _ in a.control_set]))
    b = K1SelfLearningLM(cfg)
    b.load_state_dict(load_checkpoint(tmp_path / "c.npz")["model"])
    run(b, range(20, 40), drawn_b)
    assert b.control_history == a.control_history and b.evaluate(data[:4]) == a.evaluate(data[:4])
