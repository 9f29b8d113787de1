"""A run's length in steps and epochs, counted on each trainer's own row stream."""
from __future__ import annotations

import numpy as np
import pytest

from backends.student.chat_data import Example, pack_rows
from backends.student.trainers import get_trainer
from backends.student.training_length import DEFAULT_EPOCHS, measure, steps_or_epochs
from k1core.errors import UserError


def examples(lengths) -> list[Example]:
    return [Example(tuple(range(n)), 2) for n in lengths]


def jax_length(data, seq_len, rows_per_step, **length):
    return measure(get_trainer("jax").rows(data, seq_len, 0), len(data), rows_per_step, **length)


def test_two_examples_per_packed_row_make_three_steps_an_epoch():
    data = examples([30] * 6)  # two fit in a 64-token row, whatever the shuffle
    one = jax_length(data, 64, 1, epochs=1)
    assert (one.steps, one.examples_trained, one.epochs, one.epochs_asked) == (3, 6, 1.0, 1.0)
    assert jax_length(data, 64, 1, epochs=2).steps == 6
    half = jax_length(data, 64, 1, epochs=0.5)  # 3 examples take 2 rows, which hold 4
    assert (half.steps, half.examples_trained) == (2, 4)
    wide = jax_length(data, 64, 2, epochs=1)  # 3 rows at 2 a step: the second step reaches into epoch 2
    assert (wide.steps, wide.examples_trained, round(wide.epochs, 2)) == (2, 8, 1.33)
    assert jax_length(data, 32, 1, epochs=1).steps == 6  # one example a row


def test_epochs_follow_the_shuffled_packing_of_each_epoch():
    rng = np.random.default_rng(1)
    data = examples(rng.integers(20, 120, 40))
    per_epoch = [len(pack_rows([data[i] for i in np.random.default_rng([0, e]).permutation(40)], 256))
                 for e in range(3)]
    assert jax_length(data, 256, 1, epochs=1).steps == per_epoch[0] < 40
    three = jax_length(data, 256, 1, epochs=3)
    assert (three.steps, three.examples_trained) == (sum(per_epoch), 120)


def test_given_steps_are_kept_and_a_run_under_one_epoch_says_so_in_one_line():
    data = examples([30] * 6)
    short = jax_length(data, 64, 1, steps=1)
    assert (short.steps, short.examples_trained, short.epochs_asked) == (1, 2, None)
    line = short.shortfall()
    assert "\n" not in line and "under one epoch" in line and "2 of the 6" in line and "4 are never seen" in line
    assert jax_length(data, 64, 1, steps=3).shortfall() is None
    assert jax_length(data, 64, 1, epochs=1).to_dict() == {
        "steps": 3, "rows_per_step": 1, "examples": 6, "examples_trained": 6, "epochs_asked": 1.0, "epochs": 1.0}


def test_the_mlx_trainer_takes_one_example_per_row():
    data = examples([30] * 10)
    length = measure(get_trainer("mlx").rows(data, 64, 0), 10, 4, epochs=1)
    assert (length.steps, length.examples_trained) == (3, 12)


def test_steps_win_epochs_default_and_both_is_an_error():
    names = ("--steps", "--epochs")
    assert steps_or_epochs(None, None, names) == (None, DEFAULT_EPOCHS)
    assert steps_or_epochs(7, None, names) == (7, None)
    assert steps_or_epochs(None, 2, names) == (None, 2.0)
    for steps, epochs, message in [(7, 1.0, "give --steps or --epochs, not both"), (0, None, "--steps must be"),
                                   (None, 0.0, "--epochs must be"), (None, float("nan"), "--epochs must be")]:
        with pytest.raises(UserError, match=message):
            steps_or_epochs(steps, epochs, names)
