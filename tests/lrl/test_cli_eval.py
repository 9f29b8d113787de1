"""`k1 lrl eval` with a scripted model: the output path is checked first, answers are appended as
they come, a re-run continues, and a failed model call is an error of the run."""
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backends.spec
from backends.llm import Completion, LLMError, complete_sequentially
from cli import main
from lrl.domain import get_domain, write_problems


class CountingLLM:
    """Answers YES; fails like an overflowing context window on call `fail_at`, or is interrupted there."""

    backend, model, price, batch_discount, parallel = "scripted", "yes-1", None, False, 1

    def __init__(self, fail_at=None, interrupt=False):
        self.calls, self.fail_at, self.interrupt = 0, fail_at, interrupt

    def complete(self, messages, params):
        self.calls += 1
        if self.calls == self.fail_at:
            if self.interrupt:
                raise KeyboardInterrupt
            raise LLMError("llama.cpp (m.gguf): Requested tokens (5000) exceed context window of 4096")
        return Completion("ANSWER: YES", 10, 3, 0, 0, 0.01, 0.0, self.model, self.backend, "stop")

    def complete_many(self, requests, progress=None):
        return complete_sequentially(self, requests, progress)


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "problems.jsonl"
    write_problems(path, get_domain("scheduling").generate(6, 1, "test", "balanced"))
    return path


def use_model(monkeypatch, llm):
    monkeypatch.setattr(backends.spec, "build_llm", lambda spec, options=None: llm)
    return llm


def evaluate(problems, out):
    return CliRunner().invoke(main, ["lrl", "eval", "--model", "qwen0.5b", "--problems", str(problems),
                                     "--out", str(out)])


def lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_missing_output_folder_fails_before_any_model_call(tmp_path, problems, monkeypatch):
    llm = use_model(monkeypatch, CountingLLM())
    result = evaluate(problems, tmp_path / "no" / "such" / "results.jsonl")
    assert result.exit_code == 2 and "does not exist" in result.output and llm.calls == 0
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_a_context_overflow_is_an_error_of_the_run_and_a_rerun_continues(tmp_path, problems, monkeypatch):
    out = tmp_path / "results.jsonl"
    use_model(monkeypatch, CountingLLM(fail_at=4))
    result = evaluate(problems, out)
    assert result.exit_code == 2 and "exceed context window" in result.output
    assert "error of this run" in result.output and "3 of 6 answers are saved" in result.output
    assert [r["verdict"] for r in lines(out)] and len(lines(out)) == 3  # no parse_failure charged to the model
    llm = use_model(monkeypatch, CountingLLM())
    result = evaluate(problems, out)
    assert result.exit_code == 0 and llm.calls == 3 and "3 answers were already in" in result.output
    assert len(lines(out)) == 6 and len({r["id"] for r in lines(out)}) == 6


def test_an_interrupt_keeps_every_answer_so_far(tmp_path, problems, monkeypatch):
    out = tmp_path / "results.jsonl"
    use_model(monkeypatch, CountingLLM(fail_at=3, interrupt=True))
    result = evaluate(problems, out)
    assert result.exit_code != 0 and len(lines(out)) == 2
    with open(out, "ab") as f:
        f.write(b'{"id": "torn')  # a kill in the middle of a write
    llm = use_model(monkeypatch, CountingLLM())
    assert evaluate(problems, out).exit_code == 0 and llm.calls == 4 and len(lines(out)) == 6


def test_answers_of_another_model_or_file_are_not_mixed_in(tmp_path, problems, monkeypatch):
    out = tmp_path / "results.jsonl"
    use_model(monkeypatch, CountingLLM(fail_at=2))
    evaluate(problems, out)
    other = CountingLLM()
    other.model = "other-2"
    use_model(monkeypatch, other)
    result = evaluate(problems, out)
    assert result.exit_code == 2 and "choose another --out" in result.output and other.calls == 0
    out.write_text('{"id": "not-a-problem-here"}\n')
    result = evaluate(problems, out)
    assert result.exit_code == 2 and "not in this problems file" in result.output


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "missing", "file.txt", ".."]), min_size=1, max_size=4),
       st.sampled_from(["eval", "grade", "problems", "prompts", "score"]))
def test_fuzz_output_paths_never_give_a_traceback(tmp_path, problems, monkeypatch, parts, command):
    use_model(monkeypatch, CountingLLM())
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path.joinpath(*parts)
    results = tmp_path / "scored.jsonl"
    if not results.exists():
        assert evaluate(problems, results).exit_code == 0
    responses = tmp_path / "responses.jsonl"
    responses.write_bytes(b"".join(orjson.dumps({"id": r["id"], "response": "ANSWER: NO"}) + b"\n"
                                   for r in lines(results)))
    args = {"eval": ["eval", "--model", "qwen0.5b", "--problems", str(problems), "--out", str(out)],
            "grade": ["grade", str(problems), str(responses), "--out", str(out)],
            "problems": ["problems", "--domain", "scheduling", "--n", "3", "--out", str(out)],
            "prompts": ["prompts", str(problems), "--out", str(out)],
            "score": ["score", str(results), "--json", str(out)]}[command]
    result = CliRunner().invoke(main, ["lrl", *args])
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, ValueError))
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 0 or (result.exit_code == 2 and last.startswith(("k1: error:", "Error:"))), result.output


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=3))
def test_fuzz_failures_anywhere_lose_nothing_and_reruns_finish(tmp_path, problems, monkeypatch, failures):
    """Model calls failing at any points: every run saves what it answered, re-runs ask only the rest."""
    out = tmp_path / "fuzz" / "results.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)

    def saved():
        return len(lines(out)) if out.exists() else 0

    for fail_at in failures:
        llm = use_model(monkeypatch, CountingLLM(fail_at=fail_at))
        before = saved()
        result = evaluate(problems, out)
        assert result.exit_code in (0, 2) and "Traceback" not in result.output
        assert saved() == before + llm.calls - (1 if result.exit_code else 0)
    llm = use_model(monkeypatch, CountingLLM())
    before = saved()
    assert evaluate(problems, out).exit_code == 0 and llm.calls == 6 - before
    assert len(lines(out)) == 6 and len({r["id"] for r in lines(out)}) == 6
