"""Known-value tests for smollab.analysis.stats.

Expected values come from published/textbook numbers or from closed-form formulas written out
here independently of the implementation (never the function under test against itself).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from smollab.analysis import (
    Interval,
    McNemarResult,
    bootstrap_interval,
    describe_seeds,
    hierarchical_bootstrap_accuracy,
    holm_bonferroni,
    mcnemar,
    mean_sem,
    paired_bootstrap_diff,
    shift_interval,
    t_interval,
    verdict,
    wilson_interval,
)


def _wilson_closed_form(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# --------------------------------------------------------------------------- Interval


def test_interval_to_dict_contains_and_json() -> None:
    iv = Interval(np.float64(0.5), np.float32(0.25), 0.75, 0.95, "t")
    d = iv.to_dict()
    assert d == {"estimate": 0.5, "low": 0.25, "high": 0.75, "level": 0.95, "method": "t"}
    assert all(type(d[k]) is float for k in ("estimate", "low", "high", "level"))
    assert json.loads(json.dumps(d)) == d
    assert iv.contains(0.25) and iv.contains(0.75) and iv.contains(0.5)
    assert not iv.contains(0.2) and not iv.contains(0.8) and not iv.contains(math.nan)
    with pytest.raises(AttributeError):
        iv.low = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------- Wilson


def test_wilson_published_value_81_of_263() -> None:
    iv = wilson_interval(81, 263)
    assert iv.method == "wilson" and iv.level == 0.95
    assert iv.estimate == pytest.approx(81 / 263)
    assert round(iv.low, 4) == 0.2553 and round(iv.high, 4) == 0.3662
    lo, hi = _wilson_closed_form(81, 263, 1.959963984540054)
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)


def test_wilson_extremes() -> None:
    zero = wilson_interval(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.2775, abs=5e-5)
    full = wilson_interval(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(0.7225, abs=5e-5)
    assert zero.high == pytest.approx(1 - full.low, abs=1e-12)  # symmetry


def test_wilson_other_level_matches_closed_form() -> None:
    iv = wilson_interval(7, 20, level=0.90)
    lo, hi = _wilson_closed_form(7, 20, sps.norm.ppf(0.95))
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)
    assert iv.level == 0.90


def test_wilson_n_zero_and_validation() -> None:
    iv = wilson_interval(0, 0)
    assert math.isnan(iv.estimate) and iv.low == 0.0 and iv.high == 1.0
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(-1, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, level=1.0)
    with pytest.raises(TypeError):
        wilson_interval(1.5, 10)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- mean/sem/t


def test_mean_sem_known_value_and_not_std_over_n() -> None:
    mean, sem = mean_sem([1, 2, 3, 4])
    assert mean == 2.5
    assert sem == pytest.approx(0.6455, abs=5e-5)
    assert sem == pytest.approx(math.sqrt(5 / 3) / 2, abs=1e-12)  # s = sqrt(5/3), n = 4
    wrong = math.sqrt(5 / 3) / 4  # std / n: the classic bug
    assert abs(sem - wrong) > 0.3


def test_mean_sem_single_and_validation() -> None:
    mean, sem = mean_sem([0.7])
    assert mean == 0.7 and math.isnan(sem)
    with pytest.raises(ValueError):
        mean_sem([])
    with pytest.raises(ValueError):
        mean_sem([1.0, math.nan])


def test_t_interval_textbook_value() -> None:
    iv = t_interval([1, 2, 3, 4])
    t975_df3 = 3.182446305284263  # textbook t-table value
    assert sps.t.ppf(0.975, 3) == pytest.approx(t975_df3, abs=1e-9)
    half = t975_df3 * math.sqrt(5 / 3) / 2
    assert iv.method == "t" and iv.estimate == 2.5
    assert iv.low == pytest.approx(2.5 - half, abs=1e-9)
    assert iv.high == pytest.approx(2.5 + half, abs=1e-9)
    assert round(iv.low, 4) == 0.4457 and round(iv.high, 4) == 4.5543


def test_t_interval_single_value() -> None:
    iv = t_interval([0.42])
    assert iv.method == "t(n=1)" and iv.low == iv.high == iv.estimate == 0.42


def test_describe_seeds() -> None:
    d = describe_seeds([3.0, 1.0, 2.0])
    assert d["n"] == 3 and d["mean"] == 2.0 and d["std"] == pytest.approx(1.0)
    assert d["sem"] == pytest.approx(1 / math.sqrt(3))
    assert d["min"] == 1.0 and d["max"] == 3.0 and d["values"] == [3.0, 1.0, 2.0]
    json.dumps(d)
    one = describe_seeds([5])
    assert one["n"] == 1 and math.isnan(one["std"]) and math.isnan(one["sem"])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_two_points_exact_distribution() -> None:
    # Resampled means of [0, 1] are 0, 0.5, 1 with probs 1/4, 1/2, 1/4 -> 95% interval [0, 1].
    iv = bootstrap_interval([0.0, 1.0], n_boot=2000, seed=1)
    assert iv.estimate == 0.5 and iv.low == 0.0 and iv.high == 1.0
    assert iv.method == "bootstrap-percentile"


def test_bootstrap_matches_normal_approximation_and_is_reproducible() -> None:
    values = np.random.default_rng(123).normal(10.0, 2.0, size=200)
    iv = bootstrap_interval(values, n_boot=4000, seed=7)
    se = values.std(ddof=0) / math.sqrt(values.size)
    assert iv.estimate == pytest.approx(values.mean())
    assert iv.low == pytest.approx(values.mean() - 1.959964 * se, abs=0.15 * se)
    assert iv.high == pytest.approx(values.mean() + 1.959964 * se, abs=0.15 * se)
    assert bootstrap_interval(values, n_boot=4000, seed=7) == iv
    assert bootstrap_interval(values, n_boot=4000, seed=8) != iv


def test_bootstrap_statistic_without_axis_matches_vectorised() -> None:
    values = [1.0, 5.0, 2.0, 8.0, 3.0]
    fast = bootstrap_interval(values, n_boot=500, seed=3, statistic=np.median)
    slow = bootstrap_interval(values, n_boot=500, seed=3, statistic=lambda x: float(np.median(x)))
    assert fast == slow
    assert fast.estimate == 3.0


def test_bootstrap_validation() -> None:
    with pytest.raises(ValueError):
        bootstrap_interval([])
    with pytest.raises(ValueError):
        bootstrap_interval([[1.0, 2.0]])
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, 2.0], n_boot=0)


# --------------------------------------------------------------------------- hierarchical


def test_hierarchical_all_ones_and_zeros() -> None:
    iv = hierarchical_bootstrap_accuracy(np.ones((3, 50)), n_boot=200)
    assert (iv.estimate, iv.low, iv.high) == (1.0, 1.0, 1.0)
    assert iv.method == "bootstrap-seeds-items"
    iv0 = hierarchical_bootstrap_accuracy(np.zeros((2, 10), dtype=bool), n_boot=200)
    assert (iv0.estimate, iv0.low, iv0.high) == (0.0, 0.0, 0.0)


def test_hierarchical_pure_seed_variation_exact() -> None:
    # Rows constant: item resampling is irrelevant; seed means 0 and 1 -> exact [0, 1].
    correct = np.array([[0] * 20, [1] * 20])
    iv = hierarchical_bootstrap_accuracy(correct, n_boot=2000, seed=0)
    assert iv.estimate == 0.5 and iv.low == 0.0 and iv.high == 1.0


def test_hierarchical_single_seed_is_item_bootstrap() -> None:
    rng = np.random.default_rng(0)
    correct = (rng.random((1, 2000)) < 0.6).astype(int)
    p = correct.mean()
    se = math.sqrt(p * (1 - p) / correct.size)
    iv = hierarchical_bootstrap_accuracy(correct, n_boot=2000, seed=1)
    assert iv.estimate == p and iv.contains(p)
    assert iv.low == pytest.approx(p - 1.959964 * se, abs=0.15 * se)
    assert iv.high == pytest.approx(p + 1.959964 * se, abs=0.15 * se)


def test_hierarchical_items_shared_across_seeds() -> None:
    # Identical seeds: resampling items once per replicate (crossed design) keeps the width of
    # a single-seed item bootstrap; independent per-seed item draws would shrink it ~sqrt(10)x.
    row = (np.random.default_rng(5).random(400) < 0.5).astype(int)
    one = hierarchical_bootstrap_accuracy(row[None, :], n_boot=2000, seed=2)
    ten = hierarchical_bootstrap_accuracy(np.tile(row, (10, 1)), n_boot=2000, seed=2)
    assert ten.estimate == one.estimate
    assert ten.width == pytest.approx(one.width, rel=0.15)


def test_hierarchical_contains_estimate_shrinks_and_reproducible() -> None:
    rng = np.random.default_rng(42)
    small = (rng.random((4, 100)) < 0.7).astype(int)
    large = (rng.random((4, 1600)) < 0.7).astype(int)
    iv_s = hierarchical_bootstrap_accuracy(small, seed=3)
    iv_l = hierarchical_bootstrap_accuracy(large, seed=3)
    assert iv_s.contains(iv_s.estimate) and iv_l.contains(iv_l.estimate)
    assert iv_s.estimate == small.mean()
    assert iv_l.width < 0.5 * iv_s.width  # 16x items -> ~4x narrower
    assert hierarchical_bootstrap_accuracy(small, seed=3) == iv_s
    assert hierarchical_bootstrap_accuracy(small, seed=4) != iv_s


def test_hierarchical_validation() -> None:
    with pytest.raises(ValueError):
        hierarchical_bootstrap_accuracy(np.ones(10))
    with pytest.raises(ValueError):
        hierarchical_bootstrap_accuracy(np.ones((0, 10)))
    with pytest.raises(ValueError):
        hierarchical_bootstrap_accuracy(np.full((2, 3), 0.5))


# --------------------------------------------------------------------------- paired diff


def test_paired_diff_identical_arrays() -> None:
    a = (np.random.default_rng(9).random((1, 300)) < 0.5).astype(int)
    iv = paired_bootstrap_diff(a, a.copy(), n_boot=500)
    # no item differs, so every replicate is 0; the interval is not [0, 0] (certainty) but the
    # share of items that could differ: 1 - Wilson's lower bound for 300 of 300
    w = 1 - wilson_interval(300, 300).low
    assert (iv.estimate, iv.low, iv.high) == (0.0, pytest.approx(-w), pytest.approx(w))
    assert iv.method == "paired-wilson-bound" and 0.01 < w < 0.015
    assert verdict(iv) == "no detectable difference"
    # 0 of 12 against 0 of 12: a difference of 24 points either way is not excluded
    z = np.zeros((1, 12), dtype=int)
    small = paired_bootstrap_diff(z, z.copy())
    assert small.low == pytest.approx(-0.2425, abs=1e-3) and small.high == -small.low
    # every item flipped the same way: the bound is one-sided
    up = paired_bootstrap_diff(z, np.ones((1, 12), dtype=int))
    assert up.estimate == 1.0 and up.high == 1.0 and 0.5 < up.low < 0.6
    multi = (np.random.default_rng(10).random((3, 300)) < 0.5).astype(int)
    iv_m = paired_bootstrap_diff(multi, multi.copy(), n_boot=500)
    assert iv_m.estimate == 0.0 and iv_m.contains(0.0)
    assert verdict(iv_m) == "no detectable difference"
    assert iv_m.method == "paired-bootstrap-seeds-items"


def test_verdict_needs_the_exact_test_too() -> None:
    """4 of 12 items flipped: the percentile bootstrap's interval lies above 0, but McNemar's
    exact p is 0.125, so there is no detectable difference."""
    a = np.zeros((1, 12), dtype=int)
    b = a.copy()
    b[0, :4] = 1
    iv = paired_bootstrap_diff(a, b)
    assert iv.low > 0 and verdict(iv) == "improvement"  # the interval alone
    p = mcnemar(a[0], b[0]).p_value
    assert p == pytest.approx(0.125)
    assert verdict(iv, p_value=p) == "no detectable difference"
    assert verdict(iv, p_value=0.01) == "improvement"
    assert verdict(Interval(-0.3, -0.5, -0.1, 0.95, "x"), p_value=0.01) == "degradation"


def test_paired_diff_clear_improvement_and_pairing() -> None:
    rng = np.random.default_rng(11)
    a = (rng.random((3, 500)) < 0.5).astype(int)
    b = a.copy()
    b[:, :100] = 1  # b fixes some items a got wrong, never breaks any
    iv = paired_bootstrap_diff(a, b, seed=1)
    assert iv.estimate == pytest.approx(b.mean() - a.mean())
    assert iv.low > 0 and verdict(iv) == "improvement"
    rev = paired_bootstrap_diff(b, a, seed=1)
    assert rev.estimate == pytest.approx(-iv.estimate) and verdict(rev) == "degradation"
    # different seed counts per condition are allowed
    iv2 = paired_bootstrap_diff(a[:1], b, seed=1)
    assert iv2.estimate == pytest.approx(b.mean() - a[:1].mean())


def test_paired_diff_validation() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap_diff(np.ones((2, 10)), np.ones((2, 11)))
    with pytest.raises(ValueError):
        paired_bootstrap_diff(np.ones(10), np.ones((1, 10)))
    with pytest.raises(ValueError):
        paired_bootstrap_diff(np.ones((1, 10)), np.full((1, 10), 2))


# --------------------------------------------------------------------------- McNemar


def _pairs(b01: int, b10: int, both_right: int = 0, both_wrong: int = 0) -> tuple[list, list]:
    a = [0] * b01 + [1] * b10 + [1] * both_right + [0] * both_wrong
    b = [1] * b01 + [0] * b10 + [1] * both_right + [0] * both_wrong
    return a, b


def test_mcnemar_exact_known_value() -> None:
    res = mcnemar(*_pairs(1, 9, both_right=5, both_wrong=3))
    assert isinstance(res, McNemarResult)
    assert (res.b01, res.b10, res.method) == (1, 9, "exact")
    assert res.p_value == 0.021484375  # 2 * (1 + 10) / 2**10
    assert res.p_value == pytest.approx(2 * sps.binom.cdf(1, 10, 0.5))
    assert json.loads(json.dumps(res.to_dict()))["b01"] == 1


def test_mcnemar_exact_symmetric_capped() -> None:
    res = mcnemar(*_pairs(5, 5))
    assert res.method == "exact" and res.p_value == 1.0


def test_mcnemar_chi2_cc_against_formula() -> None:
    res = mcnemar(*_pairs(20, 10, both_right=15, both_wrong=5))
    assert (res.b01, res.b10, res.method) == (20, 10, "chi2-cc")
    stat = (abs(20 - 10) - 1) ** 2 / (20 + 10)
    assert res.statistic == pytest.approx(2.7)
    assert res.p_value == pytest.approx(sps.chi2.sf(stat, 1))
    assert res.p_value == pytest.approx(0.10034, abs=1e-5)


def test_mcnemar_threshold_and_no_discordant() -> None:
    assert mcnemar(*_pairs(12, 12)).method == "exact"  # 24 discordant
    assert mcnemar(*_pairs(13, 12)).method == "chi2-cc"  # 25 discordant
    none = mcnemar([1, 0, 1], [True, False, True])
    assert (none.b01, none.b10, none.p_value) == (0, 0, 1.0)


def test_mcnemar_validation() -> None:
    with pytest.raises(ValueError):
        mcnemar([0, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        mcnemar([0, 2], [0, 1])
    with pytest.raises(ValueError):
        mcnemar([[0, 1]], [[0, 1]])


# --------------------------------------------------------------------------- Holm


def test_holm_hand_computed() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    adj = holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_bonferroni([0.5, 0.6]) == [1.0, 1.0]
    assert holm_bonferroni([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm_bonferroni([0.02]) == [0.02]
    assert holm_bonferroni([]) == []


def test_holm_validation() -> None:
    with pytest.raises(ValueError):
        holm_bonferroni([0.1, 1.5])
    with pytest.raises(ValueError):
        holm_bonferroni([math.nan])


# --------------------------------------------------------------------------- verdict


@pytest.mark.parametrize(
    ("low", "high", "higher_is_better", "expected"),
    [
        (0.01, 0.05, True, "improvement"),
        (-0.05, -0.01, True, "degradation"),
        (0.01, 0.05, False, "degradation"),
        (-0.05, -0.01, False, "improvement"),
        (-0.01, 0.05, True, "no detectable difference"),
        (0.0, 0.05, True, "no detectable difference"),
        (math.nan, math.nan, True, "no detectable difference"),
    ],
)
def test_verdict(low: float, high: float, higher_is_better: bool, expected: str) -> None:
    iv = Interval((low + high) / 2, low, high, 0.95, "t")
    assert verdict(iv, higher_is_better=higher_is_better) == expected


# --------------------------------------------------------------------------- shift_interval


def _brute_force_u_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) by listing every placement of the m a-values among the m + n ranks."""
    from itertools import combinations

    counts = np.zeros(m * n + 1)
    for a_ranks in combinations(range(m + n), m):
        b_ranks = [r for r in range(m + n) if r not in a_ranks]
        counts[sum(ra > rb for ra in a_ranks for rb in b_ranks)] += 1
    return np.cumsum(counts) / counts.sum()


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 5), (4, 4), (6, 7)])
def test_shift_null_distribution_matches_enumeration(m: int, n: int) -> None:
    from smollab.analysis.stats import _mwu_null_cdf

    np.testing.assert_allclose(_mwu_null_cdf(m, n), _brute_force_u_cdf(m, n), atol=1e-12)


