"""The report's figures: accuracy by difficulty, loss curves, error taxonomy (PNG + PDF each).

Figures are drawn on the Agg canvas without pyplot (no global figure state), under a fixed style,
and saved with fixed metadata (no creation date, fixed SVG hash salt), so that rebuilding from the
same results gives byte-identical files wherever matplotlib allows. Every file is written
atomically. Conditions get colours from a fixed palette in the order they appear in the results.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from smollab.io import atomic_write_bytes
from smollab.report.fmt import is_missing, score_label, score_title

if TYPE_CHECKING:  # matplotlib.typing.RcKeyType is newer than the oldest matplotlib supported
    from matplotlib.typing import RcKeyType

#: Okabe-Ito (colour-blind safe), then tab10 for more conditions; cycled beyond that.
PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF",
]  # fmt: skip

ERROR_COLORS = {
    "correct": "#009E73",
    "no_answer": "#7F7F7F",
    "wrong_length": "#CC79A7",
    "carry_error": "#E69F00",
    "one_wrong_digit": "#56B4E9",
    "multi_digit": "#D55E00",
}

STYLE: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
    "svg.hashsalt": "smollab",
    "pdf.fonttype": 42,
    "figure.dpi": 100,
}

PDF_METADATA = {"CreationDate": None, "Producer": None, "Creator": "smollab"}
PNG_METADATA = {"Software": "smollab"}


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _value(x: Any) -> float:
    return math.nan if is_missing(x) else float(x)


def save_figure(fig: Figure, out_dir: Path, stem: str, *, dpi: int = 150) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically, with fixed metadata (the same figure
    gives the same bytes); return both paths. Every report figure is saved here."""
    if not isinstance(fig.canvas, FigureCanvasAgg):  # a pyplot figure keeps its own
        FigureCanvasAgg(fig)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, meta in (("png", PNG_METADATA), ("pdf", PDF_METADATA)):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta, dpi=dpi, bbox_inches="tight")
        paths.append(atomic_write_bytes(out_dir / f"{stem}.{ext}", buf.getvalue()))
    return paths


def _percent_axis(ax: Any) -> None:
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _entry(results: dict[str, Any], cond: str, task: str, stratum: str) -> dict[str, Any]:
    tres = (results["conditions"][cond].get("tasks") or {}).get(task) or {}
    return (tres.get("strata") or {}).get(stratum) or {}


def accuracy_by_difficulty(results: dict[str, Any], task: str, out_dir: Path) -> list[Path]:
    """Exact match per stratum, one bar per condition, with the interval as error bars."""
    strata = list(results["tasks"][task].get("strata") or [])
    conds = list(results["conditions"])
    fig = Figure(figsize=(max(4.5, 1.1 * len(strata) * max(1, len(conds)) ** 0.5 + 2), 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(strata))
    width = 0.8 / max(1, len(conds))
    for i, cond in enumerate(conds):
        ivs = [_entry(results, cond, task, s).get("exact_match") or {} for s in strata]
        est = np.array([_value(iv.get("estimate")) for iv in ivs])
        low = np.array([_value(iv.get("low")) for iv in ivs])
        high = np.array([_value(iv.get("high")) for iv in ivs])
        yerr = np.nan_to_num(np.vstack([est - low, high - est]).clip(min=0), nan=0.0)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.nan_to_num(est), width * 0.9, color=color(i), label=cond)
        ax.errorbar(pos, np.nan_to_num(est), yerr=yerr, fmt="none", ecolor="black", lw=1, capsize=2)
        for p, e in zip(pos, est, strict=True):
            if math.isnan(e):
                ax.text(p, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    chance = results["tasks"][task].get("chance")
    if chance is not None:
        ax.axhline(chance, color="0.35", ls="--", lw=1, label=f"chance ({chance:.0%})")
    by_difficulty = results["tasks"][task].get("strata_by_difficulty", True)
    ax.set_xticks(x, strata)
    ax.set_xlabel("difficulty (stratum)" if by_difficulty else "stratum")
    score = score_label(results["tasks"][task])
    ax.set_ylabel(score)
    _percent_axis(ax)
    ax.set_title(f"{task}: {score} by {'difficulty' if by_difficulty else 'stratum'}")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, out_dir, f"accuracy_by_difficulty_{task}")


def _series(rows: list[dict[str, Any]], field: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], _value(r.get(field))) for r in rows if "step" in r and field in r]
    if not pts:
        return np.array([]), np.array([])
    steps, vals = zip(*pts, strict=True)
    return np.asarray(steps, float), np.asarray(vals, float)


