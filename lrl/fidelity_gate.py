"""The fidelity gate: does the deployed artifact answer like the exact fused model it came from?

Reference ("the fused model's greedy answers"): the F16 GGUF of the fused weights, run greedily in
llama.cpp. It holds base + (alpha/r) B A exactly up to f16 rounding, and running it in the same
runtime and prompt format as the candidates means any disagreement is due to quantization, not to
a different attention kernel or tokenizer. Each candidate (Q8_0, Q4_K_M, ...) is run on the same
items; per item we compare the parsed final answers (two parse failures count as agreeing: both
gave no answer). A candidate fails when the items show it unfaithful at 95% confidence: the Wilson
upper bound of its agreement is below min_agreement, or the paired (Newcombe) CI of its accuracy
gap lies wholly beyond max_accuracy_gap. Judging the point estimates instead would fail any
artifact that disagrees on one item of fewer than 50 (one item is already 2.5 points of 40), so
the verdict would follow the gate's size rather than the artifact; judged on the intervals, a small
gate still stops an artifact that forgot what it learned, and a larger one tightens the bound, which
the report prints. Only the artifacts in `enforced` (the Q8_0 floor and the deployed artifact) can
fail the export; the others are reported alongside.

A gate on a model that says the same thing everywhere proves nothing (a quantization that
erased the learning agrees with a reference that never learned anything), so the reference must
be informative: at least two distinct parsed answers, or, when it gives one answer everywhere it
answers, answers that differ from the untrained base student's on more than max_accuracy_gap of
the items. A reference that never writes a parsable answer guards nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from k1core.errors import UserError
from lrl.evaluation import compare, summarize
from lrl.stats import wilson_interval

REFERENCE = "f16"


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate and which quantizations it enforces."""

    min_agreement: float = 0.98
    max_accuracy_gap: float = 0.02
    enforced: tuple[str, ...] = ("q8_0",)

    def __post_init__(self):
        if not 0.0 <= self.min_agreement <= 1.0:
            raise UserError(f"gate: min_agreement must be in [0, 1], got {self.min_agreement}")
        if not 0.0 <= self.max_accuracy_gap <= 1.0:
            raise UserError(f"gate: max_accuracy_gap must be in [0, 1], got {self.max_accuracy_gap}")
        object.__setattr__(self, "enforced", tuple(self.enforced))


def answer_key(record: dict) -> bytes:
    """What a record answered, comparable across runs (None for a parse failure)."""
    answer = None if record.get("parse_error") else record.get("parsed")
    return orjson.dumps(answer, option=orjson.OPT_SORT_KEYS)


def agreeing_items(reference: list[dict], candidate: list[dict]) -> tuple[int, int]:
    """(items on which the candidate's parsed answer equals the reference's, items)."""
    ref = {r["id"]: answer_key(r) for r in reference}
    cand = {r["id"]: answer_key(r) for r in candidate}
    if ref.keys() != cand.keys() or not ref:
        raise UserError("gate: the reference and candidate runs are not on the same items")
    return sum(ref[i] == cand[i] for i in ref), len(ref)


def agreement(reference: list[dict], candidate: list[dict]) -> float:
    """Fraction of items on which the candidate's parsed answer equals the reference's."""
    same, n = agreeing_items(reference, candidate)
    return same / n


def distinct_answers(records: list[dict]) -> int:
    """How many different parsed answers a run gave (parse failures not counted)."""
    return len({answer_key(r) for r in records if not r.get("parse_error")})


def needs_base_run(reference: list[dict]) -> bool:
    """Whether only the base student's answers can show the reference is informative (one answer everywhere)."""
    return distinct_answers(reference) == 1


def informative(reference: list[dict], base: list[dict] | None, config: GateConfig) -> dict:
    """Is the reference worth guarding: several distinct answers, or one answer the base student did not give?"""
    row = {"distinct_answers": distinct_answers(reference)}
    if base is not None:
        row["changed_from_base"] = 1.0 - agreement(reference, base)
    row["informative"] = row["distinct_answers"] >= 2 or (
        row["distinct_answers"] == 1 and row.get("changed_from_base", 0.0) > config.max_accuracy_gap)
    return row


