"""Automated checks a careful reviewer runs on every iteration's results.

Each check returns lines of plain text; :func:`review` joins them. The checks read only
``results.json`` (and the run folders it names, for generations), so they are deterministic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from smollab.analysis.results import (
    ALPHA,
    against,
    baseline_checks,
    every_comparison,
    no_difference_reason,
)
from smollab.io import read_jsonl


def summarize(results: dict[str, Any]) -> str:
    """Exact match per condition/task/stratum with intervals and the key to reference it.

    Results of another study kind (e.g. grokking) are shown as their top-level JSON, cut short.
    """
    try:
        return _summarize_lm(results)
    except (KeyError, TypeError, AttributeError):
        import json

        text = json.dumps({k: v for k, v in results.items() if k != "curves"}, default=str)
        return text[:6000]


def _summarize_lm(results: dict[str, Any]) -> str:
    lines = []
    for cname, c in results.get("conditions", {}).items():
        lines.append(f"condition {cname} ({c['kind']}, seeds {c['seeds']}):")
        for tname, t in c["tasks"].items():
            for s, b in [*t["strata"].items(), ("overall", t["overall"])]:
                em = b["exact_match"]
                key = f"conditions.{cname}.tasks.{tname}." + (
                    "overall" if s == "overall" else f"strata.{s}"
                )
                lines.append(
                    f"  {tname}/{s}: exact match {em['estimate']:.3f} "
                    f"[{em['low']:.3f}, {em['high']:.3f}] n={b['n_items']} "
                    f"key {key}.exact_match.estimate"
                )
        ts = c.get("train_summary") or {}
        if ts.get("final_loss"):
            lines.append(f"  final loss {ts['final_loss']}")
    for field in ("comparisons", "vs_reference"):
        for i, comp in enumerate(results.get(field) or []):
            d = comp["diff"]
            lines.append(
                f"comparison {comp['condition']} vs {against(comp)} {comp['task']}/"
                f"{comp['stratum']}: diff {d['estimate']:+.3f} [{d['low']:+.3f}, "
                f"{d['high']:+.3f}] McNemar Holm p {comp.get('p_holm', float('nan')):.3g} -> "
                f"{comp['verdict']} (key {field}.{i}.diff.estimate)"
            )
    for n in results.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _seeds_and_intervals(results: dict[str, Any]) -> list[str]:
    out = []
    for cname, c in results["conditions"].items():
        if c["kind"] != "baseline" and len(c["seeds"]) < 3:
            out.append(
                f"{cname}: {len(c['seeds'])} seed(s); use at least 3 to estimate seed variance."
            )
        for tname, t in c["tasks"].items():
            for s, b in t["strata"].items():
                em = b["exact_match"]
                if em.get("low") is None or em.get("high") is None:
                    out.append(f"{cname} {tname}/{s}: no interval.")
                elif b["n_items"] < 30:
                    out.append(
                        f"{cname} {tname}/{s}: only {b['n_items']} items; intervals are wide "
                        f"([{em['low']:.2f}, {em['high']:.2f}])."
                    )
    return out


def _confounds(results: dict[str, Any]) -> list[str]:
    out = []
    conds = results["conditions"]
    base = [c for c in conds.values() if c["kind"] == "baseline"]
    for cname, c in conds.items():
        if c["kind"] == "baseline":
            continue
        if base and all(b["format"] != c["format"] for b in base):
            out.append(
                f"{cname}: prompt format {c['format']!r} differs from the baseline's "
                f"({', '.join(sorted({b['format'] for b in base}))}); part of any difference may "
                "be the format, not the training."
            )
    if not base:
        out.append("No baseline condition: improvements cannot be measured.")
    return out


def _loss_vs_generations(results: dict[str, Any], session_dir: Path) -> list[str]:
    out = []
    for cname, c in results["conditions"].items():
        ts = c.get("train_summary") or {}
        fl = ts.get("final_loss")
        loss = fl.get("mean") if isinstance(fl, dict) else None
        if loss is None or loss > 0.01:
            continue
        ems = [t["overall"]["exact_match"]["estimate"] for t in c["tasks"].values()]
        if ems and max(ems) < 0.5:
            out.append(
                f"{cname}: final training loss {loss:.4f} is near 0 but held-out exact match is "
                f"{max(ems):.2f}: memorisation or a scoring bug; read the generations."
            )
        for h in c.get("runs", [])[:1]:
            for preds in sorted((session_dir / "runs" / h / "predictions").glob("*.jsonl")):
                rows = read_jsonl(preds)[:3]
                sample = "; ".join(
                    f"{r.get('prompt', '')!r} -> {r.get('output', r.get('prediction', ''))!r}"
                    for r in rows
                )
                out.append(f"{cname}: sample generations: {sample}")
    return out


def review(results: dict[str, Any], session_dir: Path) -> list[str]:
    """All automated findings for ``results`` ("No problems found." when none); results of
    another study kind get the checks that apply to them."""
    try:
        return _review_lm(results, session_dir)
    except (KeyError, TypeError, AttributeError):
        return [f"- {n}" for n in results.get("notes", [])] or [
            "These results are not of the language-model study kind; only their notes are "
            "checked automatically."
        ]


def _review_lm(results: dict[str, Any], session_dir: Path) -> list[str]:
    lines = [
        *_seeds_and_intervals(results),
        *baseline_checks(results),
        *_confounds(results),
        *_loss_vs_generations(results, session_dir),
    ]
    for comp in every_comparison(results):
        if comp["verdict"] == "no detectable difference" and comp["stratum"] == "overall":
            lines.append(
                f"{comp['condition']} vs {against(comp)} on {comp['task']}: "
                f"{no_difference_reason(comp, results.get('alpha', ALPHA))} -> no detectable "
                "difference."
            )
    return lines or ["No problems found."]


def constants_from(*texts: str) -> str:
    nums = sorted({m.group(0) for t in texts for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?", t)})
    return ", ".join(nums[:200])
