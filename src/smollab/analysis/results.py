"""Aggregate finished runs into ``results.json`` (schema ``smollab.results/1``).

Per condition, task and stratum: exact match with an interval (Wilson for one seed; for several,
the hull of a two-level bootstrap over seeds and items and a t interval over the seeds'
accuracies), digit accuracy, error-type fractions. Per trained condition vs each baseline: an
interval of the difference on the same items (the hull of a paired bootstrap and a t interval
over seeds), McNemar per seed (the largest p is reported, then Holm-adjusted across all
comparisons) and a verdict that never calls a difference inside its interval an improvement.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from smollab.analysis.stats import (
    Interval,
    describe_seeds,
    hierarchical_bootstrap_accuracy,
    holm_bonferroni,
    hull,
    mcnemar,
    paired_bootstrap_diff,
    score_interval,
    seed_t_interval,
    verdict,
    wilson_interval,
)
from smollab.io import read_jsonl
from smollab.study.spec import StudySpec
from smollab.tasks import PROMPT_FORMATS, BenchTask, build_task, validate_task_config

OVERALL = "overall"


def _matrix(per_seed: list[list[dict[str, Any]]], ids: list[str], key: str) -> np.ndarray:
    out = np.zeros((len(per_seed), len(ids)))
    for s, recs in enumerate(per_seed):
        by_id = {r["id"]: r for r in recs}
        out[s] = [float(by_id[i][key]) for i in ids]
    return out


def _binary_interval(m: np.ndarray) -> Interval:
    """A 0/1 per-item score (seeds x items): Wilson for one seed; for several, the hull of the
    two-level bootstrap and the t interval over the seeds' accuracies (a bootstrap over 2-3
    seeds cannot reach past the seeds it saw: see :func:`seed_t_interval`)."""
    if m.shape[0] == 1:
        return wilson_interval(int(m.sum()), m.shape[1])
    boot = hierarchical_bootstrap_accuracy(m)
    seed = seed_t_interval(m.mean(axis=1), bounds=(0.0, 1.0))
    assert seed is not None  # two or more seeds
    if boot.low < boot.high:
        return hull([boot, seed], "bootstrap-seeds-items+seed-t-hull")
    # every item agrees in every seed (all 0 or all 1): the bootstrap and the seeds' t interval
    # are points, and the Wilson interval of the item count keeps the interval honest
    w = wilson_interval(int(round(boot.estimate * m.shape[1])), m.shape[1])
    return hull([boot, seed, w], "bootstrap-seeds-items+wilson-hull")


def diff_interval(a: np.ndarray, b: np.ndarray) -> Interval:
    """The interval of ``mean(b) - mean(a)`` (0/1 scores, seeds x the same items) a study
    reports: the paired two-level bootstrap, widened to its hull with Welch's t interval over
    the two conditions' seed accuracies when ``b`` has several seeds."""
    diff = paired_bootstrap_diff(a, b)
    seed = seed_t_interval(b.mean(axis=1), a.mean(axis=1), bounds=(-1.0, 1.0))
    return diff if seed is None else hull([diff, seed], f"{diff.method}+seed-t-hull")


def _stratum_block(
    per_seed: list[list[dict[str, Any]]],
    ids: list[str],
    error_types: tuple[str, ...],
    item_metrics: tuple[str, ...] = (),
    binary: tuple[str, ...] = (),
) -> dict:
    correct = _matrix(per_seed, ids, "correct")
    block: dict[str, Any] = {
        "n_items": len(ids),
        "n_seeds": correct.shape[0],
        "exact_match": _binary_interval(correct).to_dict(),
        "exact_match_per_seed": [float(x) for x in correct.mean(axis=1)],
    }
    for name in item_metrics:
        if not ids or not all(name in r for recs in per_seed for r in recs):
            block[name] = None  # no items, or predictions written before the metric was recorded
            continue
        m = _matrix(per_seed, ids, name)
        if name in binary:
            block[name] = _binary_interval(m).to_dict()
        else:
            # a fractional score (digit accuracy) is outside the 0/1 contract of the two-level
            # bootstrap: bootstrap the items of the seed-averaged per-item score instead, widened
            # to the Wilson hull where every item scores alike (a zero-width "interval" before)
            block[name] = score_interval(m.mean(axis=0), binary=False).to_dict()
    counts: Counter[str] = Counter()
    for recs in per_seed:
        idset = set(ids)
        counts.update(r["error_type"] for r in recs if r["id"] in idset)
    total = sum(counts.values()) or 1
    block["errors"] = {e: counts.get(e, 0) / total for e in error_types}
    return block


