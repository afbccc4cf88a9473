"""The grokking report's Conditions line and Fourier cells (QA: Python reprs and options that
other settings switch off were printed; the Fourier basis of x / y was not named)."""

from __future__ import annotations

from smollab.report.grokking import _settings


def test_settings_leave_out_what_other_settings_switch_off() -> None:
    cfg = {
        "steps": 7500,
        "lr": 0.002,
        "lr_mult": {"embed": 4.0},
        "wd_mult": {},
        "grokfast_alpha": None,
        "grokfast_lamb": 2.0,
        "lr_schedule": "constant",
        "min_lr_ratio": 0.0,
        "betas": [0.9, 0.98],
        "device": "cpu",
        "threads": 1,
    }
    assert _settings(cfg) == {
        "steps": "7500",
        "lr": "0.002",
        "lr_mult": "embed x4",
        "lr_schedule": "constant",
        "betas": "[0.9, 0.98]",
    }
    on = _settings({**cfg, "grokfast_alpha": 0.98, "lr_schedule": "cosine"})
    assert on["grokfast_lamb"] == "2.0" and on["min_lr_ratio"] == "0.0"


def test_division_rows_name_their_fourier_group() -> None:
    from smollab.report.grokking import _rep_row

    def rep(basis: str) -> dict:
        series = {"mean": [0.3, 0.9], "sem": [0.0, 0.0], "n": [2, 2]}
        return {
            "steps": [0, 100],
            "layers": {
                lay: {"silhouette": series, "probe_acc": series} for lay in ("first", "last")
            },
            "fourier": {"top_k_share": series, "gini": series, "basis": basis},
            "undefined": {},
            "not_averaged": {},
        }

    assert _rep_row("k", rep("multiplicative"))["fourier_group"] == "in Z_p^*"
    assert _rep_row("k", rep("additive"))["fourier_group"] == ""
