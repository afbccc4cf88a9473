"""The unbiased pass@k estimator against its combinatorial definition."""

from __future__ import annotations

from math import comb

import pytest

from smollab.analysis.stats import pass_at_k


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (20, 0, 10), (200, 17, 100), (5, 5, 5)])
def test_matches_one_minus_comb_ratio(n, c, k):
    want = 1.0 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12)


def test_pass_at_1_is_the_pass_fraction():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)


def test_no_failing_draw_possible_is_one():
    assert pass_at_k(10, 8, 3) == 1.0


@pytest.mark.parametrize("n,c,k", [(5, 1, 6), (5, 1, 0), (5, 6, 1)])
def test_invalid_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