def aggregate(
    spec: StudySpec,
    records: list[dict[str, Any]],
    run_dirs: dict[str, Path],
    session: str,
) -> dict[str, Any]:
    """Build the results dict from finished run records (see module docstring)."""
    tasks = [build_task(validate_task_config(t)) for t in spec.tasks]
    by_cond: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_cond.setdefault(r["condition"], []).append(r)
    preds: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    for cname, recs in by_cond.items():
        recs.sort(key=lambda r: r["seed"])
        for t in tasks:
            preds[(cname, t.name)] = [
                read_jsonl(run_dirs[r["hash"]] / r["predictions"][t.name]) for r in recs
            ]
    out: dict[str, Any] = {
        "schema": "smollab.results/1",
        "session": session,
        "study": spec.study.model_dump(mode="json"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": {},
        "models": {},
        "conditions": {},
        "comparisons": [],
        "curves": {},
        "notes": [],
    }
    strata_ids: dict[str, dict[str, list[str]]] = {}
    for t in tasks:
        test = t.test_set()
        ids: dict[str, list[str]] = {s: [e.id for e in test if e.stratum == s] for s in t.strata}
        strata_ids[t.name] = ids
        out["tasks"][t.name] = {
            "task": t.config.task,
            "strata": t.strata,
            "n_items": {s: len(v) for s, v in ids.items()},
            "metrics": ["exact_match", *t.item_metrics],
            # what "exact_match" holds: a benchmark's primary metric (hellaswag's acc, ...)
            "score": t.metrics[0] if isinstance(t, BenchTask) else "exact_match",
            "error_types": list(t.error_types),
            "chance": t.chance,
            "strata_by_difficulty": t.strata_by_difficulty,
        }
    for m in spec.models:
        info: dict[str, Any] = next(
            (r["model_info"] for r in records if r["model_name"] == m.name), {}
        )
        out["models"][m.name] = {
            "source": m.source,
            **{k: info.get(k) for k in ("n_params", "model_type")},
        }
    for cond in spec.conditions:
        recs = by_cond.get(cond.name, [])
        if not recs:
            continue
        block: dict[str, Any] = {
            "kind": "baseline" if cond.is_baseline else "finetune",
            "model": spec.model_for(cond).name,
            "format": cond.format,
            "method": cond.train.method if cond.train else None,
            "train": cond.train.model_dump(mode="json") if cond.train else None,
            "seeds": [r["seed"] for r in recs],
            "runs": [r["hash"] for r in recs],
            "train_summary": _train_summary(recs) if cond.train else None,
            "tasks": {},
        }
        for t in tasks:
            per_seed = preds[(cond.name, t.name)]
            ids = strata_ids[t.name]
            kw = {"item_metrics": t.item_metrics, "binary": tuple(t.binary_metrics)}
            strata = {s: _stratum_block(per_seed, v, t.error_types, **kw) for s, v in ids.items()}
            all_ids = [i for v in ids.values() for i in v]
            strata_all = _stratum_block(per_seed, all_ids, t.error_types, **kw)
            block["tasks"][t.name] = {"strata": strata, OVERALL: strata_all}
        out["conditions"][cond.name] = block
        if cond.train:
            out["curves"][cond.name] = {str(r["seed"]): _curves(run_dirs[r["hash"]]) for r in recs}
    _comparisons(spec, out, preds, strata_ids)
    out["targets"] = _targets(spec, out)
    out["notes"] = _notes(spec, out, tasks)
    return out


def _targets(spec: StudySpec, out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each declared target against the best trained condition (by point estimate). ``met``
    asks the whole interval to reach the target (the best of several conditions' estimates is
    biased upwards); ``met_estimate`` says whether the point estimate does."""
    rows = []
    trained = {k: v for k, v in out["conditions"].items() if v["kind"] != "baseline"}
    for key, target in spec.study.targets.items():
        task, stratum = key.split("/")
        best_name, best = None, None
        for name, c in trained.items():
            tb = c["tasks"].get(task)
            if tb is None:
                continue
            block = tb[OVERALL] if stratum == OVERALL else tb["strata"].get(stratum)
            if block is None:  # no item of this stratum was evaluated (a task limit)
                continue
            if best is None or block["exact_match"]["estimate"] > best["estimate"]:
                best_name, best = name, block["exact_match"]
        rows.append(
            {
                "key": key,
                "target": target,
                "condition": best_name,
                "exact_match": best,
                "met": bool(best and best["low"] >= target),
                "met_estimate": bool(best and best["estimate"] >= target),
            }
        )
    return rows


def _train_summary(recs: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> dict[str, Any] | None:
        vals = [r["train"][key] for r in recs if r.get("train") and r["train"].get(key) is not None]
        return describe_seeds(vals) if vals else None

    return {
        "wall_s": col("train_seconds"),
        "final_loss": col("final_loss"),
        "tokens_per_s": col("tokens_per_s"),
        "steps": col("steps"),
    }


def _curves(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.jsonl"
    rows = read_jsonl(path) if path.exists() else []
    train = [{"step": r["step"], "loss": r["loss"], "lr": r["lr"]} for r in rows]
    ev = [{"step": r["step"], **r["eval"]} for r in rows if r.get("eval")]
    return {"train": train, "eval": ev}


#: the level at which McNemar's test (Holm-adjusted) must reject for a detected difference
ALPHA = 0.05


def _comparisons(spec, out, preds, strata_ids) -> None:
    baselines = [c.name for c in spec.conditions if c.is_baseline and c.name in out["conditions"]]
    trained = [c.name for c in spec.conditions if c.train and c.name in out["conditions"]]
    comps = []
    for base in baselines:
        for cond in trained:
            if out["conditions"][cond]["model"] != out["conditions"][base]["model"]:
                continue
            for task, ids in strata_ids.items():
                groups = {**ids, OVERALL: [i for v in ids.values() for i in v]}
                for stratum, sids in groups.items():
                    a = _matrix(preds[(base, task)], sids, "correct")
                    b = _matrix(preds[(cond, task)], sids, "correct")
                    diff = diff_interval(a, b)
                    tests = [mcnemar(a[0], b[s]) for s in range(b.shape[0])]
                    comps.append(
                        {
                            "task": task,
                            "stratum": stratum,
                            "baseline": base,
                            "condition": cond,
                            "diff": diff.to_dict(),
                            "mcnemar": [m.to_dict() for m in tests],
                            "p_max": max(m.p_value for m in tests),
                        }
                    )
    # a difference is detected when its interval excludes 0 and McNemar's test, Holm-adjusted
    # over every comparison of the study, rejects at 0.05
    for c, p in zip(comps, holm_bonferroni([c["p_max"] for c in comps]), strict=True):
        c["p_holm"] = p
        c["verdict"] = verdict(Interval(**c["diff"]), p_value=p, alpha=ALPHA)
    out["comparisons"] = comps
    out["alpha"] = ALPHA


def no_difference_reason(comp: dict[str, Any], alpha: float = ALPHA) -> str:
    """Why a comparison's verdict is "no detectable difference": its interval holds 0, or the
    interval excludes 0 but McNemar's Holm-adjusted p is above ``alpha``."""
    d = comp["diff"]
    if d["low"] > 0.0 or d["high"] < 0.0:
        return (
            f"the interval of the difference [{d['low']:+.1%}, {d['high']:+.1%}] excludes 0, but "
            f"McNemar's Holm-adjusted p = {comp['p_holm']:.3g} > {alpha}"
        )
    return f"the interval of the difference [{d['low']:+.1%}, {d['high']:+.1%}] contains 0"


def _notes(spec, out, tasks) -> list[str]:
    notes = []
    for t in out.get("targets", []):
        em = t["exact_match"]
        if em is None:
            notes.append(
                f"Target {t['key']} >= {t['target']:.0%}: no trained condition has a result "
                "for it (none ran, or no item of that stratum was evaluated)."
            )
            continue
        verb = "met" if t["met"] else "NOT met"
        if not t["met"] and t.get("met_estimate"):
            verb = "reached by the point estimate only"
        notes.append(
            f"Target {verb}: {t['key']} exact match of {t['condition']} is {em['estimate']:.1%} "
            f"[{em['low']:.1%}, {em['high']:.1%}], target {t['target']:.0%}"
            + (
                "; the interval includes values below the target."
                if verb.startswith("reached")
                else "."
            )
        )
    compared = {c["condition"] for c in out.get("comparisons", [])}
    for name, c in out["conditions"].items():
        if c["kind"] != "baseline" and name not in compared:
            notes.append(
                f"Condition {name} (model {c['model']}) was not compared with a baseline: no "
                "baseline condition evaluates that model. Add one to measure what training did."
            )
    for cond in spec.conditions:
        fmt = PROMPT_FORMATS.get(cond.format) if cond.format in PROMPT_FORMATS else None
        if cond.train is not None and fmt is not None and fmt.n_shots:
            notes.append(
                f"Condition {cond.name} trained on its questions without solved examples, and "
                f"was evaluated with format {cond.format}'s {fmt.n_shots} solved examples before "
                "each question: the prompts it was trained and tested on differ."
            )
    for t in tasks:
        for s, n in out["tasks"][t.name]["n_items"].items():
            if n < 100:
                notes.append(
                    f"Task {t.name}, stratum {s}: only {n} held-out items, so its interval is wide."
                )
    for cname, c in out["conditions"].items():
        ts = c.get("train_summary") or {}
        fl = (ts.get("final_loss") or {}).get("mean")
        if fl is not None and fl < 0.01:
            for tname, tb in c["tasks"].items():
                acc = tb[OVERALL]["exact_match"]["estimate"]
                if acc < 0.9:
                    notes.append(
                        f"Condition {cname}: training loss {fl:.4f} is near zero but held-out "
                        f"exact match on {tname} is {acc:.1%}: the model fits its training data "
                        "without generalising (check the generations in predictions/)."
                    )
        if len(c["seeds"]) > 1:
            for tname, tb in c["tasks"].items():
                per = tb[OVERALL]["exact_match_per_seed"]
                if len(set(per)) == 1 and c["kind"] != "baseline":
                    notes.append(
                        f"Condition {cname}: all {len(per)} seeds give identical accuracy on "
                        f"{tname} ({per[0]:.1%}); check that the seed reaches training."
                    )
    return notes
