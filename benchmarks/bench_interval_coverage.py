"""Coverage of a study's intervals, and how often its verdict calls a non-existent difference,
when trained seeds differ from one another (statistics QA, 2026-11-24).

Simulated data: item difficulty on the logit scale ~ N(0, sd_item); each trained seed adds its
own offset ~ N(mu, sd_seed); a one-seed baseline has no offset. ``mu`` is set so that the
population mean accuracy of the trained condition (over items and seeds) equals the
baseline's: the true difference is 0, and any "improvement" or "degradation" is a false
positive. For each scenario the script draws ``--datasets`` studies and reports, for the
bootstrap alone (the rule before this change) and for the interval a study reports now
(``smollab.analysis.results.diff_interval`` and ``_binary_interval``):

- coverage of the condition's own accuracy interval (truth: its population mean accuracy);
- coverage of the difference interval (truth 0);
- the share of studies whose verdict (interval and McNemar's p, as the study computes it, with
  one comparison) is not "no detectable difference".

Command: ``PYTHONPATH=src python benchmarks/bench_interval_coverage.py --datasets 400 --out
benchmarks/results/interval_coverage.json``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from smollab.analysis.results import _binary_interval, diff_interval
from smollab.analysis.stats import (
    hierarchical_bootstrap_accuracy,
    mcnemar,
    paired_bootstrap_diff,
    verdict,
)

SCENARIOS = [
    # (trained seeds, items, sd_item, sd_seed)
    (3, 100, 1.5, 0.7),
    (2, 200, 1.5, 0.5),
    (3, 500, 1.5, 0.5),
    (3, 500, 1.5, 0.25),
    (3, 200, 1.5, 0.0),
    (5, 200, 1.5, 0.5),
]


def run(n_seeds: int, n_items: int, sd_item: float, sd_seed: float, datasets: int, rng) -> dict:
    big = rng.normal(0, sd_item, 400_000)
    off = rng.normal(0, sd_seed, 400_000)
    base_mean = float(expit(big).mean())
    mu = brentq(lambda m: float(expit(m + big + off).mean()) - base_mean, -3, 3)
    truth_acc = float(expit(mu + big + off).mean())
    arms = {
        k: {"acc_cover": 0, "diff_cover": 0, "false_verdicts": 0}
        for k in ("bootstrap_only", "study_now")
    }
    for _ in range(datasets):
        item = rng.normal(0, sd_item, n_items)
        seeds = rng.normal(mu, sd_seed, n_seeds)
        a = (rng.random((1, n_items)) < expit(item)[None, :]).astype(float)
        b = (rng.random((n_seeds, n_items)) < expit(seeds[:, None] + item[None, :])).astype(float)
        p = max(mcnemar(a[0], b[s]).p_value for s in range(n_seeds))
        for arm, acc, diff in (
            ("bootstrap_only", hierarchical_bootstrap_accuracy(b), paired_bootstrap_diff(a, b)),
            ("study_now", _binary_interval(b), diff_interval(a, b)),
        ):
            arms[arm]["acc_cover"] += acc.low <= truth_acc <= acc.high
            arms[arm]["diff_cover"] += diff.low <= 0.0 <= diff.high
            arms[arm]["false_verdicts"] += verdict(diff, p_value=p) != "no detectable difference"
    return {
        "seeds": n_seeds,
        "items": n_items,
        "sd_item": sd_item,
        "sd_seed": sd_seed,
        "seed_sd_of_accuracy_pp": round(
            100 * float(np.std([expit(mu + s + big[:20000]).mean() for s in off[:400]])), 1
        ),
        **{
            arm: {k: round(v / datasets, 3) for k, v in counts.items()}
            for arm, counts in arms.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    t0 = time.perf_counter()
    for sc in SCENARIOS:
        row = run(*sc, datasets=args.datasets, rng=rng)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"datasets": args.datasets, "seed": args.seed, "wall_s": time.perf_counter() - t0}
    out["rows"] = rows
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
