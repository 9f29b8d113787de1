"""What a scheduling solution says the peak is: the most meetings in progress at once, or the rooms needed.

Lenient on presentation: case, markdown, number words, and the many ways to say it ("the peak is
3", "maximum overlap: 3", "3 meetings at once", "needs 3 rooms", "3 rooms are required"). Strict
on meaning: a time named in the same sentence ("the maximum, 3, is reached at 10") is not taken
for the count, and when a solution states the peak several times its last statement is the claim
(earlier ones are often a running maximum). A solution that never says it has no claim at all.
"""
from __future__ import annotations

import re

NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_WORD = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b")
# An integer that is not part of a clock time or a decimal; ten digits or more are no count of meetings.
_COUNT = r"(?<![\d:.])(\d{1,9})(?![\d:]|\.\d)"
_TIME_BEFORE = re.compile(r"(?:\bat|\bfrom|\bto|\bbetween|\buntil|\band|\bby|-|–)\s*$")

# A peak word, then (within the sentence) the count it names.
_KEYWORD = re.compile(r"\b(?:peak|maximum|max|most|highest|largest|greatest|minimum)\b[^\n.;!?]{0,80}")
# The count, then what it counts.
_COUNT_FIRST = re.compile(
    _COUNT + r"\s+(?:meetings?\s+)?(?:are\s+|run\s+|happen\s+|in progress\s+)?"
    r"(?:overlap\w*|at once|at the same time|simultaneous\w*|concurrent\w*)"
    r"|" + _COUNT + r"\s+rooms?\s+(?:are\s+|is\s+)?(?:needed|required|necessary|enough)")
_NEED_COUNT = re.compile(r"\b(?:needs?|needed|requires?|required|uses?)\s+(?:at least\s+|a minimum of\s+)?"
                         + _COUNT + r"\s+rooms?")


def _normalised(text: str) -> str:
    text = re.sub(r"[*_`#>]", " ", text.casefold())
    return _WORD.sub(lambda m: NUMBER_WORDS[m.group(1)], text)


def _count_after_keyword(window: str) -> int | None:
    """The first integer in `window` that is not introduced as a time ("at 10", "from 9")."""
    for match in re.finditer(_COUNT, window):
        if not _TIME_BEFORE.search(window[:match.start()]):
            return int(match.group(1))
    return None


def peak_claims(text: str) -> list[int]:
    """Every count the text states as the peak / rooms needed, in reading order."""
    text = _normalised(text)
    found: list[tuple[int, int]] = []  # (position, count)
    for match in _KEYWORD.finditer(text):
        count = _count_after_keyword(match.group(0)[len(match.group(0).split()[0]):])
        if count is not None:
            found.append((match.start(), count))
    for pattern in (_COUNT_FIRST, _NEED_COUNT):
        for match in pattern.finditer(text):
            count = next(g for g in match.groups() if g is not None)
            found.append((match.start(), int(count)))
    return [count for _, count in sorted(found)]


def stated_peak(text: str) -> int | None:
    """The solution's final word on the peak (its last claim), or None when it states none."""
    claims = peak_claims(text)
    return claims[-1] if claims else None
