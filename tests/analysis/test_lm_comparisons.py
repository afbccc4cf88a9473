"""A language-model study's comparisons: with the baseline, with a named reference condition,
one Holm family, one comparison for a task with one stratum, and the chance-level checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from smollab.analysis.results import (
    _comparisons,
    baseline_checks,
    diff_interval,
    seed_t_kind,
)
from smollab.analysis.stats import holm_bonferroni, paired_bootstrap_diff, seed_t_interval
from smollab.study.session import critique
from smollab.study.spec import loads_spec
from tests.conftest import TINY_SPEC

TWO_TRAINED = TINY_SPEC.replace(
    "[eval]",
    '[[conditions]]\nname = "ft_fast"\nformat = "compact"\n[conditions.train]\nsteps = 4\n'
    "lr = 3e-3\nseq_len = 64\n\n[eval]",
)
WITH_REFERENCE = TWO_TRAINED.replace("seeds = [0, 1]\n", 'seeds = [0, 1]\nreference = "ft"\n', 1)


def _preds(acc: dict[str, list[float]], ids: list[str]) -> list[list[dict[str, Any]]]:
    """Per seed, records whose first ``round(acc * n)`` items are correct."""
    n = len(ids)
    return [
        [{"id": i, "correct": k < round(a * n)} for k, i in enumerate(ids)] for a in acc["seeds"]
    ]


def _setup(
    strata: dict[str, list[str]], accs: dict[str, list[float]]
) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    seeds = {"baseline": [0], "ft": [0, 1], "ft_fast": [0, 1]}
    out = {"conditions": {c: {"model": "tiny-gpt2", "seeds": seeds[c]} for c in accs}}
    every = [i for v in strata.values() for i in v]
    preds = {(c, "add"): _preds({"seeds": a}, every) for c, a in accs.items()}
    return out, preds


ACCS = {"baseline": [0.1], "ft": [0.5, 0.55], "ft_fast": [0.9, 0.85]}
STRATA = {"1x1": [f"a{i}" for i in range(30)], "1x2": [f"b{i}" for i in range(30)]}


def test_a_reference_is_compared_with_every_other_trained_condition_in_one_holm_family() -> None:
    spec = loads_spec(WITH_REFERENCE)
    out, preds = _setup(STRATA, ACCS)
    _comparisons(spec, out, preds, {"add": STRATA})
    base, refs = out["comparisons"], out["vs_reference"]
    assert out["reference"] == "ft"
    assert [(c["condition"], c["baseline"], c["stratum"]) for c in base] == [
        (cond, "baseline", s) for cond in ("ft", "ft_fast") for s in ("1x1", "1x2", "overall")
    ]
    assert [(c["condition"], c["reference"], c["stratum"]) for c in refs] == [
        ("ft_fast", "ft", s) for s in ("1x1", "1x2", "overall")
    ]
    # the same seeds pair with each other; a baseline that ran once is set against every seed
    assert all(c["pairing"] == "seed" and c["pairs"] == [[0, 0], [1, 1]] for c in refs)
    assert all(c["pairing"] == "all" and c["pairs"] == [[0, 0], [0, 1]] for c in base)
    assert all(len(c["mcnemar"]) == 2 for c in [*base, *refs])
    assert {c["seed_t"] for c in base} == {"one-sample"}
    assert {c["seed_t"] for c in refs} == {"welch"}
    # one Holm family over both lists
    family = [*base, *refs]
    assert [c["p_holm"] for c in family] == holm_bonferroni([c["p_max"] for c in family])
    assert out["mcnemar_exact_below"] == 25
    # against the reference: +35 pp overall, detected
    overall = refs[-1]
    assert overall["diff"]["estimate"] == pytest.approx(0.35)
    assert overall["verdict"] == "improvement"


def test_without_a_reference_trained_conditions_meet_only_the_baseline() -> None:
    spec = loads_spec(TWO_TRAINED)
    out, preds = _setup(STRATA, ACCS)
    _comparisons(spec, out, preds, {"add": STRATA})
    assert out["reference"] is None and out["vs_reference"] == []
    assert len(out["comparisons"]) == 6


def test_a_task_with_one_stratum_is_compared_once() -> None:
    """QA: hellaswag's one stratum 'all' and 'overall' are the same items: two identical tests
    in Holm's family and two identical rows."""
    spec = loads_spec(WITH_REFERENCE)
    one = {"all": [f"h{i}" for i in range(40)]}
    out, preds = _setup(one, ACCS)
    _comparisons(spec, out, preds, {"add": one})
    assert [c["stratum"] for c in out["comparisons"]] == ["overall", "overall"]
    assert [c["stratum"] for c in out["vs_reference"]] == ["overall"]
    family = [*out["comparisons"], *out["vs_reference"]]
    assert [c["p_holm"] for c in family] == holm_bonferroni([c["p_max"] for c in family])


def test_the_difference_interval_counts_seed_spread_on_either_side() -> None:
    rng = np.random.default_rng(0)
    many = np.stack([(rng.random(200) < p).astype(float) for p in (0.3, 0.5, 0.7)])
    once = (rng.random(200) < 0.5).astype(float)[None, :]
    assert seed_t_kind(1, 3) == seed_t_kind(3, 1) == "one-sample"
    assert seed_t_kind(3, 3) == "welch" and seed_t_kind(1, 1) is None
    # the seeds that vary are a's: the interval still holds their t interval (turned around)
    iv = diff_interval(many, once)
    t = seed_t_interval(many.mean(axis=1), once.mean(axis=1), bounds=(-1.0, 1.0))
    assert t is not None
    assert iv.low <= -t.high and iv.high >= -t.low
    assert iv.width > paired_bootstrap_diff(many, once).width
    assert iv.method.endswith("+seed-t-hull")


def _block(est: float, low: float, high: float) -> dict[str, Any]:
    return {"exact_match": {"estimate": est, "low": low, "high": high}, "n_items": 30}


def _hs(est: float, low: float, high: float) -> dict[str, Any]:
    b = _block(est, low, high)
    return {
        "tasks": {"hs": {"strata": ["all"], "chance": 0.25, "strata_by_difficulty": False}},
        "conditions": {
            "baseline": {
                "kind": "baseline",
                "seeds": [0],
                "tasks": {"hs": {"strata": {"all": b}, "overall": b}},
            }
        },
        "comparisons": [],
        "notes": [],
    }


def test_the_critique_flags_a_multiple_choice_baseline_at_chance() -> None:
    """QA: a HellaSwag baseline of 26.7% [14.2, 44.4] (guessing: 25%) went unflagged in
    critiques.txt; the README says the review flags a baseline not above guessing."""
    text = critique(_hs(0.267, 0.142, 0.444))
    assert "baseline hs: the baseline's 26.7% [14.2%, 44.4%] does not exceed guessing (25%)" in text
    # below guessing too; above it, nothing
    assert "does not exceed guessing" in critique(_hs(0.20, 0.10, 0.30))
    assert baseline_checks(_hs(0.45, 0.30, 0.60)) == []


def test_the_critique_names_comparisons_with_the_reference() -> None:
    comp = {
        "task": "add",
        "stratum": "overall",
        "reference": "ft",
        "condition": "ft_fast",
        "diff": {"estimate": -0.04, "low": -0.11, "high": 0.04},
        "p_holm": 1.0,
        "verdict": "no detectable difference",
    }
    text = critique({"conditions": {}, "comparisons": [], "vs_reference": [comp], "notes": []})
    assert "- ft_fast vs ft (reference) on add/overall: the interval of the difference" in text
