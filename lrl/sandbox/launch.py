"""The seam between the sandbox runner and an isolation tool: what each tool must say, and what it hands back."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol


@dataclass(frozen=True)
class Launch:
    """What to execute, the descriptors it inherits (the caller closes them after starting it), and
    what the launcher does between fork and exec, if anything."""

    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    preexec_fn: Callable[[], None] | None = None


class Isolation(Protocol):
    """One way to run the sandbox's child: bubblewrap, sandbox-exec, or none (--unsafe-sandbox)."""

    name: str
    isolated: bool

    def paths(self, inputs: Path, work: Path) -> tuple[str, str]:
        """Where the child sees its read-only inputs folder and its work directory."""

    def wrap(self, argv: list[str], inputs: Path, work: Path, disk_bytes: int) -> Launch:
        """`argv` (the child's command line, in its own view of paths) wrapped in the tool."""

    def returncode(self, code: int) -> int:
        """The child's exit status as Popen reports it (negative: killed by that signal)."""


def interpreter() -> tuple[str, str]:
    """(the real Python executable, the real installation prefix it needs to start)."""
    return os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)