def judge(runs: dict[str, list[dict]], config: GateConfig = GateConfig(), deployed: str | None = None,
          base: list[dict] | None = None) -> dict:
    """Gate verdict from result records per artifact (must include the F16 reference); `deployed`
    is enforced besides config.enforced; `base` (the untrained student's records) shows a
    reference with one answer everywhere still learned something."""
    if REFERENCE not in runs:
        raise UserError("gate: the F16 reference run is missing")
    enforced = tuple(dict.fromkeys(config.enforced + ((deployed,) if deployed else ())))
    ref_summary = summarize(runs[REFERENCE])
    out = {"reference": REFERENCE, "n": ref_summary["n"], "deployed": deployed, "config": {
        "min_agreement": config.min_agreement, "max_accuracy_gap": config.max_accuracy_gap,
        "enforced": list(enforced)}, "reference_check": informative(runs[REFERENCE], base, config), "runs": {}}
    passed = out["reference_check"]["informative"]
    for quant, records in runs.items():
        summary = summarize(records)
        row = {"accuracy": summary["accuracy"], "ci95": summary["ci95"],
               "parse_failure_rate": summary["parse_failure_rate"],
               "majority_baseline": (summary["classes"] or {}).get("majority_baseline", {}).get("accuracy")}
        if quant != REFERENCE:
            same, n = agreeing_items(runs[REFERENCE], records)
            row["agreement"], row["agreement_ci95"] = same / n, list(wilson_interval(same, n))
            row["accuracy_gap"] = summary["accuracy"] - ref_summary["accuracy"]
            row["accuracy_gap_ci95"] = gap_low, gap_high = compare(records, runs[REFERENCE])["difference_ci95"]
            row["passes"] = (row["agreement_ci95"][1] >= config.min_agreement
                             and gap_high >= -config.max_accuracy_gap and gap_low <= config.max_accuracy_gap)
            row["enforced"] = quant in enforced
            passed &= row["passes"] or not row["enforced"]
        out["runs"][quant] = row
    missing = [q for q in enforced if q not in runs]
    if missing:
        raise UserError(f"gate: no run for the enforced quantization(s) {missing}")
    out["passed"] = passed
    return out


def render_gate(gate: dict) -> str:
    """A markdown table of the gate: accuracy with CI, agreement with the reference, verdict."""
    lines = [f"### Fidelity gate ({gate['n']} items, reference: fused F16 GGUF in llama.cpp, greedy)", "",
             "| model | accuracy [95% CI] | parse failures | agreement [95% CI] | gap [paired 95% CI] | verdict |",
             "|---|---|---|---|---|---|"]
    for quant, row in gate["runs"].items():
        low, high = row["ci95"]
        acc = f"{100 * row['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
        fails = f"{100 * row['parse_failure_rate']:.1f}%"
        if quant == gate["reference"]:
            lines.append(f"| {quant} (reference) | {acc} | {fails} | - | - | - |")
            continue
        verdict = ("pass" if row["passes"] else "FAIL") + ("" if row["enforced"] else " (reported only)")
        name = f"{quant} (deployed)" if quant == gate.get("deployed") else quant
        gap_low, gap_high = row["accuracy_gap_ci95"]
        agree_low, agree_high = row["agreement_ci95"]
        lines.append(f"| {name} | {acc} | {fails} | {100 * row['agreement']:.1f}% [{100 * agree_low:.1f}, "
                     f"{100 * agree_high:.1f}] | {100 * row['accuracy_gap']:+.1f} pts "
                     f"[{100 * gap_low:+.1f}, {100 * gap_high:+.1f}] | {verdict} |")
    cfg, ref = gate["config"], gate["reference_check"]
    changed = (f", {100 * ref['changed_from_base']:.1f}% of its answers differ from the base student's"
               if "changed_from_base" in ref else "")
    lines += ["", f"Reference: {ref['distinct_answers']} distinct answers{changed}"
              + ("" if ref["informative"] else " (uninformative: no answer, or one answer everywhere as the base student gives)"),
              f"Gate: an artifact fails when its agreement's 95% upper bound is below {100 * cfg['min_agreement']:.0f}% "
              f"or its gap's paired 95% CI lies wholly beyond ±{100 * cfg['max_accuracy_gap']:.0f} points; "
              f"enforced for {', '.join(cfg['enforced'])}, on an informative reference: "
              f"**{'PASSED' if gate['passed'] else 'FAILED'}**"]
    return "\n".join(lines)