def test_shift_null_distribution_matches_scipy_exact_p() -> None:
    from smollab.analysis.stats import _mwu_null_cdf

    cdf = _mwu_null_cdf(12, 12)
    # a pair of samples with U = u: the a-values take ranks so that exactly u pairs a > b
    for u in (0, 20, 37, 38, 72):
        a = np.arange(12, dtype=float) * 10.0
        b = np.arange(12, dtype=float) * 10.0 + 205.0  # every b above every a: U = 0
        # move a-values up past the smallest b-values until exactly u pairs have a > b
        left = u
        for i in range(11, -1, -1):
            step = min(left, 12)
            a[i] = b[step - 1] + 1.0 if step else a[i]
            left -= step
        p = sps.mannwhitneyu(a, b, alternative="less", method="exact")
        assert p.statistic == u
        assert cdf[u] == pytest.approx(p.pvalue, abs=1e-12)


def test_shift_known_values_and_symmetry() -> None:
    a = [2730, 1520, 2790, 2800, 2760, 2300, 2870, 2860, 3050, 2700, 1590, 2690]
    b = [2380, 1980, 2350, 2410, 2630, 2760, 2680, 2450, 3350, 2120, 2170, 3030]
    iv = shift_interval(a, b)
    diffs = sorted(x - y for x in a for y in b)
    # c = 37 for 12 and 12 at 95% (the tabulated critical value of U)
    assert (iv.estimate, iv.low, iv.high) == (175.0, diffs[37], diffs[144 - 38])
    assert iv.method == "hodges-lehmann-exact" and iv.level == 0.95
    back = shift_interval(b, a)
    assert (back.estimate, back.low, back.high) == (-175.0, -iv.high, -iv.low)
    # a pure shift is recovered exactly
    x = np.array([1.0, 4.0, 2.5, 8.0, 3.0])
    exact = shift_interval(x + 100.0, x)
    assert exact.estimate == 100.0 and exact.contains(100.0)


