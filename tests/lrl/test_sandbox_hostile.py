"""Hostile programs against the sandbox, each judged by its side effect seen from outside.

Every attack runs twice under bubblewrap: with the audit hook (as the coding domain runs it) and
without (the OS isolation alone). Nothing here trusts the program's own account: a file is
looked for on the host, a sentinel process is checked alive, a listener is asked whether anyone
called, the host's process table is sampled during the run. The controls run the same probes
with no isolation at all and see the effect happen, so each probe is shown able to fail.
"""
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lrl.sandbox import UNISOLATED, SandboxLimits, find_isolation, run_python
from lrl.sandbox.bwrap import Bubblewrap

ISOLATION = find_isolation()[0]
pytestmark = pytest.mark.skipif(not isinstance(ISOLATION, Bubblewrap),
                                reason="bubblewrap is not installed or cannot isolate here "
                                       "(scripts/setup.sh installs it; see docs/sandbox.md)")
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4.0, memory_bytes=256 * 1024 * 1024, file_bytes=1024 * 1024,
                       disk_bytes=8 * 1024 * 1024, processes=16)
REPO = Path(__file__).resolve().parents[2]
REPO_MARK = "judged by its side effect seen from outside"  # a phrase of this file: the repository stays unseen
WALLS = pytest.mark.parametrize("audit_hook", [True, False], ids=["both-walls", "os-alone"])


def attack(program: str, audit_hook: bool):
    """Run `program` under bubblewrap, first making sure it ran at all (a sandbox that fails to
    start would pass every test below)."""
    run = run_python("print('hostile program started', flush=True)\n" + program, LIMITS, ISOLATION,
                     audit_hook=audit_hook)
    assert run.stdout.startswith("hostile program started"), run
    return run


def everything_seen(run) -> str:
    return f"{run.stdout}\n{run.stderr}\n{run.report}"


def host_processes_with(token: str) -> list[int]:
    """Host pids whose command line contains `token`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline:
                found.append(int(entry))
    return found


def gone_within(token: str, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while host_processes_with(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def attempts(*lines: str) -> str:
    """Each line as its own try block, and whatever it produced sent out on every channel."""
    body = "\n".join(f"try:\n    {line}\nexcept BaseException as e:\n    print('refused:', e)" for line in lines)
    return "import os, sys\n" + body


@pytest.fixture
def sentinel():
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


def sleep_token() -> str:
    return f"29.{secrets.randbelow(10**9):09d}"  # a unique `sleep` argument to find on the host


# ---------------------------------------------------------------- processes

PERSIST = """import os, sys
try:
    import subprocess
    subprocess.Popen(["/bin/sleep", TOKEN], start_new_session=True)
except BaseException as e:
    print("refused:", e)
try:
    if os.fork() == 0:
        os.setsid()
        os.execv("/bin/sleep", ["sleep", TOKEN])
except BaseException as e:
    print("refused:", e)
"""


@WALLS
def test_no_process_outlives_the_run(audit_hook):
    token = sleep_token()
    attack(PERSIST.replace("TOKEN", repr(token)), audit_hook)
    assert gone_within(token), "a process started in the sandbox is still running on the host"


def test_control_without_isolation_a_setsid_child_persists():
    token = sleep_token()
    attack_run = run_python(PERSIST.replace("TOKEN", repr(token)), LIMITS, UNISOLATED, audit_hook=False)
    survivors = host_processes_with(token)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors, f"the probe could not see the escaped process ({attack_run.detail})"


FORK_BOMB = """import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", TOKEN])
        children += 1
except BaseException as e:
    print("stopped after", children, e)
