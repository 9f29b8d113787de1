"""The MLX trainer on tiny random models: loss falls, its PEFT adapter reproduces mlx-lm's logits in our
NumPy forward, prompt tokens carry no loss, and the CLI picks it with --trainer mlx.

mlx installs on Linux as `mlx[cpu]`. There mx.compile builds fused kernels with the system C++ compiler,
about a minute for this file on a machine with a cold kernel cache, so the default tests run eagerly
(the same math; a tiny model trains in a fraction of a second) and one slow test checks that the
compiled trainer, as it runs on Apple silicon, gives the same adapter.
"""
import sys
from dataclasses import replace

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from backends.student.adapters import load_adapter
from backends.student.chat_data import encode_chat, make_batch
from backends.student.forward_numpy import numpy_logits
from backends.student.hf_loader import load_hf_dir
from backends.student.train_config import TrainConfig
from backends.student.layer_stack import stack_layers
from backends.student.lora import LoraConfig, init_lora
from k1core.errors import UserError
from k1core.optim import AdamWConfig, lr_at

QA = [("what is 2 + 3 ?", "5"), ("the cat sat on?", "the mat."), ("answer: yes or no", "yes"),
      ("what is the cat?", "the cat sat"), ("no or yes", "no"), ("mat?", "the mat")]
NO_MLX = "mlx-lm is not installed (on Linux: pip install 'mlx[cpu]' mlx-lm)"


@pytest.fixture(scope="module")
def mlx():
    pytest.importorskip("mlx_lm", reason=NO_MLX)
    import mlx.core

    mlx.core.disable_compile()
    yield mlx.core
    mlx.core.enable_compile()


def examples(model):
    return [encode_chat(model.tokenizer, model.chat_template,
                        [{"role": "user", "content": q}, {"role": "assistant", "content": a}], 64) for q, a in QA]


def tiny_train_config(out, steps=12, **kw):
    opt = AdamWConfig(lr=2e-2, min_lr=2e-3, warmup_steps=2, total_steps=steps, weight_decay=0.0)
    base = dict(out_dir=str(out), seq_len=64, batch_size=2, steps=steps, optim=opt, eval_every=4,
                lora=LoraConfig(rank=4, alpha=8.0), log_every=steps)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("arch", ["qwen2", "llama", "gemma3"])
def test_loss_falls_and_the_peft_adapter_reproduces_mlx_logits(mlx, tiny_files, tmp_path, arch):
    from mlx_lm.tuner.utils import load_adapters
    from mlx_lm.utils import load_model

    from backends.student.mlx_trainer import train_lora_mlx

    hf_dir = tiny_files[arch][0]
    model = load_hf_dir(hf_dir)
    data = examples(model)
    result = train_lora_mlx(hf_dir, data, data, tiny_train_config(tmp_path))
    losses = [h["val_loss"] for h in result.history]
    assert [h["step"] for h in result.history][0] == 0 and result.history[-1]["step"] == 12
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.best_val == min(losses) and (tmp_path / "best" / "adapter_config.json").exists()

    # mlx-lm's own copy, loaded by mlx-lm, against the PEFT copy in our NumPy forward.
    net, _ = load_model(hf_dir)
    load_adapters(net, str(tmp_path / "mlx"))
    tokens = np.array([data[1].ids])
    want = np.array(net(mlx.array(tokens)))  # (1, T, V)
    lora, lcfg = load_adapter(tmp_path / "final", model.config.n_layers)
    assert lcfg == LoraConfig(rank=4, alpha=8.0)
    # mlx-lm rounds gemma3's sqrt(dim) embedding scale to bfloat16 whatever the weights' dtype (HF and
    # we keep it in float32): a 1e-4 relative gap that is the base model's, not the adapter's.
    cfg = replace(model.config, embed_scale=mlx.array(model.config.embed_scale, mlx.bfloat16).item())
    got = numpy_logits(cfg, *stack_layers(model), tokens, lora, lcfg.scale)
    base = numpy_logits(cfg, *stack_layers(model), tokens)
    scale = np.abs(want).max()
    assert np.abs(base - want).max() > 0.1 * scale  # the adapter moved the logits
    np.testing.assert_allclose(got, want, atol=1e-5 * scale)  # float32 round-off; measured below 1e-6 * scale


