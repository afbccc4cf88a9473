"""The report's per-condition training settings list what the run used."""

from __future__ import annotations

from smollab.report.context import _condition


def _names(train: dict) -> list[str]:
    cond = {"kind": "finetune", "model": "m", "format": "compact", "seeds": [0], "train": train}
    return [t["name"] for t in _condition("ft", cond, {})["train"]]


def test_a_full_fine_tune_lists_no_lora_settings() -> None:
    """QA: a `method = "full"` condition's table listed lora_r, lora_alpha, ... (unused)."""
    lora = {"lora_r": 16, "lora_alpha": 32, "lora_targets": ["all-linear"]}
    full = _names({"method": "full", "steps": 4, **lora})
    assert full == ["method", "steps"]
    assert _names({"method": "lora", "steps": 4, **lora}) == [
        "method",
        "steps",
        "lora_r",
        "lora_alpha",
        "lora_targets.0",
    ]
