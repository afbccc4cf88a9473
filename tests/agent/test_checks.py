"""The automated reviewer's chance checks read the task's own guessing level from results.json."""

from __future__ import annotations

from typing import Any

from smollab.agent.checks import review


def _results(estimate: float, low: float, high: float, chance: float | None) -> dict[str, Any]:
    em = {"estimate": estimate, "low": low, "high": high, "level": 0.95, "method": "wilson"}
    block = {"n_items": 100, "n_seeds": 1, "exact_match": em, "exact_match_per_seed": [estimate]}
    return {
        "tasks": {"hs": {"strata": ["all"], "chance": chance}},
        "conditions": {
            "base": {
                "kind": "baseline",
                "seeds": [0],
                "runs": [],
                "tasks": {"hs": {"strata": {"all": block}, "overall": block}},
            }
        },
        "comparisons": [],
    }


def test_a_baseline_not_above_guessing_is_flagged(tmp_path):
    lines = review(_results(0.27, 0.19, 0.37, chance=0.25), tmp_path)
    flagged = [line for line in lines if "does not exceed guessing (25%)" in line]
    assert len(flagged) == 1 and "base hs: the baseline's 27.0% [19.0%, 37.0%]" in flagged[0]


def test_a_baseline_above_guessing_is_not_flagged(tmp_path):
    lines = review(_results(0.41, 0.36, 0.46, chance=0.25), tmp_path)
    assert not any("guessing" in line for line in lines)


def test_without_a_chance_level_zero_exact_match_is_flagged(tmp_path):
    lines = review(_results(0.0, 0.0, 0.04, chance=None), tmp_path)
    assert any("exact match is 0 everywhere" in line for line in lines)
    assert not any("guessing" in line for line in lines)
