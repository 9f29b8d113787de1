import math

import pytest

from lrl.stats import binomial_cdf_half, mcnemar_exact_p, newcombe_paired_difference, wilson_half_width, wilson_interval


def test_wilson_interval_for_the_published_always_yes_score():
    # 132/150 by hand: centre (p + z^2/2n)/(1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2)/(1 + z^2/n)
    low, high = wilson_interval(132, 150)
    assert low == pytest.approx(0.818292, abs=1e-6) and high == pytest.approx(0.922731, abs=1e-6)
    # the published 86.7% student (130/150) is statistically indistinguishable from always-YES
    assert wilson_interval(130, 150)[1] > 0.88


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_mcnemar_exact_against_hand_computed_binomial():
    # b=1, c=7: P(X<=1) for Bin(8, 1/2) = (1 + 8)/256; two-sided doubles it
    assert mcnemar_exact_p(1, 7) == pytest.approx(18 / 256)
    assert mcnemar_exact_p(7, 1) == mcnemar_exact_p(1, 7)
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024)
    assert binomial_cdf_half(2, 4) == pytest.approx(11 / 16)


def test_newcombe_matches_published_reference_values():
    # Cavo et al. (2012) in Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency
    # Tables", ch. 8: estimate -0.0621, 95% CI -0.1186 to -0.0046
    diff, low, high = newcombe_paired_difference(59, 6, 16, 80)
    assert diff == pytest.approx(-0.0621, abs=5e-5)
    assert low == pytest.approx(-0.1186, abs=5e-5) and high == pytest.approx(-0.0046, abs=5e-5)


def test_newcombe_interval_contains_the_estimate_and_stays_in_range():
    for a, b, c, d in [(0, 0, 0, 5), (5, 0, 0, 0), (0, 5, 0, 0), (10, 3, 1, 2), (1, 1, 7, 12)]:
        diff, low, high = newcombe_paired_difference(a, b, c, d)
        assert -1 <= low <= diff <= high <= 1 and not math.isnan(low + high)


def test_wilson_half_width_is_half_the_interval_it_predicts():
    for successes, n in ((5, 10), (50, 100), (500, 1000), (30, 40)):
        low, high = wilson_interval(successes, n)
        assert math.isclose(wilson_half_width(successes / n, n), (high - low) / 2)
    assert wilson_half_width(0.5, 10) == pytest.approx(0.2634, abs=1e-4)  # 1.96 sqrt(0.025 + 0.0096) / 1.384
