"""The fidelity gate's arithmetic: agreement on parsed answers, accuracy gap, which quantizations can fail."""
from __future__ import annotations

import pytest

from k1core.errors import UserError
from lrl.fidelity_gate import GateConfig, agreement, judge, render_gate


def run(answers, truth="YES"):
    """Records as lrl.evaluation writes them; None is a parse failure."""
    return [{"id": str(i), "expected": truth, "parsed": a, "parse_error": None if a else "no ANSWER line",
             "verdict": "parse_failure" if a is None else "correct" if a == truth else "wrong", "difficulty": "all"}
            for i, a in enumerate(answers)]


def test_identical_runs_pass_and_parse_failures_agree():
    ref = run(["YES"] * 90 + ["NO"] * 5 + [None] * 5)
    gate = judge({"f16": ref, "q8_0": run(["YES"] * 90 + ["NO"] * 5 + [None] * 5)})
    assert gate["passed"] and gate["runs"]["q8_0"]["agreement"] == 1.0 and gate["runs"]["q8_0"]["accuracy_gap"] == 0.0
    assert "PASSED" in render_gate(gate)


def test_low_agreement_fails_even_when_accuracy_matches():
    ref = run(["YES"] * 50 + ["NO"] * 50)
    swapped = run(["NO"] * 3 + ["YES"] * 50 + ["NO"] * 47)  # same accuracy, 6 items disagree
    gate = judge({"f16": ref, "q8_0": swapped})
    assert gate["runs"]["q8_0"]["accuracy_gap"] == 0.0
    assert gate["runs"]["q8_0"]["agreement"] == pytest.approx(0.94) and not gate["passed"]
    assert "FAIL" in render_gate(gate)


def test_an_accuracy_gap_shown_beyond_two_points_fails():
    ref = run(["YES"] * 100)
    worse = run(["YES"] * 90 + ["NO"] * 10)  # 90% agreement would fail too; loosen it to isolate the gap
    gate = judge({"f16": ref, "q8_0": worse}, GateConfig(min_agreement=0.9))
    row = gate["runs"]["q8_0"]
    assert row["accuracy_gap"] == pytest.approx(-0.10) and row["accuracy_gap_ci95"][1] < -0.02 and not gate["passed"]


def test_one_disagreement_on_a_small_gate_is_not_evidence_of_unfaithfulness():
    ref = run(["YES"] * 24 + ["NO"] * 16)
    one_off = run(["NO"] + ["YES"] * 23 + ["NO"] * 16)  # 2.5 points on 40 items: beyond 2 points, within noise
    gate = judge({"f16": ref, "q8_0": one_off})
    row = gate["runs"]["q8_0"]
    assert row["accuracy_gap"] == pytest.approx(-0.025) and row["agreement"] == pytest.approx(0.975)
    assert gate["passed"] and row["agreement_ci95"][1] > 0.98 and row["accuracy_gap_ci95"][0] < -0.02
    forgot = run(["YES"] * 40)  # the learned NO answers are gone: 40% worse
    assert not judge({"f16": ref, "q8_0": forgot})["passed"]


def test_unenforced_quantization_is_reported_but_cannot_fail_the_gate():
    ref = run(["YES"] * 95 + ["NO"] * 5)
    gate = judge({"f16": ref, "q8_0": run(["YES"] * 95 + ["NO"] * 5), "q4_k_m": run(["NO"] * 15 + ["YES"] * 85)})
    assert gate["passed"] and not gate["runs"]["q4_k_m"]["passes"] and not gate["runs"]["q4_k_m"]["enforced"]
    assert "reported only" in render_gate(gate)


def test_the_deployed_artifact_is_enforced_and_its_paired_gap_has_a_ci():
    ref = run(["YES"] * 50 + ["NO"] * 50)
    lost = run(["NO"] * 10 + ["YES"] * 40 + ["NO"] * 50)  # 10 right answers lost
    gate = judge({"f16": ref, "q8_0": ref, "q4_k_m": lost}, deployed="q4_k_m")
    row = gate["runs"]["q4_k_m"]
    assert row["enforced"] and not gate["passed"] and gate["config"]["enforced"] == ["q8_0", "q4_k_m"]
    assert row["accuracy_gap"] == pytest.approx(-0.10) and row["accuracy_gap_ci95"][0] < -0.1 < row["accuracy_gap_ci95"][1] < 0
    assert "q4_k_m (deployed)" in render_gate(gate)


def test_a_reference_with_one_answer_everywhere_passes_only_if_training_changed_it():
    everyone_yes = run(["YES"] * 100)
    gate = judge({"f16": everyone_yes, "q8_0": everyone_yes})
    assert not gate["passed"] and not gate["reference_check"]["informative"]  # nothing shows it learned
    assert not judge({"f16": everyone_yes, "q8_0": everyone_yes}, base=everyone_yes)["passed"]
    changed = judge({"f16": everyone_yes, "q8_0": everyone_yes}, base=run(["NO"] * 60 + [None] * 40))
    assert changed["passed"] and changed["reference_check"]["changed_from_base"] == 1.0
    assert "uninformative" in render_gate(gate) and "uninformative" not in render_gate(changed)
    never_answers = run([None] * 100)
    assert not judge({"f16": never_answers, "q8_0": never_answers}, base=run(["NO"] * 100))["passed"]


def test_missing_runs_and_mismatched_items_are_errors():
    with pytest.raises(UserError, match="F16 reference"):
        judge({"q8_0": run(["YES"])})
    with pytest.raises(UserError, match="enforced"):
        judge({"f16": run(["YES", "NO"]), "q4_k_m": run(["YES", "NO"])})
    with pytest.raises(UserError, match="same items"):
        agreement(run(["YES"]), run(["YES", "NO"]))
    with pytest.raises(UserError, match="min_agreement"):
        GateConfig(min_agreement=1.5)
