"""Run untrusted model-written Python: OS isolation first, an in-process audit hook second.

`run_python` is the entry point. The isolation comes from an established tool (`bwrap` on
Linux, `sandbox-exec` on macOS); without one, model code runs only after `--unsafe-sandbox`.
See docs/sandbox.md for the threat model and what each layer holds.
"""
from lrl.sandbox.isolation import (UNISOLATED, UNSAFE_WARNING, active_isolation, code_sandbox, find_isolation,
                                   permit_unsafe_sandbox, sandbox_line, sandbox_summary)
from lrl.sandbox.run import SandboxLimits, SandboxRun, run_python

__all__ = ["UNISOLATED", "UNSAFE_WARNING", "SandboxLimits", "SandboxRun", "active_isolation", "code_sandbox",
           "find_isolation", "permit_unsafe_sandbox", "run_python", "sandbox_line", "sandbox_summary"]