time.sleep(1.0)
"""


@WALLS
def test_a_fork_bomb_stops_at_the_process_limit(audit_hook):
    token, peak, running = sleep_token(), [0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], len(host_processes_with(token)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        attack(FORK_BOMB.replace("TOKEN", repr(token)), audit_hook)
    finally:
        running[0] = False
        sampler.join()
    assert peak[0] <= LIMITS.processes
    assert audit_hook or peak[0] > 0  # without the hook the bomb does fork: the sampler sees it
    assert gone_within(token)


@WALLS
def test_another_process_cannot_be_signalled_or_traced(audit_hook, sentinel):
    pid = sentinel.pid
    attack(attempts(f"import signal; signal.pidfd_send_signal(os.pidfd_open({pid}), signal.SIGKILL)",
                    f"os.kill({pid}, 9)",
                    "os.kill(-1, 9)",
                    f"import ctypes; print('ptrace', ctypes.CDLL(None).ptrace(16, {pid}, 0, 0))",
                    f"open('/proc/{pid}/mem', 'rb').read(1)"), audit_hook)
    time.sleep(0.1)
    assert sentinel.poll() is None, "the sentinel process was killed"
    status = Path(f"/proc/{pid}/status").read_text()
    assert "TracerPid:\t0" in status and "tracing stop" not in status


# ---------------------------------------------------------------- files

@WALLS
def test_nothing_outside_the_work_directory_is_written_or_removed(audit_hook, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    token = secrets.token_hex(6)
    targets = [tmp_path / "escaped.txt", Path("/tmp") / f"k1-escape-{token}", Path("/dev/shm") / f"k1-escape-{token}",
               Path.home() / f"k1-escape-{token}", Path(__file__).parent / f"k1-escape-{token}"]
    lines = [f"open({str(t)!r}, 'w').write('x')" for t in targets]
    lines += [f"fd = os.open({str(tmp_path)!r}, os.O_RDONLY); os.open('dirfd.txt', os.O_WRONLY | os.O_CREAT, dir_fd=fd)",
              f"fd = os.open({str(tmp_path)!r}, os.O_RDONLY); os.unlink('victim.txt', dir_fd=fd)",
              f"os.remove({str(victim)!r})",
              f"import sqlite3; sqlite3.connect({str(tmp_path / 'db.sqlite')!r}).execute('create table t(x)')",
              f"os.mkfifo({str(tmp_path / 'fifo')!r})",
              "open('/input/program.py', 'w').write('x')"]
    try:
        attack(attempts(*lines), audit_hook)
        assert victim.read_text() == "keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt"]
        assert not any(t.exists() for t in targets[1:])
    finally:
        for t in targets[1:]:
            t.unlink(missing_ok=True)


GC_PATCH = """import gc
try:
    for f in gc.get_objects():
        if getattr(f, "__name__", "") == "audit" and f.__closure__:
            for cell in f.__closure__:
                if isinstance(cell.cell_contents, str):
                    cell.cell_contents = "/"
except BaseException as e:
    print("refused:", e)
try:
    open(TARGET, "w").write("x")
except BaseException as e:
    print("refused:", e)
