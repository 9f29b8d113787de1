"""Which isolation runs model code, the refusal without one, --unsafe-sandbox in every report, and
the command lines and filters each isolation builds (macOS's checked as text: it cannot run here)."""
import struct

import orjson
import pytest
from click.testing import CliRunner

import lrl.sandbox.isolation as isolation
from backends.llm import Completion
from backends.pricing import Price
from cli import main
from k1core.errors import UserError
from lrl.domain import get_domain, write_problems
from lrl.pipeline import run
from lrl.run_config import RunConfig
from lrl.sandbox import UNISOLATED, UNSAFE_WARNING, active_isolation, code_sandbox, sandbox_summary
from lrl.sandbox.bwrap import Bubblewrap, interpreter
from lrl.sandbox.macos import SandboxExec, seatbelt_profile
from lrl.sandbox.seccomp import DENIED, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, SYSCALLS, seccomp_program


@pytest.fixture
def no_tool(monkeypatch):
    """A machine without any isolation tool; --unsafe-sandbox not given (restored after the test)."""
    monkeypatch.setattr(isolation, "find_isolation", lambda: (None, "bubblewrap (bwrap) is not installed"))
    monkeypatch.setattr(isolation, "_unsafe_permitted", False)


def test_without_a_tool_model_code_is_refused_naming_what_to_install(no_tool):
    with pytest.raises(UserError, match="apt-get install bubblewrap.*--unsafe-sandbox"):
        active_isolation()
    assert code_sandbox([get_domain("scheduling")]) is None  # domains that run no code need nothing


def test_unsafe_sandbox_permits_the_unisolated_run_and_says_so(no_tool):
    isolation.permit_unsafe_sandbox()
    assert active_isolation() is UNISOLATED
    assert sandbox_summary() == {"isolation": UNISOLATED.name, "isolated": False, "warning": UNSAFE_WARNING}


def coding_files(tmp_path):
    problems, responses = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    items = get_domain("coding").generate(2, 0, "test", "bank")
    write_problems(problems, items)
    responses.write_bytes(b"".join(orjson.dumps({"id": p.id, "response": f"```python\n{p.payload['reference']}\n```"})
                                   + b"\n" for p in items))
    return problems, responses


def test_grade_refuses_in_one_line_and_runs_loudly_with_the_flag(tmp_path, no_tool):
    problems, responses = coding_files(tmp_path)
    out = tmp_path / "graded.jsonl"
    refused = CliRunner().invoke(main, ["lrl", "grade", str(problems), str(responses), "--out", str(out)])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1 and "bubblewrap" in refused.output
    assert not out.exists()
    allowed = CliRunner().invoke(main, ["lrl", "grade", str(problems), str(responses), "--out", str(out),
                                        "--unsafe-sandbox"])
    assert allowed.exit_code == 0 and "pass 2" in allowed.output and UNSAFE_WARNING in allowed.output


class ReferenceLLM:
    """Answers every coding prompt with a syntactically valid function (right or wrong does not matter)."""

    backend, model, price, batch_discount = "scripted", "ref-1", Price(0.0, 0.0, 0.0, 0.0), False

    def __init__(self):
        self.calls = 0

    def complete(self, messages, params):
        self.calls += 1
        return Completion("```python\ndef f(*a):\n    return 0\n```", 10, 5, 0, 0, 0.0, 0.0, self.model, self.backend,
                          "stop")

    def complete_many(self, requests, progress=None):
        return [self.complete(r.messages, r.params) for r in requests]


def test_lrl_run_refuses_before_any_model_call_and_reports_unsafe_loudly(tmp_path, no_tool):
    llm = ReferenceLLM()
    config = RunConfig(domain="coding", stages=("0",), n_train=1, n_val=1, n_test=2, out=tmp_path / "run")
    with pytest.raises(UserError, match="bubblewrap"):
        run(config, llms={"teacher": llm, "student": llm})
    assert llm.calls == 0
    isolation.permit_unsafe_sandbox()
    results = run(config, llms={"teacher": llm, "student": llm})
    assert results["sandbox"]["warning"] == UNSAFE_WARNING
    assert UNSAFE_WARNING in (tmp_path / "run" / "report.md").read_text()
    assert orjson.loads((tmp_path / "run" / "results.json").read_bytes())["sandbox"]["isolated"] is False


def test_a_run_that_was_once_unisolated_keeps_saying_so(tmp_path, no_tool, monkeypatch):
    llm = ReferenceLLM()
    config = RunConfig(domain="coding", stages=("0",), n_train=1, n_val=1, n_test=2, out=tmp_path / "run")
    isolation.permit_unsafe_sandbox()
    run(config, llms={"teacher": llm, "student": llm})
    monkeypatch.setattr(isolation, "find_isolation", lambda: (Bubblewrap("/usr/bin/bwrap"), ""))
    results = run(config, llms={"teacher": llm, "student": llm})  # resumed later on an isolating machine
    assert results["sandbox"]["isolation"] == "bubblewrap" and results["sandbox"]["warning"] == UNSAFE_WARNING


