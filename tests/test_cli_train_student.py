import sys

import orjson
import pytest
from click.testing import CliRunner

sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/backends/student")

from cli import main  # noqa: E402


def test_train_student_end_to_end_and_bad_data(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tokenizers")
    from tiny_models import random_weights, tiny_config, tiny_tokenizer, write_hf_dir

    tok = tiny_tokenizer()
    cfg = tiny_config("qwen2", tok.get_vocab_size() + 8)
    model_dir = write_hf_dir(cfg, random_weights(cfg), tok, tmp_path / "m")
    data = tmp_path / "train.jsonl"
    rows = [{"messages": [{"role": "user", "content": "what is 2 + 3 ?"}, {"role": "assistant", "content": "5"}]}] * 4
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    run = CliRunner().invoke(main, ["lrl", "train-student", str(model_dir), str(data), "--val", str(data),
                                    "--out", str(tmp_path / "out"), "--steps", "4", "--seq-len", "64",
                                    "--eval-every", "2", "--rank", "4", "--lr", "0.01"])
    assert run.exit_code == 0, run.output
    assert (tmp_path / "out" / "final" / "adapter_model.safetensors").exists()
    assert "4 step(s) x 1 row(s) = 8 examples: 2.00 epochs of the 4 training examples" in run.output  # 2 a row
    assert "under one epoch" not in run.output and "trained 4 steps (2.00 epochs)" in run.output
    by_epochs = CliRunner().invoke(main, ["lrl", "train-student", str(model_dir), str(data), "--out",
                                          str(tmp_path / "e"), "--epochs", "3", "--seq-len", "64", "--rank", "4"])
    assert by_epochs.exit_code == 0, by_epochs.output
    assert "6 step(s) x 1 row(s) = 12 examples: 3.00 epochs (3 asked)" in by_epochs.output
    short = CliRunner().invoke(main, ["lrl", "train-student", str(model_dir), str(data), "--out", str(tmp_path / "s"),
                                      "--steps", "1", "--seq-len", "64", "--rank", "4"])
    assert short.exit_code == 0 and "under one epoch: 1 step(s) train on 2 of the 4 training examples" in short.output
    both = CliRunner().invoke(main, ["lrl", "train-student", str(tmp_path / "absent"), str(data), "--out",
                                     str(tmp_path / "b"), "--steps", "4", "--epochs", "1"])
    assert both.exit_code == 2 and "give --steps or --epochs, not both" in both.output
    assert len(both.output.strip().splitlines()) == 1
    top = CliRunner().invoke(main, ["lrl", "train-student", str(model_dir), str(data), "--out", str(tmp_path / "t"),
                                    "--steps", "2", "--seq-len", "64", "--rank", "4", "--lora-layers", "1"])
    assert top.exit_code == 0, top.output
    from backends.student.adapters import load_adapter

    lora, _ = load_adapter(tmp_path / "t" / "final", cfg.n_layers)
    assert not any(b[:-1].any() for _, b in lora.values()) and all(b[-1].any() for _, b in lora.values())
    too_many = CliRunner().invoke(main, ["lrl", "train-student", str(model_dir), str(data), "--out",
                                         str(tmp_path / "m"), "--steps", "2", "--seq-len", "64", "--lora-layers", "99"])
    assert too_many.exit_code == 2 and "exceeds the model's" in too_many.output
    assert len(too_many.output.strip().splitlines()) <= 2  # the length line, then the error
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    run = CliRunner().invoke(main, ["lrl", "train-student", str(model_dir), str(bad), "--out", str(tmp_path / "o2")])
    assert run.exit_code == 2 and "bad.jsonl:1: invalid JSON" in run.output
