"""The report's view of ``results.json``: one context rendered by every template.

Numbers enter the context only as :class:`Num` objects, each carrying the dotted path of its
value in ``results.json`` (``conditions.finetune_full.tasks.mul.strata.2x2.exact_match.estimate``,
``comparisons.3.p_holm``; list lengths get a ``.length`` suffix) and the formatter that prints it.
Templates never format numbers themselves, so every printed number can be traced back to the
results, and the paper renderer records exactly the numbers it prints (``paper/numbers.json``).

Conventions: strata are listed easiest first; a condition whose ``kind`` is ``"baseline"`` is not
trained; a comparison's ``verdict`` (from :func:`smollab.analysis.stats.verdict`) is the only thing
that decides whether a difference is called an improvement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smollab.errors import DataError
from smollab.io import read_json
from smollab.report.fmt import FORMATTERS, NA, is_missing, score_label, score_title

SCHEMA = "smollab.results/1"

IMPROVEMENT = "improvement"
NO_DIFFERENCE = "no detectable difference"
DEGRADATION = "degradation"

METRIC_LABELS = {"exact_match": "Exact match", "digit_accuracy": "Digit accuracy"}


@dataclass(frozen=True)
class Num:
    """A number from the results: its dotted path, raw value and how it is printed."""

    key: str
    value: Any
    kind: str = "num"

    @property
    def text(self) -> str:
        return FORMATTERS[self.kind](self.value)

    @property
    def raw(self) -> float | int | None:
        """The value as JSON can hold it (``None`` for missing)."""
        if is_missing(self.value):
            return None
        return self.value if isinstance(self.value, int) else float(self.value)

    def __str__(self) -> str:
        return self.text


class Ident(str):
    """A name from the results (condition, stratum, task, model): printed as code, never parsed
    as a number (``2x2`` is a name)."""


class Phrase(tuple):
    """Text made of literal strings and :class:`Num` parts, e.g. ``63.5% [56.2, 70.1]``."""

    def __str__(self) -> str:
        return "".join(str(p) for p in self)

    def nums(self) -> list[Num]:
        return [p for p in self if isinstance(p, Num)]


def phrase(*parts: Any) -> Phrase:
    """A :class:`Phrase` of ``parts``, flattening nested phrases."""
    flat: list[Any] = []
    for p in parts:
        flat.extend(p if isinstance(p, Phrase) else [p])
    return Phrase(flat)


def _metric_words(metric: str, task_spec: dict[str, Any]) -> dict[str, str]:
    """A metric's ``label``, at the head of a column ("Exact match", "Digit accuracy"), and its
    ``name`` mid-sentence ("scored by exact match and digit accuracy"); a benchmark's own metric
    keeps its spelling ("acc", "acc-norm") in both."""
    if metric == "exact_match":
        return {"label": score_title(task_spec), "name": score_label(task_spec)}
    label = METRIC_LABELS.get(metric)
    if label:
        return {"label": label, "name": label.lower()}
    plain = metric.replace("_", "-")
    return {"label": plain, "name": plain}


def listing(items: list[Any], last: str = "and") -> Phrase:
    """``a``, ``a and b``, ``a, b and c`` (keeps identifiers and numbers as parts)."""
    items = list(items)
    parts: list[Any] = []
    for i, item in enumerate(items):
        if i:
            parts.append(f" {last} " if i == len(items) - 1 else ", ")
        parts.append(item)
    return phrase(*parts)


def joined(items: list[Any], sep: str = ", ") -> Phrase:
    """``a, b, c`` (keeps identifiers and numbers as parts)."""
    parts: list[Any] = []
    for i, item in enumerate(items):
        parts.extend([sep, item] if i else [item])
    return phrase(*parts)


def counted(num: Num, noun: str) -> Phrase:
    """``3 seeds``, ``1 seed`` (the number stays a :class:`Num`)."""
    return phrase(num, " ", noun if num.value == 1 else noun + "s")


def interval(
    key: str,
    iv: dict[str, Any] | None,
    kind: str = "pct",
    bound_kind: str = "pct_bare",
    open_end: str | None = None,
) -> Phrase:
    """``63.5% [56.2, 70.1]`` (``pct``) or ``+55.0 pp [48.3, 62.0]`` (``pp``); ``n/a`` if missing.

    ``key`` is the interval's path; its numbers are ``key.estimate``, ``key.low``, ``key.high``,
    the bounds printed with ``bound_kind``. A missing bound drops the brackets, unless
    ``open_end`` is given: then it prints in the bound's place (``-175 [unbounded, +450]``).
    """
    iv = iv or {}
    est = Num(f"{key}.estimate", iv.get("estimate"), kind)
    if is_missing(est.value):
        return Phrase((NA,))
    bounds: list[Any] = []
    for side in ("low", "high"):
        v = iv.get(side)
        if is_missing(v):
            if open_end is None:
                return Phrase((est,))
            bounds.append(open_end)
        else:
            bounds.append(Num(f"{key}.{side}", v, bound_kind))
    return Phrase((est, " [", bounds[0], ", ", bounds[1], "]"))


def seed_summary(
    key: str, desc: dict[str, Any] | None, kind: str, std_kind: str | None = None
) -> Phrase:
    """``mean ± std`` of a :func:`describe_seeds` dict; just the mean for one seed. The std is
    formatted as ``std_kind`` (default: as the mean)."""
    desc = desc or {}
    mean = Num(f"{key}.mean", desc.get("mean"), kind)
    if is_missing(mean.value):
        return Phrase((NA,))
    if is_missing(desc.get("std")):
        return Phrase((mean,))
    return Phrase((mean, " ± ", Num(f"{key}.std", desc.get("std"), std_kind or kind)))


def eval_folder(folder: Path) -> str | None:
    """Why ``folder`` has no report to build, when it is a ``smollab eval`` output folder."""
    if (folder / "results.json").is_file() and (folder / "summary.md").is_file():
        return (
            f"{folder} is a `smollab eval` folder, not a study session: its results.json and "
            "summary.md are its report (reports and papers are built for studies)."
        )
    return None


def load_results(path: Path) -> dict[str, Any]:
    """Read and sanity-check ``results.json`` (raises :class:`DataError` naming the problem)."""
    if not path.is_file():
        if (eval_note := eval_folder(path.parent.parent)) is not None:
            raise DataError(eval_note)
        raise DataError(f"No results file at {path}.", hint="Run the study (or analysis) first.")
    results = read_json(path)  # a cut file raises CorruptFile (a DataError) naming it
    if not isinstance(results, dict) or results.get("schema") != SCHEMA:
        found = results.get("schema") if isinstance(results, dict) else type(results).__name__
        raise DataError(f"{path} has schema {found!r}; the report reads {SCHEMA!r}.")
    for field in ("tasks", "conditions"):
        if not isinstance(results.get(field), dict) or not results[field]:
            raise DataError(f"{path} has no {field!r}; nothing to report.")
    check_numbers(results, path)
    return results


#: fields of a results file that hold a number (or null where a value is undefined)
NUMBER_FIELDS = frozenset(
    {"estimate", "low", "high", "level", "p_value", "mean", "median", "std", "sem"}
)


def check_numbers(results: dict[str, Any], path: Path) -> None:
    """Refuse a results file whose statistics are not numbers or lists of numbers (a hand edit,
    or another tool's file): the report would print them as "n/a" and say nothing was wrong.
    Raises DataError naming the first such field by its key path."""

    def number(v: Any) -> bool:
        return v is None or (isinstance(v, int | float) and not isinstance(v, bool))

    def walk(x: Any, key: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                at = f"{key}.{k}" if key else str(k)
                # a series over steps (the grokking representations) is a list of numbers
                if k in NUMBER_FIELDS and not (
                    number(v) or (isinstance(v, list) and all(map(number, v)))
                ):
                    raise DataError(
                        f"{path}: field {at} is {v!r}, not a number. The report prints only "
                        "numbers a run logged; restore the file from the study (re-run its "
                        "command: finished runs are reused and results.json is rewritten)."
                    )
                walk(v, at)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{key}.{i}")

    walk(results, "")


# --------------------------------------------------------------------------- building blocks


def _is_trained(cond: dict[str, Any]) -> bool:
    return cond.get("kind") != "baseline"


def _stratum_block(cond: dict[str, Any], task: str, stratum: str) -> tuple[str, dict[str, Any]]:
    """Key prefix and entry of one condition's results on a stratum (or ``overall``)."""
    tres = (cond.get("tasks") or {}).get(task) or {}
    if stratum == "overall":
        return "overall", tres.get("overall") or {}
    return f"strata.{stratum}", (tres.get("strata") or {}).get(stratum) or {}


def _first_level(results: dict[str, Any]) -> Num:
    """The confidence level of the first interval found (all intervals share one level)."""
    for name, cond in results["conditions"].items():
        for task, tres in (cond.get("tasks") or {}).items():
            for stratum, entry in (tres.get("strata") or {}).items():
                level = (entry.get("exact_match") or {}).get("level")
                if not is_missing(level):
                    key = f"conditions.{name}.tasks.{task}.strata.{stratum}.exact_match.level"
                    return Num(key, level, "pct0")
    return Num("level", None, "pct0")


def _condition(name: str, cond: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    key = f"conditions.{name}"
    seeds = cond.get("seeds") or []
    train = cond.get("train") or {}
    train_items = []
    for k, v in train.items():
        if v is None or (k.startswith("lora_") and train.get("method") != "lora"):
            continue  # unset, or the LoRA settings of a full fine-tune (they did nothing)
        # lists and tables (betas, weights) are shown element by element, each traceable
        parts = (
            v.items()
            if isinstance(v, dict)
            else ((str(i), x) for i, x in enumerate(v))
            if isinstance(v, list | tuple)
            else [(None, v)]
        )
        for sub, x in parts:
            label = k if sub is None else f"{k}.{sub}"
            shown = (
                Num(f"{key}.train.{label}", x, "short") if not isinstance(x, str | bool) else str(x)
            )
            train_items.append({"name": label, "value": shown})
    n_seeds = Num(f"{key}.seeds.length", len(seeds), "count")
    seed_nums = [Num(f"{key}.seeds.{i}", s, "count") for i, s in enumerate(seeds)]
    return {
        "name": Ident(name),
        "kind": Ident(cond.get("kind") or "?"),
        "model": Ident(cond.get("model") or "?"),
        "format": Ident(cond.get("format") or "-"),
        "method": Ident(cond.get("method") or "-"),
        "trained": _is_trained(cond),
        "n_seeds": n_seeds,
        "seeds": seed_nums,
        # "1 (0)", "3 (0, 1, 2)": a bare "0" would read as zero seeds
        "seeds_label": phrase(n_seeds, " (", joined(seed_nums), ")"),
        "runs": list(cond.get("runs") or []),
        "train": train_items,
        "train_main": {
            k: Num(f"{key}.train.{k}", train.get(k), "short")
            for k in ("steps", "lr", "batch_size", "seq_len")
        },
    }


def _comparison(i: int, comp: dict[str, Any], field: str = "comparisons") -> dict[str, Any]:
    """One entry of ``comparisons`` (against a baseline) or ``vs_reference`` (``field``); its
    ``baseline`` is what the condition is set against either way."""
    key = f"{field}.{i}"
    return {
        "task": Ident(comp.get("task") or "?"),
        "stratum": Ident(comp.get("stratum") or "?"),
        "condition": Ident(comp.get("condition") or "?"),
        "baseline": Ident(comp.get("baseline") or comp.get("reference") or "?"),
        "diff": interval(f"{key}.diff", comp.get("diff"), "pp"),
        "p_max": Num(f"{key}.p_max", comp.get("p_max"), "p"),
        "p_holm": Num(f"{key}.p_holm", comp.get("p_holm"), "p"),
        "n_tests": Num(f"{key}.mcnemar.length", len(comp.get("mcnemar") or []), "count"),
        "verdict": comp.get("verdict") or NO_DIFFERENCE,
    }


def _em(results: dict[str, Any], cond: str, task: str, stratum: str) -> tuple[Phrase, float]:
    """A condition's exact-match phrase on a stratum and its raw estimate (nan if missing)."""
    where, entry = _stratum_block(results["conditions"][cond], task, stratum)
    key = f"conditions.{cond}.tasks.{task}.{where}.exact_match"
    iv = entry.get("exact_match")
    est: Any = (iv or {}).get("estimate")  # a JSON number, None or missing
    return interval(key, iv), float("nan") if is_missing(est) else float(est)


def _headline(
    results: dict[str, Any], task: str, strata: list[str], comps: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The hardest stratum on which some trained condition improved detectably, and by how much.

    The best condition there is the improving one with the highest exact match. Returns None when
    no comparison on ``task`` has the verdict ``improvement``.
    """
    by_stratum: dict[str, list[dict[str, Any]]] = {}
    for c in comps:
        if c["task"] == task and c["verdict"] == IMPROVEMENT:
            by_stratum.setdefault(c["stratum"], []).append(c)
    for stratum in reversed(strata):
        if stratum not in by_stratum:
            continue
        best = max(
            by_stratum[stratum], key=lambda c: _em(results, c["condition"], task, stratum)[1]
        )
        harder = [
            {"stratum": c["stratum"], "verdict": c["verdict"]}
            for c in comps
            if c["task"] == task
            and c["condition"] == best["condition"]
            and c["stratum"] in strata[strata.index(stratum) + 1 :]
        ]
        return {
            "stratum": Ident(stratum),
            "baseline": best["baseline"],
            "baseline_em": _em(results, best["baseline"], task, stratum)[0],
            "condition": best["condition"],
            "condition_em": _em(results, best["condition"], task, stratum)[0],
            "diff": best["diff"],
            "harder": harder,
        }
    return None


def _findings(task: str, comps: list[dict[str, Any]], trained: list[str]) -> list[dict[str, Any]]:
    """Per trained condition compared on ``task``: its strata grouped by verdict (``overall``
    excluded, unless it is the only comparison: a task with one stratum is compared overall
    only). A condition with no comparison (a study without a baseline) has no entry."""
    out = []
    for cond in trained:
        groups: dict[str, list[str]] = {IMPROVEMENT: [], NO_DIFFERENCE: [], DEGRADATION: []}
        mine = [c for c in comps if c["task"] == task and c["condition"] == cond]
        strata = [c for c in mine if c["stratum"] != "overall"] or mine
        if not strata:  # compared with nothing (no baseline): no finding, not an empty one
            continue
        for c in strata:
            groups.setdefault(c["verdict"], []).append(c["stratum"])
        out.append(
            {
                "condition": Ident(cond),
                "improvement": groups[IMPROVEMENT],
                "no_difference": groups[NO_DIFFERENCE],
                "degradation": groups[DEGRADATION],
            }
        )
    return out


def _task(
    name: str,
    spec: dict[str, Any],
    results: dict[str, Any],
    comps: list[dict[str, Any]],
    refs: list[dict[str, Any]],
) -> dict[str, Any]:
    strata = list(spec.get("strata") or [])
    by_difficulty = bool(spec.get("strata_by_difficulty", True))
    n_items = spec.get("n_items") or {}
    metrics = list(spec.get("metrics") or ["exact_match"])
    conds = list(results["conditions"])
    rows = []
    # one stratum: the overall row holds the same items (and the comparisons are keyed overall)
    for stratum in [*strata, "overall"] if len(strata) != 1 else ["overall"]:
        cells = []
        for cond in conds:
            where, entry = _stratum_block(results["conditions"][cond], name, stratum)
            key = f"conditions.{cond}.tasks.{name}.{where}"
            cells.append(
                {
                    "condition": Ident(cond),
                    "metrics": [interval(f"{key}.{m}", entry.get(m)) for m in metrics],
                }
            )
        rows.append({"stratum": Ident(stratum), "is_overall": stratum == "overall", "cells": cells})
    sizes = [Num(f"tasks.{name}.n_items.{s}", n_items.get(s), "count") for s in strata]
    known = [n for n in sizes if not is_missing(n.value)]
    trained = [c for c in conds if _is_trained(results["conditions"][c])]
    return {
        "name": Ident(name),
        "task_id": Ident(spec.get("task") or name),
        "strata": [Ident(s) for s in strata],
        "n_items": [{"stratum": Ident(s), "n": n} for s, n in zip(strata, sizes, strict=True)],
        "n_items_min": min(known, key=lambda n: n.value) if known else None,
        "n_items_max": max(known, key=lambda n: n.value) if known else None,
        "score": score_label(spec),
        "score_title": score_title(spec),
        "by_difficulty": by_difficulty,
        "chance": None
        if spec.get("chance") is None
        else Num(f"tasks.{name}.chance", spec["chance"], "pct0"),
        "metrics": [{"key": m, **_metric_words(m, spec)} for m in metrics],
        "error_types": list(spec.get("error_types") or []),
        "rows": rows,
        "comparisons": [c for c in comps if c["task"] == name],
        "findings": _findings(name, comps, trained),
        "vs_reference": [c for c in refs if c["task"] == name],
        "ref_findings": _findings(
            name, refs, [c for c in trained if c != results.get("reference")]
        ),
        "ref_overall": [c for c in refs if c["task"] == name and c["stratum"] == "overall"],
        # strata that are categories, not steps of difficulty, have no "hardest": the headline
        # is then the overall comparison
        "headline": _headline(results, name, strata if by_difficulty else ["overall"], comps),
        "figures": {"accuracy": None, "errors": None},  # stems, set once drawn
        "overall": [
            {"condition": Ident(c), "em": _em(results, c, name, "overall")[0]} for c in conds
        ],
    }


def _training(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, cond in results["conditions"].items():
        summary = cond.get("train_summary")
        if not _is_trained(cond) or not summary:
            continue
        key = f"conditions.{name}.train_summary"
        steps = (cond.get("train") or {}).get("steps")
        n_seeds = (summary.get("final_loss") or {}).get("n")
        rows.append(
            {
                "condition": Ident(name),
                "steps": Num(f"conditions.{name}.train.steps", steps, "short"),
                "n_seeds": Num(f"{key}.final_loss.n", n_seeds, "count"),
                "final_loss": seed_summary(f"{key}.final_loss", summary.get("final_loss"), "num"),
                "wall_s": seed_summary(f"{key}.wall_s", summary.get("wall_s"), "seconds"),
                "tokens_per_s": seed_summary(
                    f"{key}.tokens_per_s", summary.get("tokens_per_s"), "rate"
                ),
            }
        )
    return rows


def _limitations(ctx: dict[str, Any]) -> list[Phrase]:
    """Standing caveats, with the numbers that make them concrete (the analysis notes follow)."""
    out = [
        phrase(
            "Models studied: ",
            listing([m["name"] for m in ctx["models"]]),
            ". Conclusions may not transfer to other model sizes or families.",
        ),
        phrase(
            "Seeds per condition: ",
            listing([phrase(c["name"], " ", c["n_seeds"]) for c in ctx["conditions"]]),
            ". Seed-to-seed variation is estimated from few runs.",
        ),
    ]
    for t in ctx["tasks"]:
        if t["n_items_min"] is None:
            continue
        sizes = (
            phrase(t["n_items_max"])
            if t["n_items_min"].value == t["n_items_max"].value
            else phrase("between ", t["n_items_min"], " and ", t["n_items_max"])
        )
        out.append(
            phrase(
                "Task ",
                t["name"],
                " has ",
                sizes,
                " test items per stratum; intervals on the smallest strata are the widest.",
            )
        )
    out.append(
        phrase(
            "A difference is called an improvement only when its whole ",
            ctx["level"],
            " interval lies above zero and McNemar's test (the largest p over pairs of runs, "
            "Holm-adjusted over the study's comparisons) rejects at ",
            ctx["alpha"],
            ": with few items that change, the bootstrap interval alone is too narrow.",
        )
    )
    two = [c for c in ctx["conditions"] if c["n_seeds"].value == 2]
    if two:
        out.append(
            phrase(
                listing([c["name"] for c in two]),
                " ran ",
                counted(two[0]["n_seeds"], "seed"),
                ": a t interval over two seeds is very wide when they disagree and shrinks to "
                "the item bootstrap's when they happen to agree, so an overall interval can be "
                "narrower than its strata's; read these intervals with care.",
            )
        )
    if any(t["score"] == "exact match" for t in ctx["tasks"]):
        out.append(
            phrase(
                "Exact match scores only the final answer; digit accuracy and the error "
                "taxonomy give a partial view of near misses."
            )
        )
    return out


def build_context(results: dict[str, Any]) -> dict[str, Any]:
    """The template context (see the module docstring); the builder adds figures and files."""
    study = results.get("study") or {}
    raw_comps = results.get("comparisons") or []
    comps = [_comparison(i, c) for i, c in enumerate(raw_comps)]
    raw_refs = results.get("vs_reference") or []
    refs = [_comparison(i, c, "vs_reference") for i, c in enumerate(raw_refs)]
    reference = results.get("reference")
    conditions = [_condition(n, c, results) for n, c in results["conditions"].items()]
    trained = [c for c in conditions if c["trained"]]
    baselines = [c for c in conditions if not c["trained"]]
    models = [
        {
            "name": Ident(name),
            "source": Ident(m.get("source") or name),
            "model_type": Ident(m.get("model_type") or "?"),
            "n_params": Num(f"models.{name}.n_params", m.get("n_params"), "params"),
            "from_scratch": str(m.get("source") or "").startswith("scratch:"),
        }
        for name, m in (results.get("models") or {}).items()
    ]
    title = study.get("title") or study.get("name") or results.get("session") or "smollab study"
    ctx = {
        "title": title,
        "question": study.get("question") or "",
        "session": results.get("session") or "",
        "created": results.get("created") or "",
        "level": _first_level(results),
        "alpha": Num("alpha", results.get("alpha", 0.05), "short"),
        "models": models,
        # "all", "some" or "none" of the models are random initialisations (scratch:ARCH)
        "from_scratch": (
            "none"
            if not any(m["from_scratch"] for m in models)
            else "all"
            if all(m["from_scratch"] for m in models)
            else "some"
        ),
        "conditions": conditions,
        "trained": trained,
        "trained_desc": [
            phrase(c["name"], " (", counted(c["n_seeds"], "seed"), ")") for c in trained
        ],
        "baseline": baselines[0] if baselines else None,
        "tasks": [_task(n, s, results, comps, refs) for n, s in results["tasks"].items()],
        "comparisons": comps,
        "n_comparisons": Num("comparisons.length", len(comps), "count"),
        "reference": Ident(reference) if reference else None,
        "vs_reference": refs,
        # several trained conditions and no reference: they were never compared with each other
        "reference_hint": not reference and len(trained) >= 2,
        "reference_example": Ident(f'reference = "{trained[0]["name"]}"') if trained else None,
        "tests": _tests(results, raw_comps, raw_refs),
        "training": _training(results),
        "notes": [str(n) for n in results.get("notes") or []],
        "interval_methods": _methods(results),
        "diff_methods": sorted(
            {Ident((c.get("diff") or {}).get("method") or "?") for c in [*raw_comps, *raw_refs]}
        ),
        "figures": [],  # set once drawn: [{kind, task, stem, title, caption, png, pdf}]
        "loss_figure": None,
        "files": [],  # set by the builder: [{path, what}]
    }
    ctx["limitations"] = _limitations(ctx)
    return ctx


_SEED_T = {
    "one-sample": "a one-sample t interval over the per-seed differences from the side that "
    "ran once",
    "welch": "Welch's t interval over the two conditions' seed accuracies",
}
_PAIRING = {
    "seed": "each seed of the condition against the same seed of the {role} (the runs share "
    "that seed's initialisation and data order)",
    "all": "each run of the condition against each run of the {role}",
}


def _family_text(raw: list[dict[str, Any]], role: str) -> list[Phrase]:
    """How the comparisons against a ``role`` ("baseline" or "reference") were computed, read
    from what results.json recorded for them (``seed_t``, ``pairing``); nothing for results
    written before those were recorded."""
    kinds = [k for k in ("one-sample", "welch") if any(c.get("seed_t") == k for c in raw)]
    pairings = [k for k in ("seed", "all") if any(c.get("pairing") == k for c in raw)]
    if not raw or (not kinds and not pairings):
        return []
    out = []
    if kinds:
        ts = [
            phrase(
                _SEED_T[k],
                " where ",
                "one side ran once" if k == "one-sample" else "both ran several seeds",
            )
            if len(kinds) > 1
            else phrase(_SEED_T[k])
            for k in kinds
        ]
        out.append(
            phrase(
                f"Each difference from the {role} is the hull of a paired bootstrap over seeds "
                "and items and ",
                listing(ts, "or"),
                ".",
            )
        )
    elif any(c.get("seed_t", "") is None for c in raw):
        out.append(
            phrase(
                f"Each difference from the {role} is a paired bootstrap over items (one run on "
                "each side: there is no spread over seeds to add)."
            )
        )
    if pairings:
        out.append(
            phrase(
                f"McNemar's test against the {role} compares ",
                listing([_PAIRING[k].format(role=role) for k in pairings], "or"),
                " on the same items; the largest p over these pairs is reported.",
            )
        )
    return out


def _tests(
    results: dict[str, Any], base: list[dict[str, Any]], refs: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the comparisons of ``results.json`` computed, stated for the Statistics text: the t
    interval over seeds that widened each family's difference intervals, how McNemar's runs
    were paired, and which forms of McNemar's test ran with the discordant count at which it
    switches form. Results written before these were recorded give only what they hold."""
    text = [*_family_text(base, "baseline"), *_family_text(refs, "reference")]
    forms = {m.get("method") for c in [*base, *refs] for m in c.get("mcnemar") or []}
    below = results.get("mcnemar_exact_below")
    if below is not None and forms:
        ran = (
            "both forms ran here"
            if {"exact", "chi2-cc"} <= forms
            else "only the exact form ran here"
            if forms == {"exact"}
            else "only the chi-square form ran here"
        )
        text.append(
            phrase(
                "McNemar's test is exact (two-sided binomial) when fewer than ",
                Num("mcnemar_exact_below", below, "count"),
                " items differ between the two runs, and a chi-square with continuity "
                f"correction otherwise; {ran}.",
            )
        )
    return {"text": text}


def _methods(results: dict[str, Any]) -> list[Ident]:
    """The interval methods used for exact match across conditions."""
    found = set()
    for cond in results["conditions"].values():
        for tres in (cond.get("tasks") or {}).values():
            for entry in [*(tres.get("strata") or {}).values(), tres.get("overall") or {}]:
                method = (entry.get("exact_match") or {}).get("method")
                if method:
                    found.add(Ident(method))
    return sorted(found)
