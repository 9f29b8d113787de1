import pytest

from k1core.config import TrainConfig, make_config, read_config_file
from k1core.errors import UserError


def test_defaults_are_the_reference_run_config():
    c = make_config()
    assert (c.d_model, c.n_layers, c.n_heads, c.context, c.batch_size, c.steps) == (128, 4, 4, 64, 12, 2000)
    assert (c.lr, c.min_lr, c.warmup_steps, c.weight_decay, c.grad_clip) == (1e-3, 1e-4, 100, 0.1, 1.0)


def test_later_layers_override_and_dashes_are_accepted():
    c = make_config({"steps": 5, "lr": 1}, {"d-model": 64})
    assert c.steps == 5 and c.lr == 1.0 and isinstance(c.lr, float) and c.d_model == 64


@pytest.mark.parametrize("values, key", [
    ({"stepz": 3}, "stepz"),
    ({"steps": 0}, "steps"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"dropout": 1.0}, "dropout"),
    ({"beta2": 1.0}, "beta2"),
    ({"steps": "ten"}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"steps": True}, "steps"),
    ({"tie_weights": 1}, "tie_weights"),
    ({"model": "bert"}, "model"),
    ({"min_lr": 0.01}, "min_lr"),
    ({"n_heads": 3}, "d_model"),
    ({"seed": -1}, "seed"),
    ({"out": 3}, "out"),
    ({"d_model": 10**12}, "d_model"),
    ({"seed": 2**70}, "seed"),
    ({"n_layers": 1e23}, "n_layers"),
    ({"budget": "flops"}, "budget"),
    ({"budget_seconds": 0}, "budget_seconds"),
    ({"clock": "gpu"}, "clock"),
    ({"k1": {"top_k_agents": 0}}, "top_k_agents"),
    ({"k1": {"no_such_knob": 1}}, "no_such_knob"),
    ({"k1": {"context": 32}}, "k1.context is set by the run's context"),
    ({"k1": {"max_steps": 9}}, "k1.total_steps is set by the run's steps"),
    ({"k1": 3}, "k1 must be a table"),
    ({"k1": {"vocab_size": 100}}, "k1.vocab_size must be 256"),
])
def test_bad_values_are_rejected_naming_the_key(values, key):
    with pytest.raises(UserError, match=key):
        make_config(values)


def test_toml_and_json_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 7\nd_model = 32\n[train]\nsteps = 9\n')
    assert make_config(read_config_file(toml)).steps == 9  # a [train] table wins
    toml.write_text('steps = 7\nn-heads = 2\n')
    assert make_config(read_config_file(toml)).n_heads == 2
    js = tmp_path / "c.json"
    js.write_text('{"steps": 11, "dropout": 0.1}')
    assert make_config(read_config_file(js)) == TrainConfig(steps=11, dropout=0.1)


@pytest.mark.parametrize("name, text, match", [
    ("c.toml", "steps = = 3", "cannot parse"),
    ("c.json", "{steps: 3}", "cannot parse"),
    ("c.json", "[1, 2]", "table"),
    ("c.yaml", "steps: 3", ".toml or .json"),
])
def test_bad_files_are_user_errors(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(UserError, match=match):
        read_config_file(p)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_config_file(tmp_path / "none.toml")


from hypothesis import given, settings, strategies as st  # noqa: E402

from k1core.config import FIELDS  # noqa: E402

_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                    st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=6)), _values, max_size=4))
def test_fuzzed_mappings_give_a_config_or_a_user_error(values):
    try:
        cfg = make_config(values)
    except UserError:
        return
    assert isinstance(cfg, TrainConfig)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(["c.toml", "c.json"]))
def test_fuzzed_files_give_a_mapping_or_a_user_error(tmp_path_factory, raw, name):
    p = tmp_path_factory.mktemp("fuzz") / name
    p.write_bytes(raw)
    try:
        assert isinstance(read_config_file(p), dict)
    except UserError:
        pass


def test_k1_table_from_a_file_reaches_the_model_and_layers_merge(tmp_path):
    from k1core.k1 import build_k1

    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nsteps = 9\n[k1]\ntop_k_agents = 5\nlr = 0.002\n')
    cfg = make_config(read_config_file(toml), {"k1": {"lr": 0.004}})
    assert cfg.k1 == {"top_k_agents": 5, "lr": 0.004} and cfg.to_dict()["k1"] == cfg.k1
    model_cfg = build_k1(make_config({"d_model": 32, "n_heads": 2, "k1": cfg.k1})).cfg
    assert (model_cfg.top_k_agents, model_cfg.lr, model_cfg.d_model) == (5, 0.004, 32)


def test_assignments_from_the_command_line_parse_like_toml():
    from k1core.config import parse_assignment

    assert parse_assignment("lr=2e-3") == ("lr", 0.002)
    assert parse_assignment("use-tree=false") == ("use_tree", False)
    assert parse_assignment("dtype=float64") == ("dtype", "float64")
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_assignment("lr")
