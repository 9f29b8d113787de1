"""Run untrusted model-written Python in a contained child process.

What is enforced, and how:
- separate process `python -I -S` (no user site, no site-packages, PYTHON* env ignored), in its
  own session/process group, with a minimal environment and a fresh temporary working directory;
- kernel limits set before exec: RLIMIT_CPU (CPU seconds), RLIMIT_AS (address space),
  RLIMIT_FSIZE (largest file written, which also caps stdout/stderr: they go to files),
  RLIMIT_NPROC (processes; note the kernel ignores it for root), RLIMIT_CORE = 0;
- a wall-clock timeout, after which the whole process group is SIGKILLed (also done after every
  normal exit, so stray children die with the run);
- no network: `unshare -n` (an empty network namespace) when the platform allows it, and in every
  case an audit hook in the child refusing socket, subprocess/fork/exec/spawn, signal sending,
  ctypes, and file writes or deletions outside the working directory.

What is NOT guaranteed: audit hooks are a CPython convenience, not a security boundary; code
that reaches native code some other way could escape them (ctypes is blocked, but e.g. a
pre-built extension module could do it). Reading files is allowed. Without `unshare` (macOS,
containers without the capability) the network block is the audit hook alone. This contains
accidents and sloppy model code — loops, bombs, stray writes — not a determined attacker.
"""
from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("sandbox_child.py")
MiB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits; the defaults suit short test programs."""

    cpu_seconds: int = 2
    wall_seconds: float = 5.0
    memory_bytes: int = 512 * MiB
    file_bytes: int = 1 * MiB        # largest file the child may write, stdout/stderr included
    output_chars: int = 20_000       # how much of stdout/stderr is read back
    processes: int = 64

    def __post_init__(self):
        for name in ("cpu_seconds", "wall_seconds", "memory_bytes", "file_bytes", "output_chars", "processes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive")


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


@functools.lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """`unshare -n` (or `-rn` for non-root) if it works here, else () and the audit hook alone."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    for prefix in ((tool, "-n"), (tool, "-r", "-n")):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return ()


def _limit_child(limits: SandboxLimits):
    """preexec_fn: kernel limits applied in the child between fork and exec."""
    wanted = [("RLIMIT_CPU", limits.cpu_seconds, limits.cpu_seconds + 1),
              ("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes),
              ("RLIMIT_FSIZE", limits.file_bytes, limits.file_bytes),
              ("RLIMIT_NPROC", limits.processes, limits.processes),
              ("RLIMIT_CORE", 0, 0)]

    def apply():
        for name, soft, hard in wanted:
            try:
                resource.setrlimit(getattr(resource, name), (soft, hard))
            except (AttributeError, ValueError, OSError):
                # macOS refuses RLIMIT_AS below the current usage and lacks some limits; the
                # wall-clock kill and the audit hook still apply there.
                pass
    return apply


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


def run_python(program: str, limits: SandboxLimits = SandboxLimits()) -> SandboxRun:
    """Execute `program` in the sandbox; it may call report(obj) to hand back one JSON value."""
    root = Path(tempfile.mkdtemp(prefix="k1-sandbox-"))
    try:
        work = root / "work"
        work.mkdir()
        program_path, report_path = root / "program.py", root / "report.json"
        program_path.write_text(program)
        command = [*network_namespace_prefix(), sys.executable, "-I", "-S", str(CHILD),
                   str(report_path), str(program_path), str(work)]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}
        with open(root / "stdout", "wb") as out, open(root / "stderr", "wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=work, env=env, start_new_session=True,
                                    preexec_fn=_limit_child(limits))
            try:
                proc.wait(timeout=limits.wall_seconds)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(proc.pid)
            proc.wait()
            wall = time.monotonic() - started
        return _classify(proc.returncode, timed_out, root, limits, wall)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _classify(code: int, timed_out: bool, root: Path, limits: SandboxLimits, wall: float) -> SandboxRun:
    stdout = _read_capped(root / "stdout", limits.output_chars)
    stderr = _read_capped(root / "stderr", limits.output_chars)
    report = None
    raw = (root / "report.json").read_text() if (root / "report.json").exists() else ""
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