def test_grad_accumulation_and_dropout_train(mlx, tiny_files, tmp_path):
    from backends.student.mlx_trainer import train_lora_mlx

    hf_dir = tiny_files["qwen2"][0]
    data = examples(load_hf_dir(hf_dir))
    cfg = tiny_train_config(tmp_path, steps=8, grad_accum=2, lora=LoraConfig(targets=("q", "v", "up"), rank=4, alpha=8.0,
                                                                               dropout=0.1))
    result = train_lora_mlx(hf_dir, data, data, cfg)
    assert [h["step"] for h in result.history] == [0, 3, 7, 8]  # mlx-lm evaluates before steps 1, 4, 8; we after 8
    assert result.history[-1]["val_loss"] < 0.8 * result.history[0]["val_loss"]
    assert set(result.lora) == {"q_proj", "v_proj", "up_proj"}


@pytest.mark.slow
def test_compiled_training_gives_the_eager_adapter(mlx, tiny_files, tmp_path):
    from backends.student.mlx_trainer import train_lora_mlx

    hf_dir = tiny_files["qwen2"][0]
    data = examples(load_hf_dir(hf_dir))
    eager = train_lora_mlx(hf_dir, data, data, tiny_train_config(tmp_path / "eager"))
    mlx.enable_compile()
    try:
        compiled = train_lora_mlx(hf_dir, data, data, tiny_train_config(tmp_path / "compiled"))
    finally:
        mlx.disable_compile()
    for target, (a, b) in eager.lora.items():
        np.testing.assert_allclose(compiled.lora[target][0], a, atol=1e-5)
        np.testing.assert_allclose(compiled.lora[target][1], b, atol=1e-5)


def test_lora_layers_start_as_init_lora_and_only_they_train(mlx, tiny_files):
    from mlx.utils import tree_flatten

    from backends.student.mlx_trainer import load_mlx_lora_model, read_lora

    lcfg = LoraConfig(targets=("q", "v", "down"), rank=4, alpha=8.0)
    net, cfg = load_mlx_lora_model(tiny_files["llama"][0], lcfg, seed=5)
    trainable = [name for name, _ in tree_flatten(net.trainable_parameters())]
    assert len(trainable) == 2 * 3 * cfg.n_layers and all(n.rsplit(".", 1)[1] in ("lora_a", "lora_b") for n in trainable)
    for target, (a, b) in init_lora(cfg, lcfg, 5).items():
        got_a, got_b = read_lora(net, cfg.n_layers, lcfg)[target]
        np.testing.assert_array_equal(got_a, a)
        np.testing.assert_array_equal(got_b, b)


def test_prompt_tokens_carry_no_loss(mlx, tiny_files):
    from backends.student.mlx_trainer import load_mlx_lora_model, masked_nll, pad_batch

    hf_dir = tiny_files["qwen2"][0]
    model = load_hf_dir(hf_dir)
    pair = examples(model)[1:3]  # different lengths, so the shorter one is padded
    net, cfg = load_mlx_lora_model(hf_dir, LoraConfig(rank=4), seed=0)  # B = 0: the base model
    loss, ntoks = masked_nll(net, *pad_batch(pair))
    nll = []
    for ex in pair:
        logits = numpy_logits(cfg, *stack_layers(model), np.array([ex.ids]))[0]  # (T, V)
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
        nll += [-logp[t, ex.ids[t + 1]] for t in range(ex.n_prompt - 1, len(ex.ids) - 1)]
    assert int(ntoks) == len(nll) == sum(len(ex.ids) - ex.n_prompt for ex in pair)
    assert int(ntoks) == int(make_batch([[ex] for ex in pair], 64, 16)["loss_weight"].sum())  # the JAX trainer's mask
    assert float(loss) == pytest.approx(np.mean(nll), rel=1e-5)


def test_schedule_matches_lr_at(mlx):
    from backends.student.mlx_trainer import schedule

    ocfg = AdamWConfig(lr=1e-3, min_lr=1e-4, warmup_steps=3, total_steps=10)
    got = [float(schedule(ocfg)(mlx.array(s))) for s in range(12)]
    assert got == pytest.approx([lr_at(s, ocfg) for s in range(12)], rel=1e-5)


def test_early_stopping_and_accuracy_callback(mlx, tiny_files, tmp_path):
    from backends.student.mlx_trainer import train_lora_mlx

    hf_dir = tiny_files["llama"][0]
    data = examples(load_hf_dir(hf_dir))
    calls = []
    cfg = tiny_train_config(tmp_path, steps=40, eval_every=1, patience=2,
                            optim=AdamWConfig(lr=0.0, min_lr=0.0, warmup_steps=1, total_steps=40))
    result = train_lora_mlx(hf_dir, data, data, cfg, accuracy_fn=lambda lora: calls.append(1) or 0.5)
    assert result.stopped_early and result.steps_done == 2  # evaluated before step 1 and after steps 1, 2
    assert len(calls) == 3 and result.history[0]["accuracy"] == 0.5
    assert (tmp_path / "final" / "adapter_model.safetensors").exists()
    assert (tmp_path / "mlx" / "adapters.safetensors").exists()


