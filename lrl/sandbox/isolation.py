"""Which OS isolation runs model-written code here, and the refusal when there is none.

bubblewrap on Linux and sandbox-exec on macOS are found once per process and tried once on a
trivial program, so a tool that is installed but cannot work (user namespaces switched off, a
container without the privilege) counts as absent. Without one, code runs only after the user
said `--unsafe-sandbox`; the audit hook and rlimits are then all that stand in the way, and
every report says so.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from k1core.errors import UserError
from lrl.sandbox.bwrap import Bubblewrap, optional_features
from lrl.sandbox.launch import Isolation, Launch, interpreter
from lrl.sandbox.macos import SANDBOX_EXEC, SandboxExec

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; "
                "or run scripts/setup.sh as root)")
UNSAFE_WARNING = ("UNSAFE SANDBOX: model-written code ran WITHOUT OS isolation (--unsafe-sandbox); "
                  "it could read your files and environment. Install bubblewrap for real isolation.")


@dataclass(frozen=True)
class Unisolated:
    """No OS isolation: the child runs as this user, walled only by its audit hook and rlimits."""

    name: str = "none (--unsafe-sandbox)"
    isolated: bool = False

    def paths(self, inputs: Path, work: Path) -> tuple[str, str]:
        return str(inputs), str(work)

    def returncode(self, code: int) -> int:
        return code

    def wrap(self, argv: list[str], inputs: Path, work: Path, disk_bytes: int) -> Launch:
        return Launch(list(argv))


UNISOLATED = Unisolated()
_unsafe_permitted = False


def permit_unsafe_sandbox(permitted: bool = True) -> None:
    """The user's `--unsafe-sandbox`: allow running model code unisolated when no tool works."""
    global _unsafe_permitted
    _unsafe_permitted = permitted


def _works(isolation: Isolation) -> str:
    """'' if `isolation` runs a trivial program here, else the first line of why not."""
    python, _prefix = interpreter()
    with tempfile.TemporaryDirectory(prefix="k1-sandbox-probe-") as tmp:
        inputs, work = Path(tmp) / "input", Path(tmp) / "work"
        inputs.mkdir()
        work.mkdir()
        launch = isolation.wrap([python, "-I", "-S", "-c", "pass"], inputs, work, 1024 * 1024)
        try:
            done = subprocess.run(launch.argv, pass_fds=launch.pass_fds, capture_output=True, timeout=30,
                                  preexec_fn=launch.preexec_fn,
                                  env={"PATH": "/usr/bin:/bin"})
        except (OSError, subprocess.SubprocessError) as err:  # SubprocessError: the launcher's own setup failed
            return str(err)
        finally:
            for fd in launch.pass_fds:
                os.close(fd)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return lines[0] if lines else f"exit status {done.returncode}"
    return ""


@functools.lru_cache(maxsize=1)
def find_isolation() -> tuple[Isolation | None, str]:
    """(the working isolation tool or None, why there is none)."""
    if sys.platform == "darwin":
        if not Path(SANDBOX_EXEC).exists():
            return None, f"{SANDBOX_EXEC} is missing"
        candidate = SandboxExec()
    else:
        tool = shutil.which("bwrap")
        if tool is None:
            return None, "bubblewrap (bwrap) is not installed"
        candidate = Bubblewrap(tool, optional_features(tool))
    problem = _works(candidate)
    if problem:
        return None, f"{candidate.name} is installed but cannot isolate a program here ({problem})"
    return candidate, ""


def active_isolation() -> Isolation:
    """The isolation model code runs under; UserError naming what to install when there is none."""
    found, why = find_isolation()
    if found is not None:
        return found
    if _unsafe_permitted:
        return UNISOLATED
    raise UserError(f"refusing to run model-written code without OS isolation: {why}; {INSTALL_HINT}, "
                    "or pass --unsafe-sandbox to run it anyway (unsafe)")


def sandbox_summary() -> dict:
    """What a report says about the sandbox: the tool, whether it isolates, and the warning if not."""
    isolation = active_isolation()
    summary = {"isolation": isolation.name, "isolated": isolation.isolated}
    if not isolation.isolated:
        summary["warning"] = UNSAFE_WARNING
    return summary


def code_sandbox(domains) -> dict | None:
    """`sandbox_summary()` if any of `domains` runs model-written code (so a missing tool is refused
    before any work), else None."""
    if any(getattr(domain, "runs_model_code", False) for domain in domains):
        return sandbox_summary()
    return None


def sandbox_line(summary: dict | None) -> str:
    """The warning to append to a command's output when model code ran unisolated, else ''."""
    return f"\n{summary['warning']}" if summary and not summary["isolated"] else ""