# ---------------------------------------------------------------- the seccomp filter, run on a BPF interpreter

def run_bpf(program: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """A classic-BPF interpreter for the five instructions the filter uses, on struct seccomp_data."""
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data, acc, pc = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF}, 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = data[k]
        elif code == 0x06:
            return k
        elif code in (0x15, 0x35, 0x45):
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


@pytest.mark.parametrize("machine", sorted(SYSCALLS))
def test_seccomp_refuses_the_denied_calls_and_allows_the_rest(machine):
    arch, numbers = SYSCALLS[machine]
    program = seccomp_program(machine)
    assert set(numbers) == {*DENIED, "clone", "clone3"}
    for name in DENIED:
        assert run_bpf(program, numbers[name], arch) == RET_ERRNO | 1, name
    for allowed in (0, 1, 3, 60, 231):  # read/write/close/exit-like numbers, none denied on either table
        if allowed not in numbers.values():
            assert run_bpf(program, allowed, arch) == RET_ALLOW
    assert run_bpf(program, 0, 0x40000003) == RET_KILL_PROCESS  # another architecture's calls
    if machine == "x86_64":
        assert run_bpf(program, 0x40000000 + 1, arch) == RET_KILL_PROCESS  # x32 ABI


@pytest.mark.parametrize("machine", sorted(SYSCALLS))
def test_seccomp_lets_clone_fork_but_not_make_a_user_namespace(machine):
    arch, numbers = SYSCALLS[machine]
    program = seccomp_program(machine)
    fork_flags = 0x01200011  # SIGCHLD | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, as glibc's fork
    assert run_bpf(program, numbers["clone"], arch, fork_flags) == RET_ALLOW
    assert run_bpf(program, numbers["clone"], arch, fork_flags | 0x10000000) == RET_ERRNO | 1
    assert run_bpf(program, numbers["clone3"], arch) == RET_ERRNO | 38  # ENOSYS: libc falls back to clone


def test_an_unknown_machine_gets_no_filter():
    assert seccomp_program("sparc64") is None and seccomp_program("amd64") == seccomp_program("x86_64")


# ---------------------------------------------------------------- command lines

def test_bwrap_options_isolate_everything_and_bind_only_what_python_needs(tmp_path):
    options = Bubblewrap("/usr/bin/bwrap").options(str(tmp_path), 8 * 2**20)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                 "--clearenv"):
        assert flag in options
    assert options[options.index("--proc") + 1] == "/proc" and options[options.index("--dev") + 1] == "/dev"
    assert options[options.index("--size") + 1] == str(8 * 2**20) and options[options.index("--size") + 2] == "--tmpfs"
    sources = [options[i + 1] for i, o in enumerate(options) if o in ("--ro-bind", "--bind")]
    python, prefix = interpreter()
    assert "--bind" not in options  # nothing of the host is writable
    assert set(sources) <= {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", prefix, str(tmp_path),
                            str(__import__("os").path.dirname(python))}
    assert not any(s in ("/", "/root", "/home", "/work", "/tmp", "/etc") for s in sources)


def test_macos_profile_denies_by_default_and_writes_only_the_work_directory():
    profile = seatbelt_profile("/opt/py/bin/python3", "/opt/py", "/private/var/in", '/private/var/w"ork')
    lines = profile.splitlines()
    assert lines[:2] == ["(version 1)", "(deny default)"]
    assert "(deny network*)" in lines and "(deny process-fork)" in lines
    writes = [line for line in lines if line.startswith("(allow file-write*")]
    assert writes == ['(allow file-write* (subpath "/private/var/w\\"ork") (literal "/dev/null"))']
    assert '(allow process-exec (literal "/opt/py/bin/python3"))' in lines
    assert not any("network" in line and "allow" in line for line in lines)


def test_sandbox_exec_command_line(tmp_path):
    launch = SandboxExec().wrap(["python", "-I", "child.py"], tmp_path / "in", tmp_path / "work", 2**20)
    assert launch.argv[:2] == ["/usr/bin/sandbox-exec", "-p"] and launch.argv[3:] == ["python", "-I", "child.py"]
    assert "(deny default)" in launch.argv[2] and str((tmp_path / "work").resolve()) in launch.argv[2]


def test_an_old_bwrap_runs_without_the_options_it_lacks(tmp_path):
    options = Bubblewrap("/usr/bin/bwrap", frozenset()).options(str(tmp_path), 2**20)
    assert "--disable-userns" not in options and "--size" not in options
    assert "--unshare-all" in options and options[options.index("--tmpfs") + 1] == "/work"
