"""Small-sample statistics for accuracy: Wilson intervals, exact McNemar, Newcombe paired CI.

Pure Python (math only) so evaluation runs anywhere; each function cites the method it implements.
"""
from __future__ import annotations

import math

Z95 = 1.959963984540054  # standard normal 97.5% quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (0, 1) when n == 0.

    Unlike the Wald interval it stays inside [0, 1] and keeps coverage near 95% at p near 0 or 1,
    which is where accuracies of strong models and of the always-YES baseline sit.
    """
    if n == 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside 0..{n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = wilson_half_width(p, n, z)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_half_width(p: float, n: int, z: float = Z95) -> float:
    """Half the width of the Wilson interval at observed proportion `p` over `n` items (before clipping
    to [0, 1]): what a test split of `n` items can resolve, known before it is run."""
    return z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def accuracy_with_ci(successes: int, n: int) -> dict:
    """{"n", "correct", "accuracy", "ci95"}: the proportion with its Wilson 95% interval, as reports show it."""
    low, high = wilson_interval(successes, n)
    return {"n": n, "correct": successes, "accuracy": successes / n if n else 0.0, "ci95": [low, high]}


def binomial_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly via integer arithmetic."""
    return sum(math.comb(n, i) for i in range(0, k + 1)) / 2 ** n


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of b vs c discordant pairs at p = 1/2.

    b = items only run A got right, c = items only run B got right. p = min(1, 2 P(X <= min(b, c))).
    """
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * binomial_cdf_half(min(b, c), n))


def newcombe_paired_difference(a: int, b: int, c: int, d: int, z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) of paired accuracies p_A - p_B by Newcombe (1998) method 10.

    Counts: a = both right, b = only A right, c = only B right, d = both wrong. The interval
    combines the two Wilson intervals ("square and add") with Newcombe's continuity-corrected
    phi correlation of the 2x2 table: ad - bc is shrunk by n/2 towards 0 when positive, and phi is
    0 when a margin is empty. Checked against Fagerland, Lydersen & Laake's reference values.
    """
    n = a + b + c + d
    if n == 0:
        return 0.0, -1.0, 1.0
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = corrected / math.sqrt(margins) if margins else 0.0
    delta = p1 - p2
    low = delta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = delta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return delta, max(-1.0, low), min(1.0, high)


def percent(x: float) -> str:
    """A rate as the reports print it: '72.5%'."""
    return f"{100 * x:.1f}%"