"""


@WALLS
def test_patching_the_audit_hook_through_gc_gains_nothing(audit_hook, tmp_path):
    target = tmp_path / "patched.txt"
    attack(GC_PATCH.replace("TARGET", repr(str(target))), audit_hook)
    assert not target.exists()


@WALLS
def test_the_disk_fills_only_to_its_cap(audit_hook):
    if "--size" not in ISOLATION.features:
        pytest.skip("this bwrap has no --size (before 0.7): the work directory is capped per file only")
    program = ("import os\ntotal = 0\ntry:\n    for i in range(64):\n"
               "        with open(f'f{i}', 'wb') as f:\n            f.write(b'x' * (1024 * 1024 - 1))\n"
               "        total += 1\nexcept BaseException as e:\n    print('stopped', e)\n"
               "import time\ntime.sleep(1.0)\nreport(total)")  # the full tmpfs stays up long enough to be sampled
    peak, running = [0], [True]
    before = _shmem_bytes()

    def sample():
        while running[0]:
            peak[0] = max(peak[0], _shmem_bytes() - before)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        attack(program, audit_hook)
    finally:
        running[0] = False
        sampler.join()
    # 64 MiB were attempted; the tmpfs holds 8 MiB (other processes on the machine add noise).
    assert peak[0] < 40 * 1024 * 1024
    assert audit_hook or peak[0] > 4 * 1024 * 1024  # the writes happen, and the sampler sees them


def _shmem_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Shmem line in /proc/meminfo")


# ---------------------------------------------------------------- secrets

def secret_probe(tmp_path: Path) -> str:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("file-" + secrets.token_hex(8))
    return attempts(f"print(open({str(secret_file)!r}).read())",
                    f"print(open({__file__!r}).read())",
                    "print(open(f'/proc/{os.getppid()}/environ', 'rb').read())",
                    "print(open(f'/proc/{os.getppid()}/cmdline', 'rb').read())",
                    "print([open(f'/proc/{p}/environ', 'rb').read() for p in os.listdir('/proc') if p.isdigit()])",
                    "print([open(f'/proc/{p}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit()])",
                    f"print(os.listdir({str(Path.home())!r}))",
                    "print(open('/etc/shadow').read())",
                    "report(dict(os.environ))")


PARENT = """import json, sys
from lrl.sandbox import UNISOLATED, SandboxLimits, find_isolation, run_python
isolation = find_isolation()[0] if sys.argv[1] == "isolated" else UNISOLATED
run = run_python(sys.stdin.read(), SandboxLimits(wall_seconds=4.0), isolation, audit_hook=sys.argv[2] == "1")
print(json.dumps([run.stdout, run.stderr, run.report]))
"""


def run_from_a_parent_with_secrets(program: str, isolated: bool, audit_hook: bool) -> tuple[str, list[str]]:
    """Run `program` from a fresh Python whose environment holds an API key and whose command line
    holds a token, as a k1 process would; returns what came back and the secrets to look for."""
    env_secret, argv_secret = "env-" + secrets.token_hex(8), "argv-" + secrets.token_hex(8)
    done = subprocess.run([sys.executable, "-c", PARENT, "isolated" if isolated else "none", str(int(audit_hook)),
                           argv_secret], input=program, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "K1_TEST_API_KEY": env_secret, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout, [env_secret, argv_secret]


@WALLS
def test_host_files_and_the_parents_environment_and_command_line_stay_hidden(audit_hook, tmp_path):
    seen, hidden = run_from_a_parent_with_secrets(secret_probe(tmp_path), True, audit_hook)
    assert not [s for s in hidden if s in seen]
    assert (tmp_path / "secret.txt").read_text() not in seen and REPO_MARK not in seen
    assert "root:" not in seen  # /etc/shadow


def test_control_without_isolation_the_secrets_are_seen(tmp_path):
    seen, hidden = run_from_a_parent_with_secrets(secret_probe(tmp_path), False, False)
    assert all(s in seen for s in hidden) and (tmp_path / "secret.txt").read_text() in seen and REPO_MARK in seen


# ---------------------------------------------------------------- network

SOCKETS = """import socket
for family, address in ((socket.AF_INET, ("127.0.0.1", PORT)), (socket.AF_UNIX, ABSTRACT)):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(address)
        s.sendall(b"escaped")
    except BaseException as e:
        print("refused:", e)
"""


@pytest.fixture
def listeners():
    """A TCP listener on loopback and one on an abstract unix socket, both non-blocking."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    unix = socket.socket(socket.AF_UNIX)
    abstract = "\0k1-sandbox-test-" + secrets.token_hex(6)
    unix.bind(abstract)
    unix.listen(4)
    for s in (tcp, unix):
        s.setblocking(False)
    program = SOCKETS.replace("PORT", str(tcp.getsockname()[1])).replace("ABSTRACT", repr(abstract))
    yield program, (tcp, unix)
    tcp.close()
    unix.close()


def connections(sockets) -> int:
    count = 0
    for s in sockets:
        try:
            s.accept()[0].close()
            count += 1
        except BlockingIOError:
            pass
    return count


@WALLS
def test_no_socket_reaches_the_host(audit_hook, listeners):
    program, sockets = listeners
    attack(program, audit_hook)
    assert connections(sockets) == 0


def test_control_without_isolation_the_listeners_are_reached(listeners):
    program, sockets = listeners
    run_python(program, LIMITS, UNISOLATED, audit_hook=False)
    assert connections(sockets) == 2


def test_the_seccomp_filter_is_in_force():
    """Inside the network namespace a socket could still be made; the filter refuses even that."""
    run = attack(attempts("import _socket; _socket.socket()"), audit_hook=False)
    assert "Operation not permitted" in run.stdout, run.stdout
