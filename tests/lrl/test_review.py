from __future__ import annotations

import pytest

from k1core.errors import UserError
from lrl.review import ask_person, require_terminal


def scripted_person(answers, edits=()):
    answers, edits, shown = list(answers), list(edits), []
    return dict(prompt=lambda *a, **k: answers.pop(0), edit=lambda text: edits.pop(0), echo=shown.append), shown


@pytest.mark.parametrize("answers,edits,expected", [
    ("a", (), {"decision": "accept", "text": "1. Sweep."}),
    ("r", (), {"decision": "reject", "text": None}),
    ("ea", ("1. Sweep events.\n",), {"decision": "edit", "text": "1. Sweep events."}),
    ("eea", (None, "  1. Mine. "), {"decision": "edit", "text": "1. Mine."}),  # editor closed unsaved, then edited
])
def test_ask_person(answers, edits, expected):
    io, shown = scripted_person(answers, edits)
    assert ask_person("1. Sweep.", adopted=False, **io) == expected
    assert "NOT adopted" in shown[0] and shown[1] == "1. Sweep."


def test_no_terminal_is_refused():
    require_terminal(True)
    with pytest.raises(UserError, match="--review needs an interactive terminal"):
        require_terminal(False)
