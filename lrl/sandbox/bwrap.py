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

import ctypes
import functools
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lrl.sandbox.launch import Launch, interpreter
from lrl.sandbox.seccomp import seccomp_program

INPUTS, WORK = "/input", "/work"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
NOBODY = 65534
UNPRIVILEGED = str(NOBODY)
OPTIONAL = ("--disable-userns", "--size")
# Linux mount(2)/unshare(2) flags for staging the interpreter when started as root.
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 0x1000, 0x4000, 0x40000
STAGE = "/tmp"  # exists everywhere and is reachable by nobody; covered only in the launcher's own namespace


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


def optional_features(tool: str) -> frozenset[str]:
    """Which of OPTIONAL this bwrap knows: both came with 0.7/0.8, and Ubuntu 22.04 ships 0.6."""
    try:
        done = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(option for option in OPTIONAL if option in done.stdout + done.stderr)


@dataclass(frozen=True)
class Bubblewrap:
    """Runs a command under `bwrap`; `tool` is its path, `features` the OPTIONAL options it knows.

    Without --disable-userns the seccomp filter alone keeps new user namespaces out; without
    --size the work directory's total is unbounded and only RLIMIT_FSIZE caps each file.
    """

    tool: str
    features: frozenset[str] = frozenset(OPTIONAL)
    name: str = "bubblewrap"
    isolated: bool = True

    def paths(self, inputs: Path, work: Path) -> tuple[str, str]:
        """Where the program sees its read-only inputs and its work directory."""
        return INPUTS, WORK

    def options(self, inputs: str, disk_bytes: int, staged: dict[str, str] | None = None) -> list[str]:
        """Every bwrap option up to the command (without the seccomp descriptor); `staged` maps an
        interpreter folder to where the launcher made it reachable (see `wrap`)."""
        staged = staged or {}
        binds = system_binds()
        for folder in interpreter_folders():
            binds += ["--ro-bind", staged.get(folder, folder), folder]
        disable_userns = ["--disable-userns"] if "--disable-userns" in self.features else []
        size = ["--size", str(disk_bytes)] if "--size" in self.features else []
        return [self.tool, "--unshare-all", "--unshare-user", *disable_userns, "--cap-drop", "ALL",
                "--uid", UNPRIVILEGED, "--gid", UNPRIVILEGED, "--hostname", "sandbox",
                "--die-with-parent", "--new-session",
                "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
                "--setenv", "HOME", WORK, "--setenv", "TMPDIR", WORK,
                *binds, "--ro-bind", inputs, INPUTS, "--proc", "/proc", "--dev", "/dev",
                *size, "--tmpfs", WORK, "--remount-ro", "/", "--chdir", WORK]

    def returncode(self, code: int) -> int:
        """bwrap exits 128 + N when its command died of signal N; as Popen would say it: -N."""
        return -(code - 128) if 128 < code < 128 + signal.NSIG else code

    def wrap(self, argv: list[str], inputs: Path, work: Path, disk_bytes: int) -> Launch:
        """`argv` under bwrap, the seccomp program handed over through a pipe.

        Started as root, bwrap runs as nobody instead: the kernel never applies RLIMIT_NPROC to
        uid 0, even inside a user namespace, and an escape should not land as root. nobody may
        not reach the interpreter (a pyenv under /root) or the run's folder (a private TMPDIR),
        so the launcher first mounts them, in a mount namespace of its own, under a fresh /tmp.
        """
        staged, preexec, seen_inputs = {}, None, str(inputs)
        if os.geteuid() == 0:
            staged = {folder: f"{STAGE}/python{i}" for i, folder in enumerate(interpreter_folders())}
            seen_inputs = f"{STAGE}/input"
            inputs.chmod(0o755)
            for child in inputs.iterdir():
                child.chmod(0o644)
            preexec = functools.partial(_stage_and_drop_root, _libc(), {**staged, str(inputs): seen_inputs})
        options = self.options(seen_inputs, disk_bytes, staged)
        program = seccomp_program()
        if program is None:  # an architecture without a syscall table here: namespaces alone
            return Launch([*options, "--", *argv], (), preexec)
        read_end, write_end = os.pipe()
        os.write(write_end, program)  # a few hundred bytes: far below the pipe's buffer
        os.close(write_end)
        return Launch([*options, "--seccomp", str(read_end), "--", *argv], (read_end,), preexec)


def interpreter_folders() -> list[str]:
    """The folders outside the system ones that the interpreter needs: its prefix, and its own folder if apart."""
    python, prefix = interpreter()
    folders = [] if _under(prefix, SYSTEM_DIRS) else [prefix]
    if not _under(python, [*SYSTEM_DIRS, prefix]):
        folders.append(os.path.dirname(python))
    return folders


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    """libc, loaded before any fork: nothing is imported or loaded between fork and exec."""
    return ctypes.CDLL(None, use_errno=True)


def _stage_and_drop_root(libc: ctypes.CDLL, staged: dict[str, str]) -> None:
    """Between fork and exec, as root: in a private mount namespace, cover STAGE with a tmpfs and
    bind each host folder at its staged path there (through descriptors opened in the new
    namespace before /tmp was covered), then become nobody for good. On failure it says why on
    stderr and exits 126 (an exception here would reach the parent without its message)."""
    def check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"cannot {what}: {os.strerror(errno)}")

    try:
        check(libc.unshare(CLONE_NEWNS), "make a mount namespace")
        check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
        sources = {os.open(folder, os.O_PATH | os.O_DIRECTORY): target for folder, target in staged.items()}
        check(libc.mount(b"k1-sandbox", STAGE.encode(), b"tmpfs", 0, b"mode=0755,size=64k"),
              f"mount a tmpfs on {STAGE}")
        for fd, target in sources.items():
            os.mkdir(target, 0o755)
            check(libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, MS_BIND | MS_REC, None),
                  f"bind {target}")
            os.close(fd)
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    except OSError as err:
        os.write(2, f"sandbox launcher: {err}\n".encode())
        os._exit(126)
