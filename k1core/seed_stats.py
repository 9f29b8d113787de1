"""Mean and 95% confidence interval over a few seeds (Student's t), for K-1's ablation table."""
from __future__ import annotations

import math

# two-sided 97.5% quantiles of Student's t by degrees of freedom (a few seeds only)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t975(df: int) -> float:
    """The t quantile for `df` degrees of freedom (the nearest smaller tabulated df beyond 10)."""
    return T975[max(k for k in T975 if k <= df)]


def mean_ci(values) -> dict:
    """{'mean', 'lo', 'hi', 'n'}: the mean and its 95% t interval (lo = hi = mean for one value)."""
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "lo": mean, "hi": mean, "n": 1}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}


def paired_difference(a: dict, b: dict) -> dict:
    """mean_ci of a[seed] - b[seed] over the seeds both have (a paired comparison)."""
    seeds = [s for s in a if s in b and a[s] is not None and b[s] is not None]
    return mean_ci([a[s] - b[s] for s in seeds])
