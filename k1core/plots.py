"""Loss curves as a PNG, when the optional `plot` extra (matplotlib) is installed."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def plot_losses(results: dict, path: Path) -> str:
    """Train (smoothed) and validation loss of every model; returns a one-line note of what happened."""
    if importlib.util.find_spec("matplotlib") is None:
        return "no loss plot: matplotlib is not installed (pip install 'k1[plot]')"
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
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
