"""Accuracy per model and stage with Wilson 95% CI bars as a PNG, when the `plot` extra is installed."""
from __future__ import annotations

from pathlib import Path

from k1core.plots import pyplot

ROLE_COLORS = {"exported": "tab:green", "teacher": "tab:orange", "student": "tab:blue"}  # first match in the label


def plot_accuracies(bars: list[tuple[str, dict]], majority: float | None, path: Path) -> str:
    """One horizontal bar per (label, summary) with its CI, coloured by who answered, the test split's majority class as a dashed
    line; returns a one-line note of what happened."""
    plt = pyplot()
    if plt is None:
        return "no accuracy plot: matplotlib is not installed (pip install 'k1[plot]')"
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(bars) + 1.2))
    rows = range(len(bars))
    accuracies = [100 * s["accuracy"] for _, s in bars]
    # (2, bars): below, above; at 0% or 100% a Wilson bound can sit a rounding error inside the point
    errors = [[max(0.0, a - 100 * s["ci95"][0]) for a, (_, s) in zip(accuracies, bars)],
              [max(0.0, 100 * s["ci95"][1] - a) for a, (_, s) in zip(accuracies, bars)]]
    colors = [ROLE_COLORS[next((r for r in ROLE_COLORS if r in label), "student")] for label, _ in bars]
    ax.barh(rows, accuracies, xerr=errors, capsize=3, color=colors, alpha=0.75)
    if majority is not None:
        ax.axvline(100 * majority, color="tab:red", ls="--", lw=1, label=f"majority class {100 * majority:.1f}%")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(list(rows), [label for label, _ in bars], fontsize=8)
    ax.invert_yaxis()  # stage order reads top to bottom
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy, % (bars: Wilson 95% CI)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"accuracy plot: {path.name}"
