"""Loss curves as a PNG, when the optional `plot` extra (matplotlib) is installed."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None when the plot extra is absent."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_losses(results: dict, path: Path) -> str:
    """Train (smoothed) and validation loss of every model; returns a one-line note of what happened."""
    plt = pyplot()
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


STRUCTURAL = {"grow": "tab:green", "prune": "tab:red", "merge": "tab:purple", "reorganize": "tab:blue"}


def structure_markers(result: dict) -> list[dict]:
    """One marker group per (structural op, kept or rolled back) that happened: its steps, and the
    validation loss there (interpolated between evaluations) so each mark sits on the curve it is
    judged by."""
    import numpy as np

    h = result["history"]
    events = result["events"]["list"]
    groups = []
    for op in STRUCTURAL:
        for kept in (True, False):
            at = [e["step"] for e in events if e.get("type") == op and e.get("kept") == kept]
            if at:
                groups.append({"op": op, "kept": kept, "steps": at,
                               "loss": np.interp(at, h["val_step"], h["val_loss"]).tolist()})
    return groups


def structure_summary(groups: list[dict]) -> str:
    """`grow 3 (2 kept), prune 1 (1 kept)`: what the tree did, for the plot's title."""
    counts = {}
    for g in groups:
        total, kept = counts.get(g["op"], (0, 0))
        counts[g["op"]] = (total + len(g["steps"]), kept + len(g["steps"]) * g["kept"])
    return ", ".join(f"{op} {n} ({k} kept)" for op, (n, k) in counts.items()) or "no structural change"


def plot_structure(result: dict, path: Path) -> str:
    """K-1's story over training: agents and mean trust above; below, the validation loss (and the
    noisier single-batch probe loss) with every structural op marked on the validation curve where
    it happened (filled: kept, hollow: rolled back) and the controller's diagnostics as vertical
    lines; the title counts each op and how many were kept."""
    plt = pyplot()
    history = result["stats"].get("history")
    if plt is None or not history:
        return "no structure plot" + (": matplotlib is not installed" if plt is None else "")

    steps = [h["step"] for h in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[1, 2])
    top.step(steps, [h["agents"] for h in history], where="post", color="tab:blue")
    top.set_ylabel("agents", color="tab:blue")
    trust_ax = top.twinx()
    trust_ax.plot(steps, [h["mean_trust"] for h in history], color="tab:orange")
    trust_ax.set_ylabel("mean trust", color="tab:orange")
    trust_ax.set_ylim(0, 1)
    bottom.plot(steps, [h["probe_loss"] for h in history], color="0.75", lw=0.8, label="probe loss (one batch)")
    h = result["history"]
    bottom.plot(h["val_step"], h["val_loss"], "k-", lw=1.5, label="validation loss")
    groups = structure_markers(result)
    for g in groups:
        color = STRUCTURAL[g["op"]]
        bottom.scatter(g["steps"], g["loss"], s=30, color=color if g["kept"] else "none", edgecolors=color,
                       label=f"{g['op']} {'kept' if g['kept'] else 'rolled back'}", zorder=3)
    for e in result["events"]["list"]:
        if e.get("type") == "diagnostic" and e.get("kind") != "plateau":
            bottom.axvline(e["step"], color="tab:red", alpha=0.3, lw=0.8)
    bottom.set_ylabel("loss (nats/byte)")
    bottom.set_xlabel("step (red lines: instability, divergence or trust-collapse diagnostics)")
    bottom.legend(fontsize=7, ncol=2)
    bottom.grid(alpha=0.3)
    top.set_title(f"{result['model']}: {structure_summary(groups)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"structure plot: {path}"
