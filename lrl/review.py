"""`--review`: a person reads the distilled strategy and accepts, edits or rejects it before use.

Human-readable strategies are the point of the method, so a person can stop a bad one before it
teaches anything. The decision is saved in the run directory; a resumed run does not ask again.
"""
from __future__ import annotations

from typing import Callable

import click

from k1core.errors import UserError

NO_TERMINAL = "--review needs an interactive terminal, and standard input is not one; run without --review"
CHOICES = {"a": "accept", "e": "edit", "r": "reject"}


def require_terminal(stdin_is_tty: bool) -> None:
    """Refuse --review up front when nobody can answer (CI, pipes, nohup)."""
    if not stdin_is_tty:
        raise UserError(NO_TERMINAL)


def ask_person(strategy: str, adopted: bool, *, prompt: Callable = click.prompt, edit: Callable = click.edit,
               echo: Callable = click.echo) -> dict:
    """Show the strategy and return {"decision": accept|edit|reject, "text": the text to use or None}."""
    echo("\n--- distilled strategy " + ("(adopted on validation)" if adopted else
                                       "(NOT adopted: it did not beat the zero-shot prompt on validation)"))
    echo(strategy.strip())
    echo("---")
    text = strategy
    while True:
        answer = prompt("Use it? [a]ccept, [e]dit, [r]eject", type=click.Choice(list(CHOICES)), show_choices=False)
        decision = CHOICES[answer]
        if decision == "reject":
            return {"decision": "reject", "text": None}
        if decision == "accept":
            return {"decision": "accept" if text == strategy else "edit", "text": text}
        edited = edit(text)
        if edited is None or not edited.strip():
            echo("(no change saved in the editor)")
            continue
        text = edited.strip()
        echo("--- edited strategy\n" + text + "\n---")
