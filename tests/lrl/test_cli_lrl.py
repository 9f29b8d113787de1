"""`k1 lrl problems` and `k1 lrl score` driven in-process with click's CliRunner."""
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import main
from lrl.domain import get_domain, read_problems
from tests.lrl.records import records_from


def run(*args):
    return CliRunner().invoke(main, ["lrl", *args])


def test_problems_writes_the_published_test_set(tmp_path):
    out = tmp_path / "test.jsonl"
    result = run("problems", "--domain", "scheduling", "--variant", "seed", "--split", "test",
                 "--n", "150", "--seed", "123", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "YES 132, NO 18" in result.output
    assert len(read_problems(out)) == 150


def test_problems_avoids_files_given_with_disjoint_from(tmp_path):
    test = tmp_path / "test.jsonl"
    assert run("problems", "--domain", "scheduling", "--n", "150", "--seed", "123", "--out", str(test)).exit_code == 0
    train = tmp_path / "train.jsonl"
    result = run("problems", "--domain", "scheduling", "--variant", "balanced", "--split", "train", "--n", "300",
                 "--seed", "42", "--out", str(train), "--disjoint-from", str(test))
    assert result.exit_code == 0, result.output
    domain = get_domain("scheduling")
    keys = {domain.canonical_key(p) for p in read_problems(test)}
    assert not keys & {domain.canonical_key(p) for p in read_problems(train)}
    result = run("problems", "--domain", "scheduling", "--variant", "seed", "--split", "train", "--n", "100",
                 "--seed", "42", "--out", str(tmp_path / "x.jsonl"), "--disjoint-from", str(test))
    assert result.exit_code == 2 and "cannot exclude" in result.output


@pytest.mark.parametrize("args, message", [
    (["--domain", "chess"], "unknown domain 'chess'"),
    (["--domain", "scheduling", "--variant", "huge"], "unknown scheduling variant 'huge'"),
    (["--domain", "scheduling", "--difficulty", "extreme"], "unknown difficulty 'extreme'"),
    (["--domain", "coding", "--variant", "bank", "--n", "500"], "fewer than 500"),
    (["--domain", "scheduling", "--n", "100000000"], "between 1 and 100000"),
    (["--domain", "coding", "--variant", "families", "--n", "50000"], "could only draw"),
])
def test_problems_bad_arguments_give_one_line(tmp_path, args, message):
    result = run("problems", *args, "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def write_results(path, responses, model):
    domain = get_domain("scheduling")
    problems = domain.generate(150, 123, "test", "seed")
    records = records_from(domain, problems, responses(problems, domain), model=model)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_score_prints_the_table_and_writes_json(tmp_path):
    yes, solved = tmp_path / "yes.jsonl", tmp_path / "solved.jsonl"
    write_results(yes, lambda ps, d: ["ANSWER: YES"] * len(ps), "always-yes")
    write_results(solved, lambda ps, d: [d.worked_solution(p) for p in ps], "oracle")
    report = tmp_path / "report.json"
    result = run("score", str(yes), "--against", str(solved), "--json", str(report))
    assert result.exit_code == 0, result.output
    assert "always YES" in result.output and "88.0%" in result.output and "McNemar" in result.output
    data = orjson.loads(report.read_bytes())
    assert data["summary"]["accuracy"] == pytest.approx(0.88)
    assert data["comparison"]["only_b"] == 18 and data["comparison"]["difference"] == pytest.approx(-0.12)


def test_score_bad_input_names_file_and_line(tmp_path):
    result = run("score", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2 and "missing.jsonl: no such file" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "verdict": "correct"}\n{"id": "b", "verdict": \n')
    result = run("score", str(bad))
    assert result.exit_code == 2 and f"{bad}:2: not valid JSON" in result.output
    assert result.output.count("\n") == 1


def test_grade_turns_responses_into_results_and_rejects_gaps(tmp_path):
    problems = tmp_path / "p.jsonl"
    assert run("problems", "--domain", "arithmetic", "--n", "3", "--seed", "1", "--out", str(problems)).exit_code == 0
    ids = [p.id for p in read_problems(problems)]
    responses = tmp_path / "r.jsonl"
    responses.write_bytes(b"".join(orjson.dumps({"id": i, "response": "ANSWER: 1/2", "model": "m"}) + b"\n" for i in ids))
    results = tmp_path / "res.jsonl"
    result = run("grade", str(problems), str(responses), "--out", str(results))
    assert result.exit_code == 0, result.output
    assert run("score", str(results)).exit_code == 0
    responses.write_bytes(orjson.dumps({"id": ids[0], "response": "ANSWER: 1"}) + b"\n")
    result = run("grade", str(problems), str(responses), "--out", str(results))
    assert result.exit_code == 2 and "no response for 2 problems" in result.output
    responses.write_bytes(orjson.dumps({"id": "nope", "response": "x"}) + b"\n")
    result = run("grade", str(problems), str(responses), "--out", str(results))
    assert result.exit_code == 2 and "r.jsonl:1: id 'nope'" in result.output


def test_user_calendar_end_to_end(tmp_path):
    calendar = tmp_path / "cal.jsonl"
    calendar.write_text('{"id": "mon", "meetings": [[540, 600], [570, 660]], "rooms": 1, "unit": "minute"}\n'
                        '{"id": "tue", "meetings": [[9, 10], [10, 11]], "rooms": 1}\n')
    prompts = tmp_path / "prompts.jsonl"
    strategy = tmp_path / "strategy.txt"
    strategy.write_text("Sweep over start and end events.")
    result = run("prompts", str(calendar), "--out", str(prompts), "--strategy", str(strategy), "--domain", "scheduling")
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in prompts.read_bytes().splitlines()]
    assert [line["id"] for line in lines] == ["mon", "tue"] and "09:00-10:00" in lines[0]["prompt"]
    assert "Sweep over" in lines[0]["prompt"]
    responses = tmp_path / "responses.jsonl"
    responses.write_text('{"id": "mon", "response": "ANSWER: NO"}\n{"id": "tue", "response": "ANSWER: NO"}\n')
    results = tmp_path / "results.jsonl"
    result = run("grade", str(calendar), str(responses), "--out", str(results), "--domain", "scheduling")
    assert result.exit_code == 0 and "correct 1, wrong 1" in result.output
    result = run("grade", str(calendar), str(responses), "--out", str(results))
    assert result.exit_code == 2 and "cal.jsonl:1: key 'domain'" in result.output


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=100_001, max_value=10**15))
def test_fuzz_problem_counts_past_the_bound_are_refused_at_once(n):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        result = run("problems", "--domain", "arithmetic", "--n", str(n), "--out", f"{tmp}/o.jsonl")
        assert result.exit_code == 2 and "between 1 and 100000" in result.output
        assert result.output.count("\n") == 1
