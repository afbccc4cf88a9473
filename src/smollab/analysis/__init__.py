"""Analysis utilities for smollab: statistics (``smollab.analysis.stats``)."""

from __future__ import annotations

from smollab.analysis.stats import (
    Interval,
    McNemarResult,
    bootstrap_interval,
    describe_seeds,
    describe_steps,
    hierarchical_bootstrap_accuracy,
    holm_bonferroni,
    hull,
    mann_whitney_p,
    mcnemar,
    mean_sem,
    paired_bootstrap_diff,
    pass_at_k,
    score_interval,
    seed_t_interval,
    shift_interval,
    t_interval,
    verdict,
    wilson_interval,
)

__all__ = [
    "Interval",
    "McNemarResult",
    "bootstrap_interval",
    "describe_seeds",
    "describe_steps",
    "hierarchical_bootstrap_accuracy",
    "holm_bonferroni",
    "hull",
    "mann_whitney_p",
    "mcnemar",
    "mean_sem",
    "paired_bootstrap_diff",
    "pass_at_k",
    "score_interval",
    "seed_t_interval",
    "shift_interval",
    "t_interval",
    "verdict",
    "wilson_interval",
]
