"""Results of a grokking study (``smollab.grok_results/1``) from its finished runs.

Per condition and task: ``step_val_acc_99``, the memorisation step and the gap summarised over
seeds with :func:`smollab.analysis.stats.describe_steps` (unreached seeds stay unreached: they
are never averaged in), final validation accuracy with :func:`describe_seeds`; the learning
curves; the representation metrics over time (:func:`_representations`: the mean over seeds,
with its standard error, only at the steps every seed snapshotted, and each seed's own series);
and each condition's ``step_val_acc_99`` against the reference
condition's (``[study] reference``, by default the first condition; ``comparisons``: the
Hodges-Lehmann shift with its distribution-free interval,
:func:`smollab.analysis.stats.shift_interval`, the Mann-Whitney p-value Holm-adjusted over the
study's comparisons, and :func:`~smollab.analysis.stats.verdict`; a seed that never reached 99%
is right-censored at its run's last step, see :func:`_comparisons`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smollab.analysis.stats import (
    Interval,
    censored_ranks,
    censored_shift_interval,
    describe_seeds,
    describe_steps,
    holm_bonferroni,
    mann_whitney_min_p,
    mann_whitney_p,
    mean_sem,
    shift_interval,
    verdict,
)
from smollab.io import read_json, read_jsonl

SCHEMA = "smollab.grok_results/1"

#: the level at which the Mann-Whitney test (Holm-adjusted) must reject for a detected shift
ALPHA = 0.05
CURVE_FIELDS = ("train_acc", "val_acc", "train_loss", "val_loss", "weight_norm")


def _curve(run_dir: Path) -> dict[str, list[float]]:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    return {"step": [r["step"] for r in rows], **{f: [r[f] for r in rows] for f in CURVE_FIELDS}}


def _mean_over_seeds(series: list[list[float | None]]) -> dict[str, list[Any]]:
    """Mean, SEM and number of seeds with a value at each index (the series are aligned: index
    i is one step in every seed); ``None`` where no seed has a value."""
    n = min(len(s) for s in series)
    mean: list[float | None] = []
    sem: list[float | None] = []
    count: list[int] = []
    for i in range(n):
        vals = [v for v in (s[i] for s in series) if v is not None]
        count.append(len(vals))
        if not vals:
            mean.append(None)
            sem.append(None)
            continue
        m, e = mean_sem(vals)
        mean.append(m)
        sem.append(None if e != e else e)
    return {"mean": mean, "sem": sem, "n": count}


def _representations(reps: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any] | None:
    """Representation metrics of one condition and task over its seeds (``reps``, each a run's
    :func:`~smollab.analysis.representations.analyse_run` output, in the order of ``seeds``).

    Seeds are aligned by step, never by position: the means (``val_acc``, ``layers``,
    ``fourier``: ``{"mean", "sem", "n"}``) are taken at ``steps``, the steps every seed
    snapshotted. Runs stopped early (``stop_after_99``) snapshot their own last step, and their
    schedules end at different steps; those snapshots are in ``per_seed`` (each seed's own
    ``steps`` and series) and listed in ``not_averaged``, never averaged with another step.
    ``undefined``: the metrics undefined by construction in some seed, with the reason and the
    steps (their values are ``None`` and are left out of the means).
    """
    if not reps:
        return None
    common = sorted(set.intersection(*(set(r["steps"]) for r in reps)))

    def mean(get: Any) -> dict[str, list[Any]]:
        """Mean over seeds of the series ``get(rep)`` at the common steps."""
        at = [dict(zip(r["steps"], get(r), strict=True)) for r in reps]
        return _mean_over_seeds([[a[s] for s in common] for a in at])

    fourier = [m for m in ("top_k_share", "gini") if reps[0].get("fourier")]
    undefined: dict[str, dict[str, Any]] = {}
    for r in reps:
        for path, u in r.get("undefined", {}).items():
            entry = undefined.setdefault(path, {"reason": u["reason"], "steps": []})
            entry["steps"] = sorted(set(entry["steps"]) | set(u["steps"]))
    not_averaged = {
        str(seed): [s for s in r["steps"] if s not in set(common)]
        for seed, r in zip(seeds, reps, strict=True)
    }
    averaged = (
        f"mean over {len(reps)} seeds at each of the {len(common)} steps every seed snapshotted"
        if common
        else "nothing: no step was snapshotted by every seed"
    )
    if any(not_averaged.values()):
        averaged += (
            "; snapshots at steps only some seeds have (not_averaged: runs stopped early by "
            "stop_after_99 end at different steps) are in per_seed only"
        )
    return {
        "aligned_by": "step",
        "averaged": averaged,
        "n_seeds": len(reps),
        "steps": common,
        "val_acc": mean(lambda r: r["val_acc"]),
        "layers": {
            lay: {m: mean(lambda r, lay=lay, m=m: r["layers"][lay][m]) for m in metrics}
            for lay, metrics in reps[0]["layers"].items()
        },
        "fourier": (
            {
                **{m: mean(lambda r, m=m: r["fourier"][m]) for m in fourier},
                "basis": reps[0]["fourier"].get("basis", "additive"),
            }
            if fourier
            else None
        ),
        "undefined": undefined,
        "not_averaged": not_averaged,
        "per_seed": {
            str(seed): {k: r[k] for k in ("steps", "val_acc", "layers", "fourier")}
            for seed, r in zip(seeds, reps, strict=True)
        },
    }


def _pca_seed(reps: list[dict[str, Any]], mem: list[Any], gen: list[Any]) -> int:
    """Which seed (index) the PCA panels show: the first that memorised, reached 99% validation
    accuracy and has a snapshot at or after that step, so that they can show grokking; the
    first seed if none has."""
    for i, (rep, m, g) in enumerate(zip(reps, mem, gen, strict=True)):
        if m is not None and g is not None and any(p["step"] >= g for p in rep["pca"]):
            return i
    return 0


def _pca_panels(rep: dict[str, Any], mem: int | None, gen: int | None) -> dict[str, Any]:
    """Three PCA panels of one seed (``rep``: its :func:`analyse_run` output), each with the
    validation accuracy of its snapshot (``val_acc``).

    ``phases_of_grokking`` when the seed memorised (``mem``), reached 99% validation accuracy
    (``gen``) and has a snapshot at or after ``gen``: before (the first snapshot), during (the
    one nearest the middle of ``mem``..``gen``), after (the last snapshot at or after ``gen``
    whose validation accuracy is still 99%, else the first one at or after ``gen``: validation
    accuracy can fall again before a run ends). Otherwise its first, middle and last snapshots.
    """
    from smollab.train.grokking import ACC_BAR

    pcs = rep["pca"]
    if not pcs:
        return {"phases_of_grokking": False, "panels": []}
    steps = [p["step"] for p in pcs]
    val = rep.get("val_acc") or [None] * len(pcs)
    after = [i for i, s in enumerate(steps) if gen is not None and s >= gen]
    phased = mem is not None and gen is not None and bool(after)
    if phased:
        assert mem is not None and gen is not None
        mid = (mem + gen) / 2
        kept = [i for i in after if val[i] is not None and val[i] >= ACC_BAR]
        last = kept[-1] if kept else after[0]
    else:
        mid = steps[len(steps) // 2]
        last = len(pcs) - 1
    during = min(range(len(steps)), key=lambda i: abs(steps[i] - mid))
    picks = [("before", 0), ("during", during), ("after", last)]
    return {
        "phases_of_grokking": phased,
        "panels": [{"phase": name, **pcs[i], "val_acc": val[i]} for name, i in picks],
    }


def aggregate(spec: Any, records: list[dict[str, Any]], run_dirs: dict[str, Path], session: str):
    from smollab.models import SMALL_MODELS
    from smollab.tasks import build_task, validate_task_config
    from smollab.tasks.modular import ModularTask
    from smollab.train.grokking import GrokTrainSpec

    out: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "grok",
        "session": session,
        "study": spec.study.model_dump(mode="json"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": {},
        "models": {m.name: {"source": m.source, "config": m.config} for m in spec.models},
        "conditions": {},
        "curves": {},
        "representations": {},
        "pca": {},
        "summary": [],
        "notes": [],
    }
    for t in spec.tasks:
        task = build_task(validate_task_config(t))
        # check_spec accepted only grokking tasks for a grok study
        assert isinstance(task, ModularTask)
        split = task.split(0)  # every seed's split has these sizes (only which pairs differs)
        out["tasks"][task.name] = {
            "task": task.config.task,
            "p": task.config.p if task.operation != "permutation" else None,
            "train_fraction": task.config.train_fraction,
            "n_pairs": task.n_pairs,
            "n_train": len(split.train),
            "n_val": len(split.val),
            "n_classes": task.n_classes,
        }
    for cond in spec.conditions:
        model = spec.model_for(cond)
        cfg_cls, _ = SMALL_MODELS.get(model.source.split(":", 1)[-1])
        n_layer = getattr(cfg_cls(**model.config), "n_layer", None)
        block: dict[str, Any] = {
            "model": model.name,
            "config": GrokTrainSpec(**(cond.config or {})).model_dump(mode="json"),
            "seeds": spec.seeds_for(cond),
            "tasks": {},
        }
        for tname in out["tasks"]:
            recs = sorted(
                (r for r in records if r["condition"] == cond.name and r["task"] == tname),
                key=lambda r: r["seed"],
            )
            if not recs:
                continue
            tr = [r["train"] for r in recs]
            g = describe_steps([s["step_val_acc_99"] for s in tr])
            block["tasks"][tname] = {
                "runs": [
                    {
                        "seed": r["seed"],
                        "hash": r["hash"],
                        **{
                            k: r["train"][k]
                            for k in (
                                "step_val_acc_99",
                                "memorisation_step",
                                "grokking_gap",
                                "final_val_acc",
                                "final_train_acc",
                                "steps",
                                "ms_per_step",
                            )
                        },
                        # runs recorded before the field existed have no final weight norm
                        "final_weight_norm": r["train"].get("final_weight_norm"),
                    }
                    for r in recs
                ],
                "step_val_acc_99": g,
                "memorisation_step": describe_steps([s["memorisation_step"] for s in tr]),
                "grokking_gap": describe_steps([s["grokking_gap"] for s in tr]),
                "final_val_acc": describe_seeds([s["final_val_acc"] for s in tr]),
                "final_weight_norm": (
                    describe_seeds([s["final_weight_norm"] for s in tr])
                    if all(s.get("final_weight_norm") is not None for s in tr)
                    else None
                ),
                "grokked": f"{g['n_reached']}/{g['n']}",
            }
            dirs = [run_dirs[r["hash"]] for r in recs]
            out["curves"].setdefault(cond.name, {})[tname] = {
                str(r["seed"]): _curve(d) for r, d in zip(recs, dirs, strict=True)
            }
            paths = [d / "representations.json" for d in dirs]
            # representation metrics only when every seed of this task has them
            reps = [read_json(p) for p in paths] if all(p.exists() for p in paths) else []
            agg = _representations(reps, [r["seed"] for r in recs])
            if agg is not None:
                out["representations"].setdefault(cond.name, {})[tname] = agg
                mem = block["tasks"][tname]["memorisation_step"]["values"]
                i = _pca_seed(reps, mem, g["values"])
                # before/during/after are phases of grokking only when this seed both
                # memorised and generalised; otherwise the first, middle and last snapshots
                out["pca"].setdefault(cond.name, {})[tname] = {
                    "seed": recs[i]["seed"],
                    **_pca_panels(reps[i], mem[i], g["values"][i]),
                }
                # one block: the "first" and "last" layers are the same module
                out["representations"][cond.name][tname]["first_is_last"] = n_layer == 1
            med = "not reached" if g["median"] is None else f"{g['median']:.0f}"
            out["summary"].append(
                f"{cond.name} / {tname}: 99% val acc in {g['n_reached']}/{g['n']} seeds, "
                f"median step {med}"
            )
        out["conditions"][cond.name] = block
    out["reference"] = spec.study.reference or spec.conditions[0].name
    out["comparisons"] = _comparisons(out, out["reference"])
    out["alpha"] = ALPHA
    out["notes"] = _notes(out)
    return out


def _last_steps(cond: dict[str, Any], task: dict[str, Any]) -> tuple[list[Any], list[float]]:
    """Each seed's id and last step (its run's last evaluation), in the order of its
    ``step_val_acc_99`` values; a seed that never reached 99% took longer than its last step."""
    n = task["step_val_acc_99"]["n"]
    runs = task.get("runs") or []
    steps = cond.get("config", {}).get("steps")
    if len(runs) == n:
        return [r["seed"] for r in runs], [r.get("steps", steps) for r in runs]
    seeds = cond.get("seeds") or list(range(n))
    return list(seeds)[:n], [steps] * n


def _seed_list(seeds: list[Any]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _comparisons(
    out: dict[str, Any], reference: str | None = None, level: float = 0.95
) -> list[dict[str, Any]]:
    """Each condition's ``step_val_acc_99`` against the reference condition's (default: the
    first), task by task, in the study's condition order.

    ``shift`` is the Hodges-Lehmann estimate of (condition - reference) steps with its
    distribution-free interval (unbounded ends are ``None``); ``p_value`` is the Mann-Whitney
    test's, ``p_holm`` that Holm-adjusted over every comparison computed, ``p_min`` the smallest
    p-value the seed counts allow (:func:`~smollab.analysis.stats.mann_whitney_min_p`);
    ``verdict`` is :func:`verdict` with fewer steps better, which needs the interval to exclude
    0 and ``p_holm <= ALPHA``.

    A seed that never reached 99% is right-censored: it took longer than its run's last step
    (``censored``: condition, seed and that step). When every censored seed's last step is at
    least every step at which a seed of either condition reached 99%, it ranks after all of
    them (censored seeds tie with each other) and the test is computed
    (:func:`~smollab.analysis.stats.censored_ranks`); the shift is then only bounded
    (:func:`~smollab.analysis.stats.censored_shift_interval`: ``estimate`` ``None`` where the
    censoring leaves it undetermined, open ends ``None``). Otherwise the pair is ``"not
    computed"`` and ``reason`` says which seed stopped before which reached step.
    """
    names = list(out["conditions"])
    if not names:
        return []
    ref = reference if reference is not None else names[0]
    comps: list[dict[str, Any]] = []
    for cname in (n for n in names if n != ref):
        for tname, t in out["conditions"][cname]["tasks"].items():
            r = out["conditions"][ref]["tasks"].get(tname)
            if r is None:
                continue
            a, b = t["step_val_acc_99"], r["step_val_acc_99"]
            a_seeds, a_last = _last_steps(out["conditions"][cname], t)
            b_seeds, b_last = _last_steps(out["conditions"][ref], r)
            comp: dict[str, Any] = {
                "condition": cname,
                "reference": ref,
                "task": tname,
                "metric": "step_val_acc_99",
                "n": a["n"],
                "n_reference": b["n"],
                "p_min": mann_whitney_min_p(a["n"], b["n"]),
                "censored": [
                    {"condition": c, "seed": seed, "after_step": last}
                    for c, g, seeds, lasts in (
                        (cname, a, a_seeds, a_last),
                        (ref, b, b_seeds, b_last),
                    )
                    for v, seed, last in zip(g["values"], seeds, lasts, strict=True)
                    if v is None
                ],
                "median_ratio": None,
                "shift": None,
                "verdict": "not computed",
                "reason": None,
            }
            ranked = censored_ranks(a["values"], b["values"], a_last, b_last)
            if ranked is None:
                reached = [
                    {"condition": c, "seed": seed, "step": v}
                    for c, g, seeds in ((cname, a, a_seeds), (ref, b, b_seeds))
                    for v, seed in zip(g["values"], seeds, strict=True)
                    if v is not None
                ]
                comp["reason"] = _unranked_reason(comp["censored"], reached)
                comps.append(comp)
                continue
            if comp["censored"]:
                iv = censored_shift_interval(a["values"], b["values"], a_last, b_last, level)
            else:
                iv = shift_interval(a["values"], b["values"], level=level)
            if a["median"] is not None and b["median"]:
                comp["median_ratio"] = a["median"] / b["median"]
            shift = iv.to_dict()
            comp["shift"] = {
                **shift,
                **{
                    k: v if math.isfinite(v) else None
                    for k, v in shift.items()
                    if k in ("estimate", "low", "high")
                },
            }
            comp["p_value"] = mann_whitney_p(*ranked)
            reasons = []
            if comp["censored"]:
                reasons.append(_censored_reason(comp["censored"], iv))
            if comp["p_min"] > 1 - level:
                reasons.append(
                    f"{a['n']} against {b['n']} seeds cannot bound a {level:.0%} rank-based "
                    f"interval (the smallest two-sided p-value they can give is "
                    f"{comp['p_min']:.2f}); 4 or more seeds per condition can"
                )
            comp["reason"] = "; ".join(reasons) or None
            comps.append(comp)
    # a shift is detected when its interval excludes 0 and the Mann-Whitney test, Holm-adjusted
    # over every comparison the study could compute, rejects at ALPHA (as the LM study does)
    tested = [c for c in comps if "p_value" in c]
    for c, p in zip(tested, holm_bonferroni([c["p_value"] for c in tested]), strict=True):
        c["p_holm"] = p
        iv = Interval(
            math.nan if c["shift"]["estimate"] is None else c["shift"]["estimate"],
            -math.inf if c["shift"]["low"] is None else c["shift"]["low"],
            math.inf if c["shift"]["high"] is None else c["shift"]["high"],
            c["shift"]["level"],
            c["shift"]["method"],
        )
        c["verdict"] = verdict(iv, higher_is_better=False, p_value=p, alpha=ALPHA)
    return comps


def _censored_reason(censored: list[dict[str, Any]], iv: Interval) -> str:
    """How the censored seeds of a computed comparison entered it."""
    by: dict[tuple[str, Any], list[Any]] = {}
    for c in censored:
        by.setdefault((c["condition"], c["after_step"]), []).append(c["seed"])
    who = ", ".join(
        f"{cond} {_seed_list(seeds)} (after step {step:.0f})" for (cond, step), seeds in by.items()
    )
    if len(censored) == 1:
        how, their = "it ranks after every seed that reached it", "its"
    else:
        how, their = "they rank after every seed that reached it and tie with each other", "their"
    shift = (
        f"the shift estimate depends on {their} unknown steps and is not given"
        if not math.isfinite(iv.estimate)
        else f"the shift estimate does not depend on {their} unknown steps"
    )
    return (
        f"never reached 99% (censored): {who}; {how}; {shift}, and its interval holds for any "
        f"steps after {their} last"
    )


def _unranked_reason(censored: list[dict[str, Any]], reached: list[dict[str, Any]]) -> str:
    """Why the seeds cannot be ranked: a censored seed whose run ended before a step at which
    another seed reached 99% may have reached it before or after that seed."""
    short = min(censored, key=lambda c: c["after_step"])
    late = max(reached, key=lambda r: r["step"])
    return (
        f"{short['condition']} seed {short['seed']} stopped at step {short['after_step']:.0f} "
        f"without reaching 99% validation accuracy, before step {late['step']:.0f}, at which "
        f"{late['condition']} seed {late['seed']} reached it: which of the two was later is "
        "unknown, so the seeds cannot be ranked and neither the test nor the shift is computed"
    )


def _notes(out: dict[str, Any]) -> list[str]:
    from smollab.train.grokking import ACC_BAR

    notes = []
    for cname, c in out["conditions"].items():
        for tname, t in c["tasks"].items():
            g = t["step_val_acc_99"]
            if g["n_reached"] < g["n"]:
                notes.append(
                    f"{cname} / {tname}: {g['n'] - g['n_reached']} of {g['n']} seeds never reached "
                    "99% validation accuracy within the run; they count as 'not reached', not as "
                    "the run length."
                )
            fell = [
                r
                for r in t["runs"]
                if r.get("step_val_acc_99") is not None
                and r.get("final_val_acc") is not None
                and r["final_val_acc"] < ACC_BAR
            ]
            if fell:
                ends = ", ".join(f"seed {r['seed']} {100 * r['final_val_acc']:.1f}%" for r in fell)
                notes.append(
                    f"{cname} / {tname}: {len(fell)} of {g['n_reached']} seeds that reached 99% "
                    f"validation accuracy ended the run below it ({ends}): they count as "
                    "grokked at their first crossing (step_val_acc_99), which did not last."
                )
            if any(r["steps"] < c["config"]["steps"] for r in t["runs"]):
                notes.append(
                    f"{cname} / {tname}: runs stopped {c['config']['stop_after_99']} steps after "
                    "reaching 99% (stop_after_99); final metrics are at that step."
                )
    for cname, by_task in out.get("representations", {}).items():
        for tname, rep in by_task.items():
            notes += _representation_notes(f"{cname} / {tname}", rep)
    return notes


def _representation_notes(where: str, rep: dict[str, Any]) -> list[str]:
    """What :func:`_representations` averaged and what it could not (undefined metrics)."""
    notes = []
    late = {seed: v for seed, v in rep.get("not_averaged", {}).items() if v}
    if late:
        steps = rep["steps"]
        upto = f", up to step {steps[-1]}" if steps else ""
        listed = "; ".join(f"seed {seed}: {', '.join(map(str, v))}" for seed, v in late.items())
        notes.append(
            f"{where}: representation metrics are averaged over seeds only at the {len(steps)} "
            f"step{'' if len(steps) == 1 else 's'} every seed snapshotted{upto}; the other "
            "snapshots are per seed only "
            f"(per_seed), never averaged with another step ({listed})."
        )
    groups: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for path, u in rep.get("undefined", {}).items():
        groups.setdefault((u["reason"], tuple(u["steps"])), []).append(path)
    for (reason, steps), paths in groups.items():
        notes.append(
            f"{where}: {', '.join(paths)} undefined (None, left out of the means and figures) at "
            f"{len(steps)} snapshot step(s): {reason}."
        )
    return notes


def critique(results: dict[str, Any]) -> str:
    lines = ["Automated critique (grokking study)", ""]
    for cname, c in results["conditions"].items():
        if len(c["seeds"]) < 3:
            lines.append(
                f"- {cname}: only {len(c['seeds'])} seed(s); seed variance is not well estimated."
            )
        for tname, t in c["tasks"].items():
            if t["memorisation_step"]["n_reached"] < t["memorisation_step"]["n"]:
                lines.append(
                    f"- {cname} / {tname}: the training set was not memorised in every "
                    "seed (train accuracy < 99%): the model or budget may be too small."
                )
    for comp in results.get("comparisons", []):
        if comp["reason"]:
            lines.append(
                f"- {comp['condition']} vs {comp['reference']} on {comp['task']}: "
                f"{comp['verdict']}: {comp['reason']}."
            )
    lines += [f"- {n}" for n in results.get("notes", [])]
    if len(lines) == 2:
        lines.append("- No problems found.")
    return "\n".join(lines) + "\n"
