from bench.bench_export_table import render_table


def run(accuracy, gap, agreement, failures=0.0):
    return {"accuracy": accuracy, "ci95": [accuracy - 0.05, accuracy + 0.05], "parse_failure_rate": failures,
            "agreement": agreement, "agreement_ci95": [agreement - 0.02, 1.0],
            "accuracy_gap": gap, "accuracy_gap_ci95": [gap - 0.03, gap + 0.03]}


def test_rows_come_smallest_first_with_their_comparison_to_f16():
    payload = {"sizes": {"f16": 3 * 2**20, "q4_k_m": 1 * 2**20, "adapter": 2 * 2**20},
               "gate": {"n": 200, "reference": "f16",
                        "runs": {"f16": run(0.9, 0, 1), "q4_k_m": run(0.0, -0.9, 0.0, failures=1.0),
                                 "adapter": run(0.9, 0.0, 1.0)}},
               "decode": {"f16": {"tokens_per_s": 20.0}, "adapter": {"tokens_per_s": 41.25}}}
    rows = [line for line in render_table(payload).splitlines() if line.startswith("| ") and "artifact" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| q4_k_m", "| adapter", "| f16"]
    assert rows[0] == "| q4_k_m | 1 | - | 0.0% [-5.0, 5.0] | 100.0% | 0.0% [-2.0, 100.0] | -90.0 [-93.0, -87.0] |"
    assert rows[1].split(" | ")[2] == "41.2" and rows[2].endswith("| - | - |")
