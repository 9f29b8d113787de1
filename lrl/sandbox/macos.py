"""macOS isolation with `sandbox-exec`: a deny-by-default Seatbelt profile written per run.

The profile lets the interpreter start (read its own prefix and the system libraries), read the
run's inputs, and read and write its work directory; everything else is denied, the network
explicitly, and so are new processes. Seatbelt paths are real paths (`/private/var/...`), so
every folder is resolved before it is written into the profile.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lrl.sandbox.launch import Launch, interpreter

SANDBOX_EXEC = "/usr/bin/sandbox-exec"
SYSTEM_READ = ("/usr/lib", "/usr/share", "/System", "/Library/Apple", "/private/var/db/timezone")
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


def _quoted(path: str) -> str:
    """A Seatbelt string literal."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def seatbelt_profile(python: str, prefix: str, inputs: str, work: str) -> str:
    """The deny-by-default profile for one run."""
    reads = " ".join(f"(subpath {_quoted(p)})" for p in (*SYSTEM_READ, prefix, inputs, work))
    devices = " ".join(f"(literal {_quoted(d)})" for d in DEVICES)
    return "\n".join([
        "(version 1)",
        "(deny default)",
        f"(allow process-exec (literal {_quoted(python)}))",
        "(allow process-info* (target self))",
        "(allow signal (target self))",
        "(allow sysctl-read)",
        "(allow file-read-metadata)",
        f"(allow file-read* {reads} {devices})",
        f"(allow file-write* (subpath {_quoted(work)}) (literal \"/dev/null\"))",
        "(deny network*)",
        "(deny process-fork)",
        "",
    ])


@dataclass(frozen=True)
class SandboxExec:
    """Runs a command under macOS `sandbox-exec` with `seatbelt_profile`."""

    tool: str = SANDBOX_EXEC
    name: str = "sandbox-exec"
    isolated: bool = True

    def paths(self, inputs: Path, work: Path) -> tuple[str, str]:
        return os.path.realpath(inputs), os.path.realpath(work)

    def returncode(self, code: int) -> int:
        return code

    def wrap(self, argv: list[str], inputs: Path, work: Path, disk_bytes: int) -> Launch:
        """`argv` under sandbox-exec; the disk cap is RLIMIT_FSIZE per file (no tmpfs here)."""
        python, prefix = interpreter()
        profile = seatbelt_profile(python, prefix, *self.paths(inputs, work))
        return Launch([self.tool, "-p", profile, *argv])