def test_gguf_input_is_refused_with_one_line(mlx, tiny_files, tmp_path):
    from backends.student.finetune import finetune

    with pytest.raises(UserError, match="needs a Hugging Face model directory"):
        finetune(tiny_files["qwen2"][1], tmp_path / "x.jsonl", None, tiny_train_config(tmp_path), trainer="mlx")


def write_data(path):
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QA]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    return path


def test_cli_trains_with_mlx(mlx, tiny_files, tmp_path):
    from cli import main

    data = write_data(tmp_path / "train.jsonl")
    run = CliRunner().invoke(main, ["lrl", "train-student", str(tiny_files["qwen2"][0]), str(data), "--val", str(data),
                                    "--trainer", "mlx", "--out", str(tmp_path / "out"), "--steps", "4",
                                    "--seq-len", "64", "--eval-every", "2", "--rank", "4", "--lr", "0.01"])
    assert run.exit_code == 0, run.output
    assert "trained 4 steps" in run.output
    assert (tmp_path / "out" / "final" / "adapter_model.safetensors").exists()


def test_cli_says_in_one_line_when_mlx_is_missing(tiny_files, tmp_path, monkeypatch):
    from cli import main

    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # import mlx_lm now raises ImportError
    data = write_data(tmp_path / "train.jsonl")
    run = CliRunner().invoke(main, ["lrl", "train-student", str(tiny_files["qwen2"][0]), str(data),
                                    "--trainer", "mlx", "--out", str(tmp_path / "out")])
    assert run.exit_code == 2
    assert "k1[mlx]" in run.output and "Traceback" not in run.output


def test_default_trainer_is_mlx_only_on_apple_silicon(monkeypatch):
    from backends.student import trainers

    monkeypatch.setattr(trainers.sys, "platform", "darwin")
    monkeypatch.setattr(trainers.platform, "machine", lambda: "arm64")
    assert trainers.default_trainer() == "mlx"
    monkeypatch.setattr(trainers.platform, "machine", lambda: "x86_64")
    assert trainers.default_trainer() == "jax"
    monkeypatch.setattr(trainers.sys, "platform", "linux")
    monkeypatch.setattr(trainers.platform, "machine", lambda: "aarch64")
    assert trainers.default_trainer() == "jax"


def test_killed_run_resumes_to_the_same_adapter(mlx, tiny_files, tmp_path):
    """Moments, step, data order and dropout masks all come back: the adapter is the uninterrupted one."""
    from backends.student.checkpoint import load_checkpoint
    from backends.student.mlx_trainer import train_lora_mlx

    hf_dir = tiny_files["qwen2"][0]
    data = examples(load_hf_dir(hf_dir))
    lcfg = LoraConfig(targets=("q", "v", "down"), rank=4, alpha=8.0, dropout=0.1)

    def config(out):
        return tiny_train_config(out, steps=8, grad_accum=2, checkpoint_every=4, lora=lcfg)

    whole = train_lora_mlx(hf_dir, data, data, config(tmp_path / "whole"))
    cut = train_lora_mlx(hf_dir, data, data, config(tmp_path / "cut"), stop_at=6)
    assert cut.steps_done == 6 and not (tmp_path / "cut" / "final").exists()
    lora, m, v, state = load_checkpoint(tmp_path / "cut" / "checkpoint", 2)  # the JAX trainer's layout
    assert state["step"] == 4 and [h["step"] for h in state["history"]] == [0, 3]
    assert np.abs(m["q_proj"][1]).max() > 0  # the moments were saved, not zeros
    resumed = train_lora_mlx(hf_dir, data, data, config(tmp_path / "cut"))
    assert [h["step"] for h in resumed.history] == [h["step"] for h in whole.history] == [0, 3, 7, 8]
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in whole.history], rel=1e-5)
    for target, (a, b) in whole.lora.items():
        np.testing.assert_allclose(resumed.lora[target][0], a, atol=1e-6)
        np.testing.assert_allclose(resumed.lora[target][1], b, atol=1e-6)


def test_top_layers_only_is_refused_with_one_line_before_mlx_loads(tmp_path):
    from backends.student.mlx_trainer import train_lora_mlx

    tcfg = TrainConfig(out_dir=str(tmp_path), lora=LoraConfig(layers=4))
    with pytest.raises(UserError, match="jax trainer"):
        train_lora_mlx(tmp_path, [], [], tcfg)
