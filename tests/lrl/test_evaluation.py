import orjson
import pytest

from k1core.errors import UserError
from lrl.domains.scheduling import SchedulingDomain
from lrl.evaluation import compare, read_results, render_report, score_files, summarize
from tests.lrl.records import records_from

DOMAIN = SchedulingDomain()
TEST = DOMAIN.generate(150, 123, "test", "seed")


def test_always_yes_scores_exactly_the_majority_baseline():
    summary = summarize(records_from(DOMAIN, TEST, ["ANSWER: YES"] * 150))
    assert summary["correct"] == 132 and summary["accuracy"] == pytest.approx(0.88)
    classes = summary["classes"]
    assert classes["majority_class"] == "YES" and classes["majority_baseline"]["accuracy"] == pytest.approx(0.88)
    assert classes["balanced_accuracy"] == pytest.approx(0.5)
    assert classes["confusion"] == {"NO": {"YES": 18}, "YES": {"YES": 132}}
    assert summary["by_difficulty"]["easy"]["accuracy"] == 1.0


def test_parse_failures_are_counted_and_never_scored_as_an_answer():
    responses = ["no idea"] * 150
    summary = summarize(records_from(DOMAIN, TEST, responses))
    assert summary["accuracy"] == 0 and summary["parse_failure_rate"] == 1.0
    assert summary["classes"]["confusion"]["NO"] == {"<parse failure>": 18}


def test_paired_comparison_counts_discordant_items():
    perfect = records_from(DOMAIN, TEST, [DOMAIN.worked_solution(p) for p in TEST])
    always_yes = records_from(DOMAIN, TEST, ["ANSWER: YES"] * 150)
    result = compare(perfect, always_yes)
    assert (result["both_correct"], result["only_a"], result["only_b"], result["both_wrong"]) == (132, 18, 0, 0)
    assert result["difference"] == pytest.approx(0.12)
    assert result["mcnemar_exact_p"] == pytest.approx(2 / 2 ** 18)
    low, high = result["difference_ci95"]
    assert 0 < low < 0.12 < high


def test_comparison_refuses_different_items():
    a = records_from(DOMAIN, TEST[:10], ["ANSWER: YES"] * 10)
    b = records_from(DOMAIN, TEST[1:11], ["ANSWER: YES"] * 10)
    with pytest.raises(UserError, match="not on the same items"):
        compare(a, b)


def test_results_file_round_trip_and_report(tmp_path):
    path = tmp_path / "r.jsonl"
    records = records_from(DOMAIN, TEST, ["ANSWER: YES"] * 150, model="m", stage="baseline")
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    report = score_files(path, path)
    assert report["comparison"]["difference"] == 0 and report["comparison"]["mcnemar_exact_p"] == 1.0
    text = render_report(report)
    assert "always YES" in text and "88.0%" in text and "McNemar" in text


@pytest.mark.parametrize("content, message", [
    (b'{"id": 1, "verdict": "correct"}\n{"id": 2}\n', r"r.jsonl:2: key 'verdict'"),
    (b'{"verdict": "correct"}\n', r"r.jsonl:1: missing key 'id'"),
    (b'{"id": 1, "verdict": "correct"}\n{"id": 1, "verdict": "wrong"}\n', r"r.jsonl:2: duplicate id"),
    (b"\n\n", "no result lines"),
    (b'{"id": 1, "verdict": "correct"}\nnot json\n', r"r.jsonl:2: not valid JSON"),
])
def test_bad_results_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_results(path)
