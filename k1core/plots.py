"""Loss curves as a PNG, when the optional `plot` extra (matplotlib) is installed."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None when the plot extra is absent."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_losses(results: dict, path: Path) -> str:
    """Train (smoothed) and validation loss of every model; returns a one-line note of what happened."""
    plt = _pyplot()
    if plt is None:
        return "no loss plot: matplotlib is not installed (pip install 'k1[plot]')"
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in results["models"].items():
        h = r["history"]
        train = np.asarray(h["train_loss"], dtype=float)
        k = max(1, len(train) // 100)
        smooth = np.convolve(train, np.ones(k) / k, mode="valid")
        (line,) = ax.plot(np.asarray(h["step"][k - 1:]), smooth, alpha=0.6, label=f"{name} train")
        ax.plot(h["val_step"], h["val_loss"], "o-", color=line.get_color(), label=f"{name} val")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/byte)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"loss plot: {path}"


STRUCTURAL = ("grow", "prune", "merge", "reorganize", "rollback")


def plot_structure(result: dict, path: Path) -> str:
    """K-1's agent count and mean trust over time, and its structural events on a timeline."""
    plt = _pyplot()
    history = result["stats"].get("history")
    if plt is None or not history:
        return "no structure plot" + (": matplotlib is not installed" if plt is None else "")
    steps = [h["step"] for h in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=[2, 1])
    top.plot(steps, [h["agents"] for h in history], color="tab:blue")
    top.set_ylabel("agents", color="tab:blue")
    trust_ax = top.twinx()
    trust_ax.plot(steps, [h["mean_trust"] for h in history], color="tab:orange")
    trust_ax.set_ylabel("mean trust", color="tab:orange")
    trust_ax.set_ylim(0, 1)
    events = result["events"]["list"]
    for row, kind in enumerate(STRUCTURAL):
        at = [e["step"] for e in events if e.get("type") == kind]
        bottom.scatter(at, [row] * len(at), marker="|", s=200)
    bottom.set_yticks(range(len(STRUCTURAL)), STRUCTURAL)
    bottom.set_xlabel("step")
    top.set_title(f"{result['model']}: structure over training")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"structure plot: {path}"
