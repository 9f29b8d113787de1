"""k1_structure.png's content: which ops it marks, where, and what its title says."""
import pytest

from k1core.plots import plot_structure, structure_markers, structure_summary


def k1_result() -> dict:
    """A hand-made K-1 result: two kept grows, a prune rolled back, a kept reorganize, a diagnostic."""
    events = [{"step": 100, "type": "grow", "kept": True}, {"step": 130, "type": "prune", "kept": False},
              {"step": 130, "type": "rollback", "op": "prune"}, {"step": 160, "type": "grow", "kept": True},
              {"step": 190, "type": "reorganize", "kept": True},
              {"step": 150, "type": "diagnostic", "kind": "instability"}]
    history = [{"step": s, "agents": 21 + 2 * (s >= 100) + 2 * (s >= 160), "mean_trust": 0.5,
                "probe_loss": 3.0 - s / 200} for s in range(0, 201, 10)]
    return {"model": "k1", "history": {"val_step": [0, 100, 200], "val_loss": [3.0, 2.5, 2.0]},
            "stats": {"history": history}, "events": {"list": events}}


def test_every_op_is_marked_on_the_validation_curve_with_whether_it_was_kept():
    groups = structure_markers(k1_result())
    assert [(g["op"], g["kept"], g["steps"]) for g in groups] == [
        ("grow", True, [100, 160]), ("prune", False, [130]), ("reorganize", True, [190])]
    assert groups[0]["loss"] == pytest.approx([2.5, 2.2]) and groups[1]["loss"] == pytest.approx([2.35])
    assert structure_summary(groups) == "grow 2 (2 kept), prune 1 (0 kept), reorganize 1 (1 kept)"
    assert structure_summary([]) == "no structural change"


def test_the_structure_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "k1_structure.png"
    assert plot_structure(k1_result(), path) == f"structure plot: {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
