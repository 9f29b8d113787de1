"""What the sandbox's OS isolation costs: start-up per program and the coding domain's items/s.

Three ways to run a program, timed in rotating rounds (k1core/interleave.py) so load from other
processes falls on each alike:
    before      the sandbox as it was before the OS isolation (audit hook + rlimits + `unshare -n`),
                loaded from git history (--before-commit)
    no-isolation  today's sandbox with --unsafe-sandbox's isolation: audit hook + rlimits only
    bubblewrap  today's sandbox under bwrap (namespaces, seccomp, tmpfs; as root also the launcher's
                mount namespace and the switch to nobody)
Start-up is the wall time of `pass`; items/s checks reference solutions of coding problems
(one sandbox run each, as `CodingDomain.check` does). The load average is recorded before and after.
Run: python -m bench.bench_sandbox [--rounds 10] [--items 20]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from k1core.interleave import interleaved
from bench.results_file import write_result

REPO = Path(__file__).resolve().parent.parent
BEFORE_COMMIT = "7f93c3a"  # the last commit with the in-process sandbox (lrl/sandbox.py + lrl/sandbox_child.py)


def load_before(commit: str, folder: Path):
    """The old lrl/sandbox.py (with its child script beside it) from `commit`, as a module."""
    for name in ("sandbox.py", "sandbox_child.py"):
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:lrl/{name}"], capture_output=True,
                                text=True, check=True).stdout
        (folder / name).write_text(source)
    spec = importlib.util.spec_from_file_location("sandbox_before", folder / "sandbox.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def runners(before) -> dict:
    """name -> run(program) returning the run's status, for every way of running a program."""
    from lrl.sandbox import UNISOLATED, SandboxLimits, find_isolation, run_python

    limits = SandboxLimits()
    ways = {"before": lambda program: before.run_python(program, before.SandboxLimits()).status,
            "no-isolation": lambda program: run_python(program, limits, UNISOLATED).status}
    found = find_isolation()[0]
    if found is not None:
        ways[found.name] = lambda program: run_python(program, limits, found).status
    return ways


def coding_programs(n: int) -> list[str]:
    """Sandbox programs checking the reference solutions of `n` coding test problems."""
    from lrl.domain import get_domain
    from lrl.domains.coding import harness_program

    problems = get_domain("coding").generate(n, 0, "test")
    return [harness_program(p.payload["reference"], p.payload["entry"], p.payload["tests"]) for p in problems]


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median_s": round(statistics.median(ordered), 4), "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
            "min_s": round(ordered[0], 4), "n": len(ordered)}


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--items", type=int, default=20, help="coding problems checked per way and round")
    parser.add_argument("--before-commit", default=BEFORE_COMMIT)
    args = parser.parse_args(argv)

    load_before_run = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        ways = runners(load_before(args.before_commit, Path(tmp)))
        for run in ways.values():  # warm-up: the isolation probe, imports, page cache
            assert run("pass") == "exited"
        startup = interleaved(ways, args.rounds, lambda run: run("pass"), per_round=3)
        programs = coding_programs(args.items)
        statuses: dict[str, list[str]] = {name: [] for name in ways}

        def check_all(name):
            statuses[name].extend(ways[name](p) for p in programs)

        items = interleaved({name: name for name in ways}, max(2, args.rounds // 3), check_all, per_round=1)
    payload = {
        "bench": "sandbox", "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "euid": os.geteuid(), "loadavg_before": load_before_run,
        "loadavg_after": os.getloadavg(), "rounds": args.rounds, "items_per_round": args.items,
        "before_commit": args.before_commit,
        "startup": {name: summary(times) for name, times in startup.items()},
        "coding_items_per_s": {name: round(args.items / statistics.median(times), 2) for name, times in items.items()},
        "coding_all_exited": {name: all(s == "exited" for s in st) for name, st in statuses.items()},
    }
    path = write_result("sandbox", payload)
    print(f"load average before {payload['loadavg_before']}, after {payload['loadavg_after']}")
    print("| way | start-up median (s) | p90 (s) | coding items/s |")
    print("|---|---|---|---|")
    for name in ways:
        s = payload["startup"][name]
        print(f"| {name} | {s['median_s']:.3f} | {s['p90_s']:.3f} | {payload['coding_items_per_s'][name]:.1f} |")
    print(f"wrote {path}", file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
