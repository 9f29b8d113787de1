"""Power of the exact McNemar test: a hand-derived value, a simulation of the project's own test, and
Connor's (1987) normal approximation, which the exact test must need slightly more items than."""
import math

import numpy as np
import pytest

from lrl.mcnemar_power import binomial_cdf, critical_count, items_needed, mcnemar_power, smallest_detectable_gain
from lrl.stats import Z95, mcnemar_exact_p

Z80 = 0.8416212335729143  # standard normal 80% quantile


def test_binomial_cdf_against_exact_sums():
    for k, n, p in ((3, 10, 0.3), (7, 10, 0.3), (40, 100, 0.55), (90, 100, 0.55), (0, 5, 0.9), (480, 1000, 0.2)):
        exact = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1))
        assert binomial_cdf(k, n, p) == pytest.approx(exact, rel=1e-9, abs=1e-300)
    assert binomial_cdf(4000, 5000, 0.1) == 1.0  # far above the mode, where the pmf underflows


def test_critical_count_is_where_the_exact_test_rejects():
    for d in range(60):
        m = critical_count(d, 0.05)
        rejected = {b for b in range(d + 1) if mcnemar_exact_p(b, d - b) <= 0.05}
        assert rejected == set(range(m + 1)) | set(range(d - m, d + 1)) if m >= 0 else not rejected
    assert critical_count(5, 0.05) == -1 and critical_count(6, 0.05) == 0  # 2 / 2**6 = 0.031


def test_power_when_every_discordant_item_favours_one_model_is_the_chance_of_six_or_more():
    # With all discordant items one way the test rejects iff D >= 6 (2 / 2**D <= 0.05); D ~ Bin(10, 1/2).
    assert mcnemar_power(10, 0.5, 0.5) == pytest.approx(sum(math.comb(10, d) for d in range(6, 11)) / 1024)


@pytest.mark.parametrize("n, gain, discordance", [(100, 0.2, 0.5), (40, 0.15, 0.3), (200, 0.1, 0.4)])
def test_power_matches_a_simulation_of_the_exact_test(n, gain, discordance):
    rng = np.random.default_rng(0)
    draws = 20_000  # standard error of a rejection rate near 0.5: 0.0035
    cells = rng.multinomial(n, [(discordance + gain) / 2, (discordance - gain) / 2, 1 - discordance], size=draws)
    rejected = np.mean([mcnemar_exact_p(int(b), int(c)) <= 0.05 for b, c, _ in cells])
    assert mcnemar_power(n, gain, discordance) == pytest.approx(rejected, abs=0.012)


@pytest.mark.parametrize("gain, discordance", [(0.2, 0.5), (0.1, 0.3), (0.3, 0.5)])
def test_items_needed_is_just_above_connors_normal_approximation(gain, discordance):
    connor = (Z95 * math.sqrt(discordance) + Z80 * math.sqrt(discordance - gain ** 2)) ** 2 / gain ** 2
    assert connor <= items_needed(gain, discordance) <= 1.15 * connor


def test_smallest_detectable_gain_is_the_edge_of_80_percent_power():
    for n in (40, 103, 400):
        gain = smallest_detectable_gain(n, 0.5)
        assert mcnemar_power(n, gain, 0.5) >= 0.8 > mcnemar_power(n, gain - 0.002, 0.5)
    assert smallest_detectable_gain(103, 0.5) <= 0.2 < smallest_detectable_gain(102, 0.5)
    assert smallest_detectable_gain(10, 0.5) is None  # even a 50-point gain is found only 38% of the time