def test_shift_interval_coverage_by_simulation() -> None:
    rng = np.random.default_rng(0)
    hits = sum(
        shift_interval(rng.normal(1.0, 1.0, 8), rng.normal(0.0, 1.0, 9)).contains(1.0)
        for _ in range(1000)
    )
    # exact method: coverage at least 95% for continuous data (binomial sd here ~0.7 points)
    assert 0.93 <= hits / 1000 <= 0.98


def test_shift_normal_approximation_and_small_samples() -> None:
    from smollab.analysis.stats import _mwu_null_cdf

    rng = np.random.default_rng(1)
    big = shift_interval(rng.normal(0.5, 1.0, 60), rng.normal(0.0, 1.0, 60))
    assert big.method == "hodges-lehmann-normal" and big.low < big.estimate < big.high
    # the normal c sits within one of the exact c at these sizes
    c_exact = int(np.nonzero(_mwu_null_cdf(60, 60) <= 0.025)[0][-1])
    c_normal = math.floor(1800 - 1.959963984540054 * math.sqrt(3600 * 121 / 12) - 0.5)
    assert abs(c_exact - c_normal) <= 1
    tiny = shift_interval([1.0, 2.0], [3.0, 4.0])
    assert tiny.estimate == -2.0 and tiny.low == -math.inf and tiny.high == math.inf
    with pytest.raises(ValueError, match="non-empty"):
        shift_interval([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        shift_interval([1.0, math.nan], [1.0])
    with pytest.raises(ValueError):
        shift_interval([1.0], [2.0], level=1.5)


def test_score_interval_is_wilson_for_0_1_and_never_a_point_for_scores_in_0_1():
    from smollab.analysis.stats import score_interval, wilson_interval

    assert score_interval([1, 0, 1, 1]) == wilson_interval(3, 4)
    frac = score_interval([0.2, 0.4, 0.9])
    assert frac.method == "bootstrap-percentile+t-hull" and frac.low < frac.estimate < frac.high
    # one item, or items all alike: the bootstrap's point becomes its hull with the Wilson
    # interval at that mean (not at a rounded count: 0.25 of one item is not 0 of 1)
    one = score_interval([0.25])
    assert one.method == "bootstrap-percentile+wilson-hull"
    z = 1.959963984540054  # Wilson's bounds at p = 0.25, n = 1
    center, half = (0.25 + z * z / 2) / (1 + z * z), z / (1 + z * z) * math.sqrt(0.1875 + z * z / 4)
    assert (one.low, one.high) == pytest.approx((center - half, center + half))
    # QA: items all at 0.5 gave [0.118, 0.769] (Wilson of round(2.5) = 2 of 5); now centred
    half = score_interval([0.5] * 5)
    assert half.low == pytest.approx(1 - half.high)
    same = score_interval([1.0, 1.0], binary=False)
    assert same.high == 1.0 and same.low == pytest.approx(wilson_interval(2, 2).low)
    # outside [0, 1] (a loss) a point stays a point: Wilson says nothing about it
    assert score_interval([2.5, 2.5]).low == 2.5 == score_interval([2.5, 2.5]).high


def test_a_float_count_is_refused_by_name() -> None:
    """QA: wilson_interval(3.0, 10) said only "'float' object cannot be interpreted"."""
    import numpy as np

    from smollab.analysis import pass_at_k, wilson_interval

    with pytest.raises(TypeError, match=r"successes must be an integer count, got 3\.0"):
        wilson_interval(3.0, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"n must be an integer count, got 10\.0"):
        pass_at_k(10.0, 3, 1)  # type: ignore[arg-type]
    assert wilson_interval(np.int64(3), np.int64(10)).estimate == 0.3  # NumPy ints are counts


def test_score_interval_of_fractional_scores_is_no_narrower_than_the_t_interval() -> None:
    """QA: the percentile bootstrap of a mean covered 87% at 5 items (nominal 95%); the hull
    with the Student t interval restores it, and bounded scores stay in [0, 1]."""
    import numpy as np

    from smollab.analysis.stats import score_interval, t_interval

    rng = np.random.default_rng(3)
    vals = rng.binomial(4, rng.beta(2, 2, size=5)) / 4
    iv, t = score_interval(vals, binary=False), t_interval(vals)
    assert iv.low <= max(0.0, t.low) and iv.high >= min(1.0, t.high)
    assert 0.0 <= iv.low and iv.high <= 1.0
    # coverage by simulation: 400 datasets of 5 items whose true mean is 0.5
    hits = 0
    for _ in range(400):
        v = rng.binomial(4, rng.beta(2, 2, size=5)) / 4
        s = score_interval(v, binary=False)
        hits += s.low <= 0.5 <= s.high
    assert hits / 400 >= 0.92


def test_seed_t_interval_covers_what_a_two_seed_bootstrap_cannot() -> None:
    """QA: with 2-3 seeds the two-level bootstrap cannot reach past the seeds it saw; the t
    interval over seeds (one-sample, or Welch's for two sets of seeds) can."""
    import numpy as np
    from scipy import stats

    from smollab.analysis.stats import hull, seed_t_interval, t_interval

    assert seed_t_interval([0.5]) is None
    one = seed_t_interval([0.3, 0.5, 0.64])
    assert one is not None and one.method == "seed-t"
    ref = t_interval([0.3, 0.5, 0.64])
    assert (one.low, one.high) == pytest.approx((ref.low, ref.high))
    clipped = seed_t_interval([0.02, 0.05, 0.2], bounds=(0.0, 1.0))
    assert clipped is not None and clipped.low == 0.0 and clipped.high < 1.0
    # against a one-seed baseline: the baseline's mean is a constant
    d = seed_t_interval([0.6, 0.7, 0.65], [0.4])
    assert d is not None and d.estimate == pytest.approx(0.25)
    assert (d.low, d.high) == pytest.approx(
        (t_interval([0.2, 0.3, 0.25]).low, t_interval([0.2, 0.3, 0.25]).high)
    )
    # two sets of seeds: Welch's interval, as scipy computes it
    a, b = np.array([0.40, 0.45, 0.38]), np.array([0.6, 0.7, 0.65, 0.58])
    w = seed_t_interval(b, a)
    res = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert w is not None and (w.low, w.high) == pytest.approx((res.low, res.high))
    h = hull([w, seed_t_interval(b, a, level=0.5)], "x")  # type: ignore[list-item]
    assert (h.low, h.high, h.method) == (w.low, w.high, "x")


def test_mann_whitney_p_matches_scipy_and_is_exact_with_ties() -> None:
    import numpy as np
    from scipy import stats

    from smollab.analysis.stats import mann_whitney_p

    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=6), rng.normal(size=5) + 0.7
        assert mann_whitney_p(a, b) == pytest.approx(
            stats.mannwhitneyu(a, b, method="exact").pvalue
        )
    a, b = rng.normal(size=40), rng.normal(size=40) + 0.5
    assert mann_whitney_p(a, b) == pytest.approx(
        stats.mannwhitneyu(a, b, method="asymptotic").pvalue
    )
    # 3 against 3 can never reject at 0.05; 4 against 4 separated can
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    # ties (steps counted in tens) are enumerated exactly: brute force over all splits
    import itertools

    x, y = [2730, 1520, 2790, 2730], [3620, 2730, 3990]
    pooled = stats.rankdata(x + y)
    u0 = pooled[:4].sum() - 10
    us = [pooled[list(c)].sum() - 10 for c in itertools.combinations(range(7), 4)]
    brute = np.mean([abs(u - 6) >= abs(u0 - 6) - 1e-9 for u in us])
    assert mann_whitney_p(x, y) == pytest.approx(brute)
    assert mann_whitney_p([5, 5], [5, 5, 5]) == 1.0
