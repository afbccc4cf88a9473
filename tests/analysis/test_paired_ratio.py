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


def test_one_document_and_bad_input() -> None:
    iv, p = paired_ratio_bootstrap_diff([3.0], [1.0], [2.0], [1.0])
    assert iv.low == iv.estimate == iv.high == -1.0 and p == 1.0
    with pytest.raises(ValueError, match="same units"):
        paired_ratio_bootstrap_diff([1.0, 2.0], [1.0, 1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="one shape"):
        paired_ratio_bootstrap_diff([1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive sum"):
        paired_ratio_bootstrap_diff([1.0], [0.0], [1.0], [1.0])
