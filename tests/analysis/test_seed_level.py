"""Seed-to-seed variation, multiple comparisons and targets in a study's analysis (statistics QA).

With 2-3 seeds a two-level bootstrap cannot reach past the seeds it saw, so a study's intervals
are the hull of that bootstrap and a t interval over seeds; a grokking study's verdicts are
Holm-adjusted like the LM study's; a target is met when its whole interval reaches it; and the
critique says which rule made a comparison "no detectable difference".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from smollab.analysis.grokking import _comparisons as grok_comparisons
from smollab.analysis.results import _binary_interval, _notes, _targets, no_difference_reason
from smollab.analysis.stats import hierarchical_bootstrap_accuracy, t_interval
from smollab.study.session import critique
from smollab.study.spec import loads_spec
from tests.analysis.test_grok_comparisons import _results
from tests.conftest import TINY_SPEC


def test_a_condition_interval_holds_the_t_interval_over_its_seeds() -> None:
    rng = np.random.default_rng(0)
    m = np.stack([(rng.random(500) < p).astype(float) for p in (0.35, 0.50, 0.65)])
    boot = hierarchical_bootstrap_accuracy(m)
    t = t_interval(m.mean(axis=1))
    iv = _binary_interval(m)
    # the bootstrap alone did not even reach the best seed's accuracy
    assert boot.high < m.mean(axis=1).max()
    assert iv.method == "bootstrap-seeds-items+seed-t-hull"
    assert (iv.low, iv.high) == pytest.approx((max(0.0, t.low), min(1.0, t.high)))
    # seeds that agree: the bootstrap is the wider part and is kept as it is
    same = np.stack([(rng.random(300) < 0.5).astype(float)] * 3)
    iv2 = _binary_interval(same)
    b2 = hierarchical_bootstrap_accuracy(same)
    assert (iv2.low, iv2.high) == (b2.low, b2.high)
    # every item alike in every seed: Wilson keeps the interval from being a point
    zero = _binary_interval(np.zeros((3, 50)))
    assert zero.low == 0.0 and 0.05 < zero.high < 0.1 and zero.method.endswith("wilson-hull")


def test_a_target_is_met_only_when_its_interval_reaches_it() -> None:
    spec = loads_spec(TINY_SPEC.replace("[study]\n", '[study]\ntargets = {"add/1x1" = 0.9}\n', 1))

    def out(low: float, est: float) -> dict[str, Any]:
        em = {"estimate": est, "low": low, "high": min(1.0, est + 0.05)}
        block = {"exact_match": em}
        return {
            "conditions": {"ft": {"kind": "finetune", "tasks": {"add": {"strata": {"1x1": block}}}}}
        }

    (row,) = _targets(spec, out(0.85, 0.95))
    assert row["met"] is False and row["met_estimate"] is True
    note = _notes(spec, {"targets": [row], "conditions": {}, "tasks": {}}, [])[0]
    assert note.startswith("Target reached by the point estimate only: add/1x1")
    assert note.endswith("the interval includes values below the target.")
    (row,) = _targets(spec, out(0.91, 0.95))
    assert row["met"] is True
    (row,) = _targets(spec, out(0.5, 0.6))
    assert row["met"] is False and row["met_estimate"] is False


def test_the_critique_names_the_rule_that_decided() -> None:
    base = {"task": "add", "stratum": "overall", "baseline": "b", "condition": "ft"}
    by_test = {
        **base,
        "diff": {"estimate": 0.33, "low": 0.083, "high": 0.583},
        "p_holm": 0.25,
        "verdict": "no detectable difference",
    }
    by_interval = {**by_test, "diff": {"estimate": 0.1, "low": -0.05, "high": 0.25}}
    assert "excludes 0, but McNemar's Holm-adjusted p = 0.25 > 0.05" in no_difference_reason(
        by_test
    )
    assert "[-5.0%, +25.0%] contains 0" in no_difference_reason(by_interval)
    text = critique({"conditions": {}, "comparisons": [by_test, by_interval], "notes": []})
    assert "excludes 0, but McNemar's Holm-adjusted p = 0.25 > 0.05" in text
    assert "contains 0 -> no detectable difference" in text


def test_grokking_verdicts_are_holm_adjusted_over_the_study() -> None:
    ref, fast = [2400, 2500, 2600, 2700], [900, 1000, 1100, 1200]
    # one comparison: 4 against 4 fully separated gives p = 2/70 = 0.029, a difference
    (one,) = grok_comparisons(_results({"ref": {"add": ref}, "fast": {"add": fast}}))
    assert one["p_value"] == one["p_holm"] == 2 / 70
    assert one["verdict"] == "improvement"
    # the same shift beside two other comparisons: Holm takes p to 0.086, not a difference
    out = _results(
        {
            "ref": {"add": ref, "sub": ref, "div": ref},
            "fast": {"add": fast, "sub": fast, "div": fast},
        }
    )
    comps = grok_comparisons(out)
    assert [c["p_holm"] for c in comps] == [3 * 2 / 70] * 3
    assert all(c["verdict"] == "no detectable difference" for c in comps)
    assert all(c["shift"]["high"] < 0 for c in comps)  # the intervals alone would have said so


def test_one_observation_against_many_gets_the_exact_interval() -> None:
    """QA: 1 against 2,501 fell to the normal approximation and came back (-inf, inf)."""
    from smollab.analysis.stats import _mwu_null_cdf, shift_interval

    assert np.allclose(_mwu_null_cdf(1, 30), np.arange(1, 32) / 31)
    iv = shift_interval([0.0], np.arange(2501.0))
    assert iv.method == "hodges-lehmann-exact" and (iv.low, iv.high) == (-2439.0, -61.0)


def test_fourier_power_weighs_the_nyquist_bin_like_the_others() -> None:
    """QA: for even p the p/2 bin held a whole frequency's power and other bins half of one."""
    from smollab.analysis.representations import fourier_sparsity

    x = np.arange(10)
    # two unit-amplitude patterns at frequency 1 (two dimensions: cos and sin, variance 1 in all)
    # and the Nyquist frequency (one dimension, variance 1): equal variance, equal power
    e = np.stack([np.cos(2 * np.pi * x / 10), np.sin(2 * np.pi * x / 10), np.cos(np.pi * x)], 1)
    out = fourier_sparsity(e, top_k=1)
    assert out["top_k_share"] == pytest.approx(0.5)
