"""The equations a worked arithmetic solution states (`17 x (1 - 1/3) = 34/3`), read exactly.

Lenient on presentation: x, ×, *, · for times; ÷ for divide; unicode minus; the problem's unit
words around the numbers ("12 kg + 5 kg = 17 kg"), a label before a colon ("Step 2: 17 - 4 = 13"),
"of" for times ("1/3 of 12 = 4"), markdown bold and list marks, mixed numbers (1 3/4), chains
(a = b = c), an approximation after ≈. Strict on meaning: values are Fractions, so 34/3 = 11.33 is
a false equation, and a side with any other word in it ("left after giving away 1/3") is prose.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

_TIMES = re.compile(r"[×·*]|(?<=[\d)\s])x(?=[\s\d(])|\bof\b", re.IGNORECASE)
_MIXED = re.compile(r"(?<![\d/.])(\d+)\s+(\d+)/(\d+)(?![\d/])")
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
_DECORATION = re.compile(r"\*\*|__|`")
_LIST_MARK = re.compile(r"^\s*(?:[-*•>]|\d+[.)])\s+")
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div,
            ast.USub, ast.UAdd)


@dataclass(frozen=True)
class Equation:
    """One `left = right` step: the text of each side and their exact values (None if not arithmetic)."""

    left: str
    right: str
    left_value: Fraction | None
    right_value: Fraction | None

    @property
    def holds(self) -> bool | None:
        """True or False when both sides are arithmetic, None when a side is not."""
        if self.left_value is None or self.right_value is None:
            return None
        return self.left_value == self.right_value


def evaluate(expression: str, units: frozenset = frozenset()) -> Fraction | None:
    """The exact value of `expression` (numbers, + - * /, parentheses, words in `units`), or None."""
    text = expression.replace("−", "-").replace("–", "-").replace("÷", "/").replace(",", "")
    text = _TIMES.sub("*", text)
    text = _MIXED.sub(r"(\1+\2/\3)", text)
    if any(word.casefold() not in units for word in _WORDS.findall(text)):
        return None
    text = _WORDS.sub(" ", text).strip().rstrip(".").replace("$", "")
    if not text or len(text) > 200 or not re.search(r"\d", text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return None
    if not all(isinstance(node, _ALLOWED) for node in ast.walk(tree)):
        return None
    try:
        return _value(tree.body)
    except (ZeroDivisionError, TypeError, ValueError):
        return None


def _value(node) -> Fraction:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise TypeError("not a number")
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    left, right = _value(node.left), _value(node.right)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return left / right


def equations(text: str, units: frozenset = frozenset()) -> list[Equation]:
    """Every adjacent pair of sides joined by `=` on each line, in order; `units` are casefolded words
    a side may carry and still be arithmetic."""
    found = []
    for line in text.splitlines():
        line = _LIST_MARK.sub("", _DECORATION.sub("", line))
        sides = line.split("≈")[0].split("=")
        if len(sides) < 2:
            continue
        sides[0] = sides[0].rsplit(":", 1)[-1]  # a label such as "Step 2:" is not part of the sum
        for left, right in zip(sides, sides[1:]):
            found.append(Equation(left.strip(), right.strip(), evaluate(left, units), evaluate(right, units)))
    return found
