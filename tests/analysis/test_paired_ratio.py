"""paired_ratio_bootstrap_diff: two corpus-level ratios on the same documents, against cases
computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smollab.analysis.stats import paired_ratio_bootstrap_diff, ratio_bootstrap_interval


def test_two_documents_by_hand() -> None:
    """Two documents: a resample draws (2, 0), (1, 1) or (0, 2) of them, with probabilities
    1/4, 1/2, 1/4, so the 2.5% and 97.5% percentiles are the smallest and largest of the three
    replicate values.

    a: NLL [2, 6] over [1, 3] bytes -> 8/4 = 2.0; b: NLL [1, 9] -> 10/4 = 2.5; b - a = 0.5.
    (2, 0): 1/1 - 2/1 = -1.0; (1, 1): 0.5; (0, 2): 9/3 - 6/3 = 1.0."""
    iv, p = paired_ratio_bootstrap_diff([2.0, 6.0], [1.0, 3.0], [1.0, 9.0], [1.0, 3.0], seed=1)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((0.5, -1.0, 1.0))
    assert iv.method == "paired-bootstrap-ratio-units" and iv.level == 0.95
    # a quarter of the replicates (the (2, 0) draw) is at or below 0: p is about 2 * 1/4
    assert 0.4 < p < 0.6
    # a monotone transform maps the estimate and both bounds
    ex, _ = paired_ratio_bootstrap_diff(
        [2.0, 6.0], [1.0, 3.0], [1.0, 9.0], [1.0, 3.0], seed=1, transform=np.exp
    )
    assert (ex.estimate, ex.low, ex.high) == pytest.approx((math.exp(0.5), math.exp(-1), math.e))


def test_seeds_are_pooled_by_summing() -> None:
    """Two seeds of a, one of b, same denominators: a's pooled ratio is (2+4+6+6) / (1+1+3+3)
    = 18/8 = 2.25, the mean of its seeds' ratios (2.0 and 2.5)."""
    num_a = [[2.0, 6.0], [4.0, 6.0]]
    den_a = [[1.0, 3.0], [1.0, 3.0]]
    iv, _ = paired_ratio_bootstrap_diff(num_a, den_a, [[1.0, 9.0]], [[1.0, 3.0]])
    assert iv.estimate == pytest.approx(2.5 - 2.25)
    # pooled columns a: NLL [6, 12] over [2, 6]; (2, 0): 1/1 - 6/2 = -2; (0, 2): 3 - 2 = 1
    assert (iv.low, iv.high) == pytest.approx((-2.0, 1.0))


def test_a_clear_difference_and_its_p_value() -> None:
    rng = np.random.default_rng(0)
    den = rng.integers(50, 200, size=40).astype(float)
    a = den * 2.0 * rng.uniform(0.9, 1.1, size=40)
    b = a * 0.8  # every document 20% less NLL
    iv, p = paired_ratio_bootstrap_diff(a, den, b, den, n_boot=999)
    assert iv.high < 0 and iv.estimate == pytest.approx(b.sum() / den.sum() - a.sum() / den.sum())
    assert p == pytest.approx(2 / 1000)  # no replicate at or above 0
    # the pairing: the same data resampled independently is much wider
    ra = ratio_bootstrap_interval(a, den)
    rb = ratio_bootstrap_interval(b, den)
    assert iv.high - iv.low < (ra.high - ra.low) + (rb.high - rb.low)
    # deterministic given the seed
    assert paired_ratio_bootstrap_diff(a, den, b, den, n_boot=999) == (iv, p)


@pytest.mark.parametrize("n, floor", [(4, 0.125), (6, 2 / 64), (8, 2 / 256)])
def test_a_handful_of_documents_cannot_give_a_tiny_p(n: int, floor: float) -> None:
    """Every one of n documents better in b: the bootstrap alone would say p = 2/1000, but no
    exact test on n pairs can go below 2 / 2**n (the sign-flip test's two extreme
    assignments), so that is the p-value; with 4 documents no difference can be called."""
    den = np.full(n, 100.0)
    a = den * 2.0 * np.linspace(0.9, 1.1, n)
    _, p = paired_ratio_bootstrap_diff(a, den, a * 0.5, den, n_boot=999)
    assert p == pytest.approx(floor)


def test_one_document_and_bad_input() -> None:
    iv, p = paired_ratio_bootstrap_diff([3.0], [1.0], [2.0], [1.0])
    assert iv.low == iv.estimate == iv.high == -1.0 and p == 1.0
    with pytest.raises(ValueError, match="same units"):
        paired_ratio_bootstrap_diff([1.0, 2.0], [1.0, 1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="one shape"):
        paired_ratio_bootstrap_diff([1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive sum"):
        paired_ratio_bootstrap_diff([1.0], [0.0], [1.0], [1.0])


def test_seed_pvalue_and_widening_are_the_t_tests_over_seeds() -> None:
    """The seed part of a comparison: Welch's test and interval with several seeds on both
    sides, a one-sample t against a side that ran once (either side), nothing for one each."""
    from scipy import stats as sps

    from smollab.analysis.stats import Interval, seed_pvalue, seed_t_pvalue, widen_with_seeds

    a, b = [3.50, 3.52, 3.49], [3.56, 3.55, 3.60]
    welch = sps.ttest_ind(b, a, equal_var=False)
    assert seed_pvalue(a, b) == pytest.approx(welch.pvalue)
    narrow = Interval(0.067, 0.066, 0.068, 0.95, "docs")
    wide = widen_with_seeds(narrow, a, b)
    ci = welch.confidence_interval(0.95)
    assert (wide.low, wide.high) == pytest.approx((ci.low, ci.high))
    assert wide.estimate == narrow.estimate and wide.method == "docs+seed-t-hull"
    # a side that ran once is a constant: a one-sample t over the other side's seeds
    one = sps.ttest_1samp(b, 3.50)
    assert seed_pvalue([3.50], b) == pytest.approx(one.pvalue)
    assert seed_pvalue(b, [3.50]) == pytest.approx(one.pvalue)
    flipped = widen_with_seeds(Interval(-0.07, -0.071, -0.069, 0.95, "docs"), b, [3.50])
    ci1 = one.confidence_interval(0.95)
    assert (flipped.low, flipped.high) == pytest.approx((3.50 - ci1.high, 3.50 - ci1.low))
    # one seed each: the documents' interval and no seed test
    assert widen_with_seeds(narrow, [3.5], [3.6]) is narrow and seed_pvalue([3.5], [3.6]) is None
    # seeds that agree exactly: nothing to widen, and the test is decided by the estimate
    assert seed_t_pvalue([1.0, 1.0], [1.0, 1.0]) == 1.0 and seed_t_pvalue([2.0, 2.0]) == 0.0
