"""The one marked final-answer format every answer domain uses: a line `ANSWER: <value>`.

Lenient on presentation (case, spaces, `=` for `:`, markdown bold/italics/code, list bullets or
heading marks before the marker), strict on meaning: no marker, an empty value, or several marked
answers that disagree are parse failures with a reason. The published experiment instead took
"YES anywhere in the first 50 characters, else NO", which turned every unreadable response into NO.
"""
from __future__ import annotations

import re

ANSWER_MARKER = "ANSWER"

# Decoration a model may put around the marker line: bullets, headings, quotes, bold/italic/code.
_MARKED_LINE = re.compile(r"^[\s>#*_`\-]*answer[\s*_`]*[:=](?P<value>.*)$", re.IGNORECASE)
_DECORATION = " \t*_`\"'."


def marked_values(text: str) -> list[str]:
    """The values of every `ANSWER:` line in order, with decoration stripped (may be empty)."""
    values = []
    for line in text.splitlines():
        match = _MARKED_LINE.match(line)
        if match:
            values.append(match.group("value").strip(_DECORATION))
    return values


def final_value(text: str) -> tuple[str | None, str | None]:
    """(value, None) for one unambiguous marked answer, else (None, reason).

    Repeating the same value is fine (models often restate); different values are ambiguous.
    """
    if not isinstance(text, str):
        return None, "response is not text"
    values = marked_values(text)
    if not values:
        return None, f"no line of the form '{ANSWER_MARKER}: <value>'"
    distinct = {v.casefold() for v in values}
    if len(distinct) > 1:
        shown = ", ".join(repr(v) for v in dict.fromkeys(values))
        return None, f"conflicting marked answers: {shown[:120]}"
    value = values[-1]
    if not value:
        return None, "empty marked answer"
    return value, None


def answer_line(value: str) -> str:
    """The marked final line for `value`, as worked solutions end."""
    return f"{ANSWER_MARKER}: {value}"
