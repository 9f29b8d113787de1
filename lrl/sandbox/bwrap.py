"""Linux isolation with bubblewrap: fresh namespaces, a read-only interpreter, one small tmpfs to write.

Each program gets new user, PID, network, IPC, UTS, mount and cgroup namespaces
(`--unshare-all --unshare-user`), no way to make further user namespaces, no capabilities, and
an unprivileged uid. The file system it sees holds only the system library folders and the
Python prefix (read-only), its inputs (read-only), a fresh /proc that shows nothing but its own
processes, a minimal /dev, and a size-capped tmpfs work directory, the one writable place. The
environment is emptied, the program gets its own session (no terminal to push input into), it
dies with its parent, and a seccomp filter refuses the kernel surfaces listed in `seccomp`.
"""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from lrl.sandbox.seccomp import seccomp_program

INPUTS, WORK = "/input", "/work"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
UNPRIVILEGED = "65534"  # nobody


@dataclass(frozen=True)
class Launch:
    """What to execute, and the descriptors it inherits; the caller closes `pass_fds` after starting it."""

    argv: list[str]
    pass_fds: tuple[int, ...] = ()


def interpreter() -> tuple[str, str]:
    """(the real Python executable, the real installation prefix it needs to start)."""
    return os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def system_binds(root: Path = Path("/")) -> list[str]:
    """Read-only binds of the system library folders, keeping merged-/usr symlinks as symlinks."""
    args: list[str] = []
    for folder in SYSTEM_DIRS:
        host = root / folder.lstrip("/")
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), folder]
        elif host.is_dir():
            args += ["--ro-bind", str(host), folder]
    return args


@dataclass(frozen=True)
class Bubblewrap:
    """Runs a command under `bwrap`; `tool` is its path."""

    tool: str
    name: str = "bubblewrap"
    isolated: bool = True

    def paths(self, inputs: Path, work: Path) -> tuple[str, str]:
        """Where the program sees its read-only inputs and its work directory."""
        return INPUTS, WORK

    def options(self, inputs: Path, disk_bytes: int) -> list[str]:
        """Every bwrap option up to the command (without the seccomp descriptor)."""
        python, prefix = interpreter()
        binds = system_binds()
        if not _under(prefix, SYSTEM_DIRS):
            binds += ["--ro-bind", prefix, prefix]
        if not _under(python, [*SYSTEM_DIRS, prefix]):
            binds += ["--ro-bind", os.path.dirname(python), os.path.dirname(python)]
        return [self.tool, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
                "--uid", UNPRIVILEGED, "--gid", UNPRIVILEGED, "--hostname", "sandbox",
                "--die-with-parent", "--new-session",
                "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
                "--setenv", "HOME", WORK, "--setenv", "TMPDIR", WORK,
                *binds, "--ro-bind", str(inputs), INPUTS, "--proc", "/proc", "--dev", "/dev",
                "--size", str(disk_bytes), "--tmpfs", WORK, "--remount-ro", "/", "--chdir", WORK]

    def returncode(self, code: int) -> int:
        """bwrap exits 128 + N when its command died of signal N; as Popen would say it: -N."""
        return -(code - 128) if 128 < code < 128 + signal.NSIG else code

    def wrap(self, argv: list[str], inputs: Path, work: Path, disk_bytes: int) -> Launch:
        """`argv` under bwrap, the seccomp program handed over through a pipe."""
        options = self.options(inputs, disk_bytes)
        program = seccomp_program()
        if program is None:  # an architecture without a syscall table here: namespaces alone
            return Launch([*options, "--", *argv])
        read_end, write_end = os.pipe()
        os.write(write_end, program)  # a few hundred bytes: far below the pipe's buffer
        os.close(write_end)
        return Launch([*options, "--seccomp", str(read_end), "--", *argv], (read_end,))
