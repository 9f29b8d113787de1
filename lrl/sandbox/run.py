"""Run one untrusted program: a child Python under the OS isolation, with limits and a wall clock.

The program and the child script are written to a private input folder the sandbox sees
read-only; stdout and stderr go to files and the report to a descriptor, all opened here, so the
program never needs a writable path outside its work directory. The child sets the rlimits on
itself (see `child`); here the wall clock is kept, and after the run (normal or not) the whole
process group is SIGKILLed. Under bubblewrap that takes the sandbox's PID namespace with it, so
nothing the program started can outlive the run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lrl.sandbox.isolation import active_isolation
from lrl.sandbox.launch import Isolation, interpreter

CHILD = Path(__file__).with_name("child.py")
MiB = 1024 * 1024
# What the launcher itself gets: nothing of the parent's environment reaches the sandbox, not
# even through the launcher's own /proc/<pid>/environ.
LAUNCH_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits; the defaults suit short test programs."""

    cpu_seconds: int = 2
    wall_seconds: float = 5.0
    memory_bytes: int = 512 * MiB
    file_bytes: int = 1 * MiB        # largest file the child may write, stdout/stderr included
    disk_bytes: int = 16 * MiB       # the whole work directory (its tmpfs under bubblewrap)
    output_chars: int = 20_000       # how much of stdout/stderr is read back
    processes: int = 64
    open_files: int = 64

    def __post_init__(self):
        for name in ("cpu_seconds", "wall_seconds", "memory_bytes", "file_bytes", "disk_bytes", "output_chars",
                     "processes", "open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive")

    def rlimits(self) -> dict:
        """{RLIMIT name: [soft, hard]} for the child; CPU gets a second's grace between SIGXCPU and SIGKILL."""
        return {"RLIMIT_CPU": [self.cpu_seconds, self.cpu_seconds + 1],
                "RLIMIT_AS": [self.memory_bytes] * 2, "RLIMIT_FSIZE": [self.file_bytes] * 2,
                "RLIMIT_NPROC": [self.processes] * 2, "RLIMIT_NOFILE": [self.open_files] * 2,
                "RLIMIT_CORE": [0, 0]}


@dataclass(frozen=True)
class SandboxRun:
    """How a run ended: status is 'exited', 'timeout' or 'killed' (by a signal other than timeout)."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    report: object | None  # the JSON value the program passed to report(), if any
    wall_seconds: float
    detail: str = ""


def _read_capped(path: Path, chars: int) -> str:
    with open(path, "rb") as f:
        data = f.read(chars + 1)
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= chars else text[:chars] + "\n[... output truncated]"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_python(program: str, limits: SandboxLimits = SandboxLimits(), isolation: Isolation | None = None, *,
               audit_hook: bool = True) -> SandboxRun:
    """Execute `program` in the sandbox; it may call report(obj) to hand back one JSON value.

    `isolation` defaults to `active_isolation()` (which refuses when none works and the user did
    not allow --unsafe-sandbox). `audit_hook=False` leaves the OS isolation alone, to test it.
    """
    isolation = isolation or active_isolation()
    root = Path(tempfile.mkdtemp(prefix="k1-sandbox-"))
    try:
        inputs, work = root / "input", root / "work"
        inputs.mkdir()
        work.mkdir()
        (inputs / "program.py").write_text(program)
        shutil.copyfile(CHILD, inputs / "child.py")
        seen_inputs, seen_work = isolation.paths(inputs, work)
        with open(root / "report.json", "wb") as report, open(root / "stdout", "wb") as out, \
                open(root / "stderr", "wb") as err:
            child = [interpreter()[0], "-I", "-S", f"{seen_inputs}/child.py", str(report.fileno()),
                     f"{seen_inputs}/program.py", seen_work, json.dumps(limits.rlimits()), "1" if audit_hook else "0"]
            launch = isolation.wrap(child, inputs, work, limits.disk_bytes)
            started = time.monotonic()
            try:
                proc = subprocess.Popen(launch.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=work,
                                        env={**LAUNCH_ENV, "HOME": str(work), "TMPDIR": str(work)},
                                        start_new_session=True, pass_fds=(report.fileno(), *launch.pass_fds),
                                        preexec_fn=launch.preexec_fn)
            finally:
                for fd in launch.pass_fds:
                    os.close(fd)
            try:
                proc.wait(timeout=limits.wall_seconds)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(proc.pid)
            proc.wait()
            wall = time.monotonic() - started
        return _classify(isolation.returncode(proc.returncode), timed_out, root, limits, wall)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _classify(code: int, timed_out: bool, root: Path, limits: SandboxLimits, wall: float) -> SandboxRun:
    stdout = _read_capped(root / "stdout", limits.output_chars)
    stderr = _read_capped(root / "stderr", limits.output_chars)
    report = None
    raw = (root / "report.json").read_text(errors="replace")
    if raw:
        try:
            report = json.loads(raw)
        except ValueError:
            report = None
    if timed_out:
        return SandboxRun("timeout", code, stdout, stderr, report, wall, f"wall clock over {limits.wall_seconds}s")
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and wall >= limits.cpu_seconds):
        return SandboxRun("timeout", code, stdout, stderr, report, wall, f"CPU time over {limits.cpu_seconds}s")
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        return SandboxRun("killed", code, stdout, stderr, report, wall, f"killed by {name}")
    return SandboxRun("exited", code, stdout, stderr, report, wall, stderr.strip().splitlines()[-1] if code and stderr.strip() else "")
