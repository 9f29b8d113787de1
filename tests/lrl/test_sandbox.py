import os
import time

import pytest

from lrl.sandbox import UNISOLATED, SandboxLimits, find_isolation
from lrl.sandbox import run_python as sandboxed

LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=2.0, memory_bytes=256 * 1024 * 1024, file_bytes=256 * 1024)
# The behaviour below holds under every isolation, the audit-hook-only one included, so it is
# tested under whichever this machine has; test_sandbox_hostile.py needs the real one.
ISOLATION = find_isolation()[0] or UNISOLATED


def run_python(program, limits=LIMITS):
    return sandboxed(program, limits, ISOLATION)


def test_a_normal_program_reports_and_prints():
    run = run_python("print('hello')\nreport({'sum': 1 + 2})", LIMITS)
    assert run.status == "exited" and run.returncode == 0
    assert run.report == {"sum": 3} and run.stdout.strip() == "hello"


def test_infinite_loop_is_stopped_by_the_cpu_limit():
    started = time.monotonic()
    run = run_python("while True:\n    pass", LIMITS)
    assert run.status == "timeout" and time.monotonic() - started < 4


def test_sleeping_forever_is_stopped_by_the_wall_clock():
    run = run_python("import time\ntime.sleep(60)", LIMITS)
    assert run.status == "timeout" and "wall clock" in run.detail


def test_memory_bomb_fails_inside_the_child():
    run = run_python("x = bytearray(8 * 1024 ** 3)", LIMITS)
    assert run.status == "exited" and run.returncode != 0 and "MemoryError" in run.detail


def test_fork_bomb_is_refused_and_leaves_no_processes():
    run = run_python("import os\nwhile True:\n    os.fork()", LIMITS)
    assert run.status == "exited" and run.returncode != 0 and "os.fork" in run.detail
    run = run_python("import subprocess\nsubprocess.Popen(['sleep', '30'])", LIMITS)
    assert run.returncode != 0 and "not allowed" in run.detail


def test_network_is_unreachable():
    program = "import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', 9))"
    run = run_python(program, LIMITS)
    assert run.returncode != 0 and "socket" in run.detail


def test_writes_outside_the_work_directory_are_refused(tmp_path):
    target = tmp_path / "escaped.txt"
    run = run_python(f"open({str(target)!r}, 'w').write('x')", LIMITS)
    assert run.returncode != 0 and "outside the work directory" in run.detail
    assert not target.exists()
    run = run_python(f"import os\nos.remove({str(tmp_path)!r})", LIMITS)
    assert run.returncode != 0 and tmp_path.exists()


def test_writes_inside_the_work_directory_are_allowed():
    run = run_python("open('scratch.txt', 'w').write('ok')\nreport(open('scratch.txt').read())", LIMITS)
    assert run.report == "ok"


def test_huge_output_is_capped_and_classified():
    run = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", LIMITS)
    assert run.returncode != 0 and "File too large" in run.detail
    assert len(run.stdout) <= LIMITS.output_chars + 40


def test_parent_is_unharmed_and_temp_dirs_are_removed(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a private /tmp: other runs cannot race
    run = run_python("open('left.txt', 'w').write('x')\nraise SystemExit(3)", LIMITS)
    assert run.returncode == 3
    assert not os.listdir(tmp_path)  # the run's folders are gone, whatever the program left in them
    assert os.getcwd() and open(__file__).read(1)  # still here, still able to read


def test_limits_are_validated():
    with pytest.raises(ValueError, match="cpu_seconds"):
        SandboxLimits(cpu_seconds=0)