def loss_curves(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Train loss vs step per trained condition (one line per seed) and, when logged, held-out
    accuracy per stratum vs step. Returns ``[]`` when no curves were recorded."""
    curves = {c: s for c, s in (results.get("curves") or {}).items() if s}
    if not curves:
        return []
    has_eval = any(run.get("eval") for seeds in curves.values() for run in seeds.values())
    ncols = 2 if has_eval else 1
    fig = Figure(figsize=(4.2 * ncols, 2.8 * len(curves)))
    axes = fig.subplots(len(curves), ncols, squeeze=False)
    cond_order = list(results["conditions"])
    for row, (cond, seeds) in enumerate(curves.items()):
        ci = cond_order.index(cond) if cond in cond_order else row
        ax = axes[row][0]
        for j, (seed, run) in enumerate(sorted(seeds.items())):
            steps, loss = _series(run.get("train") or [], "loss")
            ax.plot(steps, loss, color=color(ci), alpha=0.9 - 0.5 * j / max(1, len(seeds)),
                    lw=1.2, label=f"seed {seed}")  # fmt: skip
        ax.set_title(f"{cond}: train loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(frameon=False)
        if has_eval:
            _eval_panel(axes[row][1], cond, seeds)
    fig.tight_layout()
    return save_figure(fig, out_dir, "loss_curves")


def _eval_panel(ax: Any, cond: str, seeds: dict[str, Any]) -> None:
    rows = [r for run in seeds.values() for r in run.get("eval") or []]
    fields = sorted({k for r in rows for k in r} - {"step"})
    for k, field in enumerate(fields):
        for j, (_seed, run) in enumerate(sorted(seeds.items())):
            steps, acc = _series(run.get("eval") or [], field)
            ax.plot(steps, acc, color=color(k), lw=1.0, alpha=0.8, marker="o", ms=2,
                    label=field if j == 0 else None)  # fmt: skip
    ax.set_title(f"{cond}: held-out exact match")
    ax.set_xlabel("step")
    ax.set_ylabel("exact match")
    _percent_axis(ax)
    if fields:
        ax.legend(frameon=False, fontsize=7)


def error_taxonomy(results: dict[str, Any], task: str, out_dir: Path) -> list[Path]:
    """Stacked error-type fractions per stratum, one panel per condition."""
    spec = results["tasks"][task]
    strata = list(spec.get("strata") or [])
    conds = list(results["conditions"])
    types = list(spec.get("error_types") or [])
    if not types:  # fall back to whatever the results hold
        seen = (_entry(results, c, task, s).get("errors") or {} for c in conds for s in strata)
        types = sorted({t for e in seen for t in e})
    ncols = min(len(conds), 3)
    nrows = math.ceil(len(conds) / ncols)
    fig = Figure(figsize=(max(3.2 * ncols, 4.5), 2.9 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    x = np.arange(len(strata))
    for i, cond in enumerate(conds):
        ax = axes[i // ncols][i % ncols]
        bottom = np.zeros(len(strata))
        for k, t in enumerate(types):
            errors = [_entry(results, cond, task, s).get("errors") or {} for s in strata]
            frac = np.nan_to_num([_value(e.get(t)) for e in errors])
            ax.bar(x, frac, 0.7, bottom=bottom, color=ERROR_COLORS.get(t, color(k + 5)), label=t)
            bottom += frac
        ax.set_xticks(x, strata)
        ax.set_title(cond)
        ax.set_xlabel("stratum")
        _percent_axis(ax)
    for j in range(len(conds), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    axes[0][0].set_ylabel("fraction of items")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=min(len(types), 6), frameon=False,
               bbox_to_anchor=(0.5, -0.02))  # fmt: skip
    fig.suptitle(f"{task}: error taxonomy")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, out_dir, f"error_taxonomy_{task}")


#: (stem pattern, title, caption) of each figure kind, for the report and paper.
FIGURE_INFO: dict[str, tuple[str, str]] = {
    "accuracy_by_difficulty": (
        "{Score} by {axis}",
        "{Score} per stratum for each condition; error bars are the confidence intervals.",
    ),
    "loss_curves": (
        "Training curves",
        "Training loss per step (one line per seed) and, where logged, held-out exact match per "
        "stratum during training.",
    ),
    "error_taxonomy": (
        "Error taxonomy",
        "Fraction of items per error type, by stratum, for each condition.",
    ),
}


def figure_text(kind: str, task_spec: dict[str, Any] | None) -> tuple[str, str]:
    """The title and caption of a figure of ``kind``, in the words of its task's score."""
    title, caption = FIGURE_INFO[kind]
    by_difficulty = (task_spec or {}).get("strata_by_difficulty", True)
    words = {
        "Score": score_title(task_spec or {}),
        "axis": "difficulty" if by_difficulty else "stratum",
    }
    return title.format(**words), caption.format(**words)


def _has_taxonomy(task_spec: dict[str, Any]) -> bool:
    """An error taxonomy beyond right / wrong (a benchmark's items are only that)."""
    return bool(set(task_spec.get("error_types") or []) - {"correct", "wrong"})


def draw_all(results: dict[str, Any], out_dir: Path) -> list[dict[str, Any]]:
    """Draw every figure under ``out_dir``; return ``[{kind, task, stem, paths}]`` in order.

    Figures of these kinds that an earlier build drew and this one does not (a task no longer
    in the results, a plot no longer made for it) are removed, so ``figures/`` holds what the
    reports show."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = list(results["tasks"])
    jobs: list[tuple[str, str | None, Callable[[], list[Path]]]] = [
        *[("accuracy_by_difficulty", t, partial(accuracy_by_difficulty, results, t, out_dir))
          for t in tasks],
        ("loss_curves", None, partial(loss_curves, results, out_dir)),
        *[("error_taxonomy", t, partial(error_taxonomy, results, t, out_dir)) for t in tasks
          if _has_taxonomy(results["tasks"][t])],
    ]  # fmt: skip
    drawn: list[dict[str, Any]] = []
    with mpl.rc_context(STYLE):
        for kind, task, draw in jobs:
            paths = draw()
            if paths:
                drawn.append({"kind": kind, "task": task, "stem": paths[0].stem, "paths": paths})
    keep = {p for d in drawn for p in d["paths"]}
    for old in out_dir.iterdir():  # every figure stem starts with its kind
        if old.stem.startswith(tuple(FIGURE_INFO)) and old.suffix in (".png", ".pdf"):
            if old not in keep:
                old.unlink()
    return drawn
