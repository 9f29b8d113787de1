import os
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from backends.student.chat_data import encode_chat  # noqa: E402
from backends.student.gguf_loader import load_gguf  # noqa: E402
from backends.student.hf_loader import load_hf_dir  # noqa: E402
from backends.student.jax_trainer import train_lora  # noqa: E402
from backends.student.train_config import TrainConfig  # noqa: E402
from backends.student.lora import LoraConfig  # noqa: E402
from backends.student.tokenizer import HFTokenizer  # noqa: E402
from k1core.optim import AdamWConfig  # noqa: E402

QA = [("what is 2 + 3 ?", "5"), ("the cat sat on?", "the mat."), ("answer: yes or no", "yes"),
      ("what is the cat?", "the cat sat"), ("no or yes", "no"), ("mat?", "the mat")]


def examples(model, n=6):
    return [encode_chat(model.tokenizer, model.chat_template,
                        [{"role": "user", "content": q}, {"role": "assistant", "content": a}], 64) for q, a in QA[:n]]


def tiny_train_config(out, steps=12, **kw):
    opt = AdamWConfig(lr=2e-2, min_lr=2e-3, warmup_steps=2, total_steps=steps, weight_decay=0.0)
    base = dict(out_dir=str(out), seq_len=64, batch_size=2, steps=steps, optim=opt, eval_every=4,
                checkpoint_every=2, logit_chunk=16, lora=LoraConfig(rank=4, alpha=8.0))
    base.update(kw)
    return TrainConfig(**base)


def load(tiny_files, arch, source):
    hf_dir, gguf_path, _ = tiny_files[arch]
    if source == "hf":
        return load_hf_dir(hf_dir)
    model = load_gguf(gguf_path, with_tokenizer=False)  # llama.cpp is optional; same vocab as the HF dir
    model.tokenizer = HFTokenizer(hf_dir / "tokenizer.json")
    return model


@pytest.mark.parametrize("source", ["hf", "gguf"])
@pytest.mark.parametrize("arch", ["qwen2", "llama", "gemma3"])
def test_loss_falls_on_tiny_model(tiny_files, tmp_path, arch, source):
    model = load(tiny_files, arch, source)
    data = examples(model)
    result = train_lora(model, data, data, tiny_train_config(tmp_path), progress=None)
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert (tmp_path / "best" / "adapter_model.safetensors").exists()
    assert (tmp_path / "final" / "adapter_config.json").exists()


def test_interrupted_run_resumes_to_the_same_adapter(tiny_files, tmp_path):
    model = load(tiny_files, "qwen2", "hf")
    data = examples(model)
    kw = dict(lora=LoraConfig(rank=4, alpha=8.0, dropout=0.1), grad_accum=2)
    straight = train_lora(model, data, data, tiny_train_config(tmp_path / "a", steps=8, **kw), progress=None)
    cut = tiny_train_config(tmp_path / "b", steps=8, **kw)
    train_lora(model, data, data, cut, stop_at=5, progress=None)  # checkpoint at 4; step 5's work is lost
    resumed = train_lora(model, data, data, cut, progress=None)
    assert resumed.steps_done == straight.steps_done == 8
    for target, (a, b) in straight.lora.items():
        np.testing.assert_allclose(resumed.lora[target][0], a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(resumed.lora[target][1], b, rtol=1e-5, atol=1e-6)
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in straight.history], rel=1e-5)


def test_early_stopping_and_accuracy_callback(tiny_files, tmp_path):
    model = load(tiny_files, "llama", "hf")
    data = examples(model)
    calls = []
    cfg = tiny_train_config(tmp_path, steps=40, eval_every=1, patience=2,
                            optim=AdamWConfig(lr=0.0, min_lr=0.0, warmup_steps=1, total_steps=40))
    result = train_lora(model, data, data, cfg, accuracy_fn=lambda lora: calls.append(1) or 0.5, progress=None)
    assert result.stopped_early and result.steps_done == 3  # lr 0: no improvement after the first eval
    assert len(calls) == 3 and result.history[0]["accuracy"] == 0.5


def test_data_parallel_over_two_host_devices_matches_one(tiny_files, tmp_path):
    hf_dir = tiny_files["qwen2"][0]
    script = f"""
import sys, numpy as np, jax
sys.path[:0] = [{os.getcwd()!r}, {os.path.dirname(__file__)!r}]
from test_jax_trainer import examples, tiny_train_config
from backends.student.hf_loader import load_hf_dir
from backends.student.jax_trainer import train_lora
m = load_hf_dir({str(hf_dir)!r}); d = examples(m)
r = train_lora(m, d, d, tiny_train_config(sys.argv[1], steps=4), progress=None)
print(jax.local_device_count(), r.history[-1]["val_loss"])
"""
    outs = []
    for n in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / str(n))], env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(run.stdout.split())
    assert outs[0][0] == "1" and outs[1][0] == "2"
    assert float(outs[1][1]) == pytest.approx(float(outs[0][1]), rel=1e-4)


def test_top_layers_only_leaves_the_lower_adapter_untouched(tiny_files, tmp_path):
    """LoraConfig(layers=1): the last layer's LoRA trains; below it A keeps its initial value and B
    stays zero (weight decay on), so the lower layers are the base model's."""
    from backends.student.lora import init_lora

    model = load(tiny_files, "qwen2", "hf")
    data = examples(model)
    lcfg = LoraConfig(rank=4, alpha=8.0, layers=1)
    opt = AdamWConfig(lr=2e-2, min_lr=2e-3, warmup_steps=2, total_steps=12, weight_decay=0.1)
    result = train_lora(model, data, data, tiny_train_config(tmp_path, lora=lcfg, optim=opt), progress=None)
    start = init_lora(model.config, lcfg, 0)
    top = model.config.n_layers - 1
    for target, (a, b) in result.lora.items():
        np.testing.assert_array_equal(np.asarray(a)[:top], start[target][0][:top])
        assert not np.any(np.asarray(b)[:top])
        assert np.any(np.asarray(b)[top:])
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0]


def test_more_lora_layers_than_the_model_has_is_one_clear_error(tiny_files, tmp_path):
    from k1core.errors import UserError

    model = load(tiny_files, "qwen2", "hf")
    with pytest.raises(UserError, match="exceeds the model's"):
        train_lora(model, examples(model), [], tiny_train_config(tmp_path, lora=LoraConfig(layers=99)), progress=None)
