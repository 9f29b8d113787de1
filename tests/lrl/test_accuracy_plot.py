"""The accuracy plot draws every summary the scorer produces, the 0% and 100% ends included."""
import pytest

from lrl.accuracy_plot import plot_accuracies
from lrl.stats import wilson_interval

pytest.importorskip("matplotlib", reason="the plot extra is not installed")


@pytest.mark.parametrize("correct", [0, 40, 100])
def test_plot_accepts_wilson_bounds_at_every_accuracy(tmp_path, correct):
    summary = {"accuracy": correct / 100, "ci95": list(wilson_interval(correct, 100))}
    note = plot_accuracies([("exported student", summary), ("base student", summary)], 0.5, tmp_path / "a.png")
    assert note == "accuracy plot: a.png"
    assert (tmp_path / "a.png").stat().st_size > 0
