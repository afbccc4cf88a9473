"""A study's per-stratum block: fractional per-item metrics get a real interval."""

from __future__ import annotations

from smollab.analysis.results import _stratum_block


def _recs(values: list[float]) -> list[dict]:
    return [
        {"id": str(i), "correct": False, "error_type": "multi_digit", "digit_accuracy": v}
        for i, v in enumerate(values)
    ]


def test_digit_accuracy_that_is_zero_everywhere_is_not_a_zero_width_interval() -> None:
    """QA: a baseline's digit accuracy of 0 on 12 items was reported as 0.0% [0.0, 0.0]."""
    ids = [str(i) for i in range(12)]
    block = _stratum_block([_recs([0.0] * 12)], ids, ("multi_digit",), ("digit_accuracy",))
    iv = block["digit_accuracy"]
    assert iv["estimate"] == 0.0 and iv["low"] == 0.0
    assert 0.2 < iv["high"] < 0.3  # the Wilson bound of 0/12 (0.243)
    assert iv["method"].endswith("+wilson-hull")
    # items that differ get the hull of the bootstrap and the t interval over items
    spread = _stratum_block(
        [_recs([0.0, 0.5, 1.0] * 4)], ids, ("multi_digit",), ("digit_accuracy",)
    )["digit_accuracy"]
    assert spread["method"] == "bootstrap-percentile+t-hull"
    assert spread["low"] < 0.5 < spread["high"]
