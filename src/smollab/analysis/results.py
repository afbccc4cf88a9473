"""Aggregate finished runs into ``results.json`` (schema ``smollab.results/1``).

Per condition, task and stratum: exact match with an interval (Wilson for one seed; for several,
the hull of a two-level bootstrap over seeds and items and a t interval over the seeds'
accuracies), digit accuracy, error-type fractions. Per trained condition vs each baseline on its
model (``comparisons``), and, when ``[study] reference`` names a trained condition, per other
trained condition vs that reference (``vs_reference``): an interval of the difference on the same
items (:func:`diff_interval`), McNemar's test per pair of runs (:func:`_mcnemar_pairs`; the
largest p is reported, then Holm-adjusted across both lists together) and a verdict that never
calls a difference inside its interval an improvement. A task with one stratum is compared once,
as ``overall`` (its one stratum is the same items).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from smollab.analysis.stats import (
    MCNEMAR_EXACT_BELOW,
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
    widen_with_seeds,
    wilson_interval,
)
from smollab.io import read_jsonl
from smollab.study.spec import StudySpec
from smollab.tasks import PROMPT_FORMATS, BenchTask, Task, build_task, validate_task_config

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


def seed_t_kind(n_a: int, n_b: int) -> str | None:
    """Which t interval over seeds :func:`diff_interval` widens its bootstrap with, for
    conditions of ``n_a`` and ``n_b`` seeds: ``"welch"`` (both have several: Welch's interval
    over the two sets of seed accuracies), ``"one-sample"`` (one side ran once: a one-sample t
    over the other side's per-seed differences from that run), or None (one seed each: the
    bootstrap alone)."""
    if n_a > 1 and n_b > 1:
        return "welch"
    return "one-sample" if max(n_a, n_b) > 1 else None


def diff_interval(a: np.ndarray, b: np.ndarray) -> Interval:
    """The interval of ``mean(b) - mean(a)`` (0/1 scores, seeds x the same items) a study
    reports: the paired two-level bootstrap, widened to its hull with the t interval over seeds
    that :func:`seed_t_kind` names (Welch's when both sides have several seeds; a one-sample t
    when one side ran once, whichever side that is)."""
    return widen_with_seeds(
        paired_bootstrap_diff(a, b), a.mean(axis=1), b.mean(axis=1), bounds=(-1.0, 1.0)
    )


def _mcnemar_pairs(
    a: np.ndarray, b: np.ndarray, a_seeds: list[int], b_seeds: list[int]
) -> tuple[str, list[list[int]], list[Any]]:
    """McNemar's test of ``b`` against ``a`` (seeds x the same items) for each pair of runs:
    ``("seed", ...)`` pairs seed s of one with seed s of the other when both ran the same
    seeds (two trained conditions then share each seed's initialisation and data order);
    ``("all", ...)`` tests every run of ``b`` against every run of ``a`` otherwise (a baseline
    that ran once: each seed of the condition against that run). Returns the pairing, the
    ``[seed_a, seed_b]`` pairs and the tests, in that order."""
    if list(a_seeds) == list(b_seeds):
        idx = [(i, i) for i in range(len(a_seeds))]
        pairing = "seed"
    else:
        idx = [(i, j) for i in range(len(a_seeds)) for j in range(len(b_seeds))]
        pairing = "all"
    pairs = [[a_seeds[i], b_seeds[j]] for i, j in idx]
    return pairing, pairs, [mcnemar(a[i], b[j]) for i, j in idx]


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
        # what the task says about its data (a text task's training items left out), when
        # it says anything
        if data_notes := t.data_notes() if isinstance(t, Task) else []:
            out["tasks"][t.name]["data_notes"] = data_notes
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


def _compare(
    out: dict[str, Any],
    preds: dict[tuple[str, str], list[list[dict[str, Any]]]],
    strata_ids: dict[str, dict[str, list[str]]],
    against: str,
    cond: str,
    role: str,
) -> list[dict[str, Any]]:
    """``cond`` against ``against`` (its ``role``: "baseline" or "reference") on every task and
    stratum, and overall; a task with one stratum is compared once, as overall (the same items,
    hence the same test, which would otherwise count twice in Holm's family)."""
    seeds_a = out["conditions"][against]["seeds"]
    seeds_b = out["conditions"][cond]["seeds"]
    rows = []
    for task, ids in strata_ids.items():
        every = [i for v in ids.values() for i in v]
        groups = {OVERALL: every} if len(ids) == 1 else {**ids, OVERALL: every}
        for stratum, sids in groups.items():
            a = _matrix(preds[(against, task)], sids, "correct")
            b = _matrix(preds[(cond, task)], sids, "correct")
            pairing, pairs, tests = _mcnemar_pairs(a, b, seeds_a, seeds_b)
            rows.append(
                {
                    "task": task,
                    "stratum": stratum,
                    role: against,
                    "condition": cond,
                    "diff": diff_interval(a, b).to_dict(),
                    "seed_t": seed_t_kind(a.shape[0], b.shape[0]),
                    "mcnemar": [m.to_dict() for m in tests],
                    "pairing": pairing,
                    "pairs": pairs,
                    "p_max": max(m.p_value for m in tests),
                }
            )
    return rows


def _comparisons(spec, out, preds, strata_ids) -> None:
    baselines = [c.name for c in spec.conditions if c.is_baseline and c.name in out["conditions"]]
    trained = [c.name for c in spec.conditions if c.train and c.name in out["conditions"]]
    comps = []
    for base in baselines:
        for cond in trained:
            if out["conditions"][cond]["model"] != out["conditions"][base]["model"]:
                continue
            comps += _compare(out, preds, strata_ids, base, cond, "baseline")
    # with [study] reference, every other trained condition against it too (any model: the
    # items are the same), in the same Holm family as the comparisons with the baseline
    ref = spec.study.reference if spec.study.reference in out["conditions"] else None
    refs = []
    for cond in trained:
        if ref is not None and cond != ref:
            refs += _compare(out, preds, strata_ids, ref, cond, "reference")
    # a difference is detected when its interval excludes 0 and McNemar's test, Holm-adjusted
    # over every comparison of the study, rejects at 0.05
    family = comps + refs
    for c, p in zip(family, holm_bonferroni([c["p_max"] for c in family]), strict=True):
        c["p_holm"] = p
        c["verdict"] = verdict(Interval(**c["diff"]), p_value=p, alpha=ALPHA)
    out["comparisons"] = comps
    out["reference"] = ref
    out["vs_reference"] = refs
    out["alpha"] = ALPHA
    out["mcnemar_exact_below"] = MCNEMAR_EXACT_BELOW


def every_comparison(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparisons with a baseline, then those with the reference (one Holm family)."""
    return [*(results.get("comparisons") or []), *(results.get("vs_reference") or [])]


def against(comp: dict[str, Any]) -> str:
    """What a comparison sets its condition against: ``"baseline"`` or ``"lr1e-3 (reference)"``."""
    if "reference" in comp:
        return f"{comp['reference']} (reference)"
    return str(comp.get("baseline"))


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


#: exact match by guessing on a generative task (arithmetic, GSM8K, code) is ~0
CHANCE_EXACT_MATCH = 0.0


def baseline_checks(results: dict[str, Any]) -> list[str]:
    """What a reviewer flags about each baseline, per task: a multiple-choice task's (one with
    a guessing level, ``tasks.<task>.chance``: 1 / the number of choices) overall interval that
    reaches down to guessing or below; for a task without one, exact match 0 on every stratum;
    and a hardest stratum scoring well above the easiest (the scorer or the strata are
    suspect). Read by the offline critique and the agent's review alike."""
    out = []
    for cname, c in results["conditions"].items():
        if c["kind"] != "baseline":
            continue
        for tname, t in c["tasks"].items():
            strata = list(t["strata"].items())
            info = (results.get("tasks") or {}).get(tname) or {}
            if len(strata) >= 2 and info.get("strata_by_difficulty", True):
                easy, hard = strata[0][1]["exact_match"], strata[-1][1]["exact_match"]
                if hard["estimate"] > easy["estimate"] + 0.2:
                    out.append(
                        f"{cname} {tname}: the hardest stratum scores higher than the easiest; "
                        "check the scorer and the strata before trusting any comparison."
                    )
            chance = info.get("chance")
            overall = t[OVERALL]["exact_match"]
            if chance is not None and overall["low"] <= chance:
                out.append(
                    f"{cname} {tname}: the baseline's {overall['estimate']:.1%} "
                    f"[{overall['low']:.1%}, {overall['high']:.1%}] does not exceed guessing "
                    f"({chance:.0%}); a gain over it may be a gain over chance, not over a "
                    "working model."
                )
            elif chance is None and all(
                b["exact_match"]["estimate"] <= CHANCE_EXACT_MATCH for _, b in strata
            ):
                out.append(
                    f"{cname} {tname}: exact match is 0 everywhere (chance level); check the "
                    "prompt format and generations before reading the comparison as a gain."
                )
    return out


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
        notes += out["tasks"][t.name].get("data_notes", [])
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
