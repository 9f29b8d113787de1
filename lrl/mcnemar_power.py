"""Power of the exact McNemar test on n paired items, known before the items are run.

Only discordant items (one model right, the other wrong) inform the test. With a share
`discordance` of the items discordant and a paired gain `gain` = P(only A right) - P(only B right),
the discordant count D is Binomial(n, discordance), and given D the count only A got right is
Binomial(D, (discordance + gain) / (2 discordance)). `lrl.stats.mcnemar_exact_p` rejects at level
alpha when min(only A, only B) is at most a critical count that depends on D alone; the power sums
the chance of that over D (the unconditional power of the conditional test, Miettinen 1968).
"""
from __future__ import annotations

import functools
import math


def _log_binomial_pmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed from k downwards, below the mode, where the terms shrink."""
    if k < 0:
        return 0.0
    if k >= n or p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    if k >= n * p:
        return max(0.0, 1.0 - binomial_cdf(n - k - 1, n, 1 - p))
    term = math.exp(_log_binomial_pmf(k, n, p))
    total, ratio = 0.0, (1 - p) / p
    for i in range(k, -1, -1):
        total += term
        if term < 1e-17 * total:
            break
        term *= i / (n - i + 1) * ratio  # pmf(i - 1) from pmf(i)
    return min(1.0, total)


@functools.lru_cache(maxsize=None)
def critical_count(discordant: int, alpha: float) -> int:
    """Largest m with 2 P(X <= m) <= alpha for X ~ Binomial(discordant, 1/2): the exact test rejects
    when the smaller discordant count is at most m; -1 when no count is small enough."""
    m, cdf = -1, 0.0
    while m + 1 <= discordant:
        cdf += math.exp(_log_binomial_pmf(m + 1, discordant, 0.5))
        if 2 * cdf > alpha:
            break
        m += 1
    return m


def mcnemar_power(n: int, gain: float, discordance: float, alpha: float = 0.05) -> float:
    """Chance that the exact two-sided McNemar test at level `alpha` rejects on `n` paired items."""
    if not 0 <= gain <= discordance <= 1:
        raise ValueError(f"need 0 <= gain <= discordance <= 1, got gain {gain}, discordance {discordance}")
    if discordance == 0:
        return 0.0
    favour = (discordance + gain) / (2 * discordance)  # P(a discordant item is one only A got right)
    power = 0.0
    for d in range(n + 1):
        weight = math.exp(_log_binomial_pmf(d, n, discordance)) if discordance < 1 else float(d == n)
        m = critical_count(d, alpha) if weight > 1e-15 else -1
        if m >= 0:
            power += weight * (binomial_cdf(m, d, favour) + binomial_cdf(m, d, 1 - favour))
    return min(1.0, power)


def smallest_detectable_gain(n: int, discordance: float, power: float = 0.8, alpha: float = 0.05) -> float | None:
    """The smallest gain (to 0.1 points) the exact McNemar test detects with `power` on `n` items;
    None when even gain = discordance (every discordant item going A's way) does not reach it."""
    if mcnemar_power(n, discordance, discordance, alpha) < power:
        return None
    low, high = 0.0, discordance  # power(low) < power <= power(high)
    while high - low > 0.0005:
        mid = (low + high) / 2
        low, high = (low, mid) if mcnemar_power(n, mid, discordance, alpha) >= power else (mid, high)
    return math.ceil(high * 1000) / 1000


def items_needed(gain: float, discordance: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """The smallest n at which the exact McNemar test reaches `power` for `gain` (exact tests' power
    saws up and down with n, so a few n above it may fall just short)."""
    n = 1
    while mcnemar_power(n, gain, discordance, alpha) < power:
        n += 1
    return n
