"""Equal-time allotments: the steps each model gets from its cost per step relative to the GPT, and
that a load change while the costs are measured leaves them unchanged."""
import numpy as np
import pytest

import k1core.budget as budget
from k1core.budget import allot_steps, calibrate_equal_time


def test_allotment_from_known_step_costs():
    plan = allot_steps(2000, {"gpt": [0.1] * 4, "k1": [0.025] * 4, "slow": [0.3] * 4})
    assert plan["gpt"] == {"ratio": 1.0, "ratio_range": [1.0, 1.0], "step_s": 0.1, "steps": 2000}
    assert plan["k1"]["steps"] == 8000 and plan["k1"]["ratio"] == pytest.approx(0.25)
    assert plan["k1"]["step_s"] == pytest.approx(0.025)
    assert plan["slow"]["steps"] == 666  # 2000 / 3: never more time than the GPT's
    assert allot_steps(1, {"gpt": [1.0], "huge": [5.0]})["huge"]["steps"] == 1  # never zero steps


def test_ratios_are_taken_within_rounds():
    load = np.array([1.0, 3.0, 1.5, 6.0, 2.0])  # each round under its own load
    spike = [1.0, 1.0, 9.0, 1.0, 1.0]  # and one burst of k1 hit by a spike on top
    plan = allot_steps(1000, {"gpt": (0.08 * load).tolist(), "k1": (0.02 * load * spike).tolist()})
    assert plan["k1"]["steps"] == 4000 and plan["k1"]["ratio_range"][1] == pytest.approx(2.25)


class FakeModel:
    """A model whose step costs `cost` seconds times the load at the moment, on a fake clock."""

    def __init__(self, cost, machine):
        self.cost, self.machine = cost, machine

    def train_step(self, x, y):
        self.machine.advance(self.cost)
        return 0.0

    def on_step_end(self, step, probe):
        return []


class FakeMachine:
    """A clock whose load jumps from 1 to `heavy` at `jump_at` seconds."""

    def __init__(self, heavy=1.0, jump_at=0.0):
        self.t, self.heavy, self.jump_at = 0.0, heavy, jump_at

    def advance(self, cost):
        self.t += cost * (self.heavy if self.t >= self.jump_at else 1.0)

    def now(self):
        return self.t


def allotments(machine, monkeypatch):
    monkeypatch.setattr(budget, "clock", lambda kind: machine.now)
    costs = {"gpt": 0.07, "k1": 0.026, "k1-notree": 0.011}
    builds = {name: (lambda steps, c=c: FakeModel(c, machine)) for name, c in costs.items()}
    data = np.arange(500, dtype=np.uint8)
    plan = calibrate_equal_time(builds, 2000, data, data, batch_size=2, context=8, clock_kind="cpu", seed=0)
    return {name: m["steps"] for name, m in plan["models"].items()}


def test_a_load_change_during_calibration_changes_no_allotment(monkeypatch):
    idle = allotments(FakeMachine(), monkeypatch)
    assert idle == {"gpt": 2000, "k1": 5384, "k1-notree": 12727}  # 2000 x 0.07 / cost, rounded down
    # load quadruples a third of the way through (after the GPT's warmup and first bursts)
    assert allotments(FakeMachine(heavy=4.0, jump_at=8.0), monkeypatch) == idle
    assert allotments(FakeMachine(heavy=4.0, jump_at=0.0), monkeypatch) == idle  # loaded throughout
