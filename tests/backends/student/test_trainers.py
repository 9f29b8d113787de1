"""Student trainers found by name, and the one LoRA optimizer recipe every caller shares."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from backends.student.train_config import TrainConfig, lora_adamw
from backends.student.trainers import TRAINERS, get_trainer
from cli import main
from k1core.errors import UserError


def test_each_registered_trainer_is_found_by_its_name():
    assert TRAINERS == ("jax", "mlx")
    for name in TRAINERS:
        trainer = get_trainer(name)
        assert trainer.name == name and callable(trainer.prepare) and callable(trainer.train)


def test_an_unknown_trainer_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="unknown trainer 'torch'; choose from jax, mlx"):
        get_trainer("torch")
    run = CliRunner().invoke(main, ["lrl", "train-student", str(tmp_path / "m"), str(tmp_path / "d.jsonl"),
                                    "--out", str(tmp_path / "o"), "--trainer", "torch"])
    assert run.exit_code == 2 and "unknown trainer 'torch'" in run.output


def test_the_lora_recipe_warms_up_for_5_percent_and_decays_to_a_tenth():
    optim = lora_adamw(2e-4, 100)
    assert (optim.lr, optim.min_lr, optim.warmup_steps, optim.total_steps, optim.weight_decay) == (2e-4, 2e-5, 5, 100, 0.0)
    assert lora_adamw(1e-3, 10).warmup_steps == 1


def test_a_train_config_without_an_optimizer_uses_the_recipe_for_its_steps(tmp_path):
    assert TrainConfig(out_dir=str(tmp_path), steps=40).optim == lora_adamw(2e-4, 40)
