"""K-1's ablation table over seeds (k1core/ablation.py): full K-1, frozen tree, no controller, dense
updates, no tree, and the GPT, each at the GPT's steps, training time and FLOPs.

    python -m bench.k1_ablation [--seeds 1337 1338 1339] [--steps 2000] [--clock cpu]
                                [--eval-batches 20] [--shape d_model=64 ...]
                                [--out results/k1-ablation] [--rows k1 gpt ...]

Resumable: run the same command again after an interruption. Writes OUT/ablation.json and
OUT/ablation.md; each seed keeps its equal-time calibration in OUT/seed<N>/equal_time.json and every
run its folder OUT/seed<N>/<row>/ (results.json, load.json, checkpoints).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backends.threads import configure_threads

# One BLAS/Numba thread, as `k1 train` runs by default, set before numpy loads: with idle BLAS
# threads spinning, CPU seconds (the budget clock) would count their waiting too.
configure_threads(1)

from k1core.ablation import VARIANTS, run_ablation  # noqa: E402
from k1core.config import parse_assignment  # noqa: E402
from k1core.errors import UserError  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338, 1339])
    ap.add_argument("--steps", type=int, default=2000, help="the GPT's steps; the other rows get the steps that cost as much")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="training-time clock (cpu: steadier on a shared machine, one thread)")
    ap.add_argument("--eval-batches", type=int, default=20, help="fixed batches per validation")
    ap.add_argument("--shape", nargs="*", default=[], metavar="KEY=VALUE",
                    help="run-config overrides for a smaller run, e.g. d_model=64 n_layers=2 context=32")
    ap.add_argument("--out", type=Path, default=Path("results/k1-ablation"))
    ap.add_argument("--rows", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args(argv)
    base = {"steps": args.steps, "clock": args.clock, "sample_length": 0, "eval_batches": args.eval_batches}
    try:
        base |= dict(parse_assignment(text) for text in args.shape)
        summary = run_ablation(base, args.seeds, args.out, sys.stderr, rows=tuple(args.rows))
    except UserError as err:
        print(f"k1_ablation: error: {err}", file=sys.stderr)
        return 2
    print((args.out / "ablation.md").read_text())
    return 0 if summary else 1


if __name__ == "__main__":
    sys.exit(main())
