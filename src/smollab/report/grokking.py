"""The report of a grokking study: figures, ``report.md``/``.html``, ``paper/paper.tex``
(+ ``numbers.json`` and, with TeX, ``paper.pdf``), all from ``results/results.json`` alone.

Figures per condition and task:

* ``grok_accuracy_<cond>_<task>``: train and validation accuracy on a log-step axis, one colour
  per seed; shaded grey, the grokking phase (median memorisation step to median
  step_val_acc_99) when the median seed generalised; hatched, memorisation to the end of the run
  when it memorised but did not generalise; nothing when it did not memorise. Below, where the
  curves carry it, each seed's weight norm (L2, all parameters) on the same step axis;
* ``grok_clusters_<cond>_<task>``: each cluster metric over time per layer (the mean over seeds
  at the steps every seed snapshotted, and each seed at its own steps), with the validation
  accuracy on a labelled second axis; with one block, its first and last layer drawn once;
* ``grok_pca_<cond>_<task>``: PCA of the last layer's last-position representations of one seed
  (named in the titles), coloured by answer class (with a colour key), each panel titled with
  its snapshot's validation accuracy: before, during and after grokking for the first seed that
  grokked (after: a snapshot from its step of 99% on), else seed 0's first, middle and last
  snapshots (``results["pca"]``, :func:`smollab.analysis.grokking._pca_panels`).

Step 0 is drawn at 1 on the log-step axes (the captions say so). The captions and titles depend
on what happened (:data:`FIGURES`); their numbers are keyed into the results.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from smollab.io import read_json  # noqa: E402
from smollab.report.build import kind_figures, write_kind_documents  # noqa: E402
from smollab.report.context import (  # noqa: E402
    Ident,
    Num,
    Phrase,
    check_numbers,
    interval,
    listing,
    phrase,
)

METRIC_TITLES = {
    "silhouette": "Silhouette (higher: tighter classes)",
    "davies_bouldin": "Davies-Bouldin (lower: better separated)",
    "variance_ratio": "Between/within variance ratio",
    "probe_acc": "Linear probe, held-out pairs",
}


LEGEND = {"fontsize": 8, "frameon": False}
#: the label of the step axis: a log scale, on which step 0 is drawn at 1
STEP_LABEL = "step (log scale)"
SPAN_GROKKING = "grokking phase (medians over seeds)"
SPAN_NOT_GENERALISED = "memorised, not generalised within the run"


def _save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    from smollab.report.figures import save_figure

    try:
        return save_figure(fig, out_dir, stem, dpi=110)
    finally:
        plt.close(fig)


def _log_steps(steps: Any) -> np.ndarray:
    """Steps for a log axis: step 0 is drawn at 1 (the captions say so)."""
    return np.maximum(np.asarray(steps, float), 1)


def _step_axis(ax: Any, steps: list[np.ndarray]) -> None:
    """A log step axis labelled with plain step numbers (1, 10, 100, ...); over at most two
    decades of steps, the 2s and 5s between them are labelled too."""
    ax.set_xscale("log")
    plain = FuncFormatter(lambda x, _: f"{x:.0f}")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10))))
    vals = np.concatenate([np.asarray(s, float).ravel() for s in steps] or [np.ones(1)])
    vals = vals[np.isfinite(vals)]
    decades = np.log10(vals.max() / vals.min()) if vals.size else 0.0

    def twos_and_fives(x: float, _: Any) -> str:
        mantissa = x / 10 ** np.floor(np.log10(x) + 1e-9)
        return f"{x:.0f}" if round(mantissa) in (2, 5) else ""

    ax.xaxis.set_minor_formatter(FuncFormatter(twos_and_fives) if decades <= 2 else NullFormatter())


def _phase_span(results: dict[str, Any], cond: str, task: str) -> tuple[str, float, float] | None:
    """What the accuracy figure shades: ``("grokking", mem, gen)`` from the median memorisation
    step to the median step of 99% validation accuracy; ``("not_generalised", mem, end)`` from
    the median memorisation step to the end of the run when the median seed memorised but never
    reached 99% validation accuracy; ``None`` when the median seed did not memorise, or
    generalised no later than it memorised (no phase to show)."""
    t = results["conditions"][cond]["tasks"][task]
    mem, gen = t["memorisation_step"]["median"], t["step_val_acc_99"]["median"]
    if mem is None:
        return None
    if gen is None:
        curves = results.get("curves", {}).get(cond, {}).get(task, {})
        ends = [max(c["step"]) for c in curves.values() if c.get("step")]
        ends += [r["steps"] for r in t.get("runs", []) if r.get("steps") is not None]
        end = max(ends, default=mem)
        return ("not_generalised", mem, end) if end > mem else None
    return ("grokking", mem, gen) if gen > mem else None


def _has_weight_norm(curves: dict[str, Any]) -> bool:
    """Whether every seed's curve carries the weight norm (results before it was logged: not)."""
    return bool(curves) and all(
        any(v is not None for v in c.get("weight_norm") or []) for c in curves.values()
    )


def accuracy_figure(results: dict[str, Any], cond: str, task: str, out: Path) -> list[Path]:
    """Train (dashed) and validation (solid) accuracy per seed (one colour each) on a log-step
    axis, the phase shaded (see :func:`_phase_span`), and below, where the curves carry it, each
    seed's weight norm on the same step axis."""
    curves = results["curves"][cond][task]
    wn = _has_weight_norm(curves)
    if wn:
        fig, (ax, ax_w) = plt.subplots(
            2,
            1,
            figsize=(7.8, 5.0),
            sharex=True,
            gridspec_kw={"height_ratios": [2.3, 1]},
            layout="constrained",
        )
        axes = [ax, ax_w]
    else:
        fig, ax = plt.subplots(figsize=(7.8, 3.6), layout="constrained")
        axes = [ax]
    handles: list[Any] = []
    all_steps = []
    for i, (seed, c) in enumerate(sorted(curves.items())):
        steps = _log_steps(c["step"])
        all_steps.append(steps)
        ax.plot(steps, _nan(c["train_acc"]), color=f"C{i}", ls="--", lw=1)
        ax.plot(steps, _nan(c["val_acc"]), color=f"C{i}", lw=1.4)
        if wn:
            ax_w.plot(steps, _nan(c["weight_norm"]), color=f"C{i}", lw=1.2)
        handles.append(Line2D([], [], color=f"C{i}", lw=2, label=f"seed {seed}"))
    handles += [
        Line2D([], [], color="0.3", ls="--", lw=1, label="train"),
        Line2D([], [], color="0.3", lw=1.4, label="validation"),
        Line2D([], [], color="0.5", ls=":", lw=0.8, label="99% accuracy"),
    ]
    span = _phase_span(results, cond, task)
    if span is not None:
        kind, left, right = span
        style: dict[str, Any] = (
            {"facecolor": "0.85", "edgecolor": "none"}
            if kind == "grokking"
            else {"facecolor": "none", "edgecolor": "0.6", "hatch": "///", "lw": 0}
        )
        for a in axes:
            a.axvspan(max(left, 1), max(right, 1), zorder=0, **style)
        label = SPAN_GROKKING if kind == "grokking" else SPAN_NOT_GENERALISED
        handles.append(Patch(label=label, **style))
    ax.axhline(0.99, color="0.5", lw=0.8, ls=":")
    _step_axis(ax, all_steps)
    ax.set_ylabel("accuracy", fontsize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{task} ({cond})", fontsize=10)
    # outside the axes, right of them: it covers no curve
    fig.legend(handles=handles, loc="outside right upper", **LEGEND)
    if wn:
        ax_w.set_ylabel("weight norm\n(L2, all parameters)", fontsize=9)
    axes[-1].set_xlabel(STEP_LABEL, fontsize=9)
    for a in axes:
        a.tick_params(which="both", labelsize=8)
    return _save(fig, out, f"grok_accuracy_{cond}_{task}")


def accuracy_caption(results: dict[str, Any], cond: str, task: str) -> Phrase:
    key = f"conditions.{cond}.tasks.{task}"
    t = results["conditions"][cond]["tasks"][task]
    mem = Num(f"{key}.memorisation_step.median", t["memorisation_step"]["median"], "count")
    gen = Num(f"{key}.step_val_acc_99.median", t["step_val_acc_99"]["median"], "count")
    head = (
        "Train (dashed) and validation (solid) accuracy, one colour per seed, on a log-step axis "
        "(step 0 is drawn at 1); dotted: 99% accuracy. "
    )
    span = _phase_span(results, cond, task)
    if span is None and t["memorisation_step"]["median"] is None:
        shade: Phrase = phrase(
            "Nothing is shaded: the median seed did not memorise the training set (99% train "
            "accuracy) within the run, so there is no memorisation or grokking phase to show."
        )
    elif span is None:
        shade = phrase(
            "Nothing is shaded: at the median over seeds, validation accuracy reached 99% (step ",
            gen,
            ") no later than train accuracy (step ",
            mem,
            "), so there is no delay to show.",
        )
    elif span[0] == "grokking":
        g = t["step_val_acc_99"]
        some = (
            phrase(
                " Only ",
                Num(f"{key}.step_val_acc_99.n_reached", g["n_reached"], "count"),
                " of ",
                Num(f"{key}.step_val_acc_99.n", g["n"], "count"),
                " seeds reached 99% validation accuracy; the median counts a seed that did "
                "not as later than every seed that did.",
            )
            if g.get("n_reached") is not None and g["n_reached"] < g["n"]
            else ""
        )
        shade = phrase(
            "Shaded grey: the grokking phase, from the median memorisation step (",
            mem,
            ") to the median step of 99% validation accuracy (",
            gen,
            ").",
            some,
        )
    else:
        shade = phrase(
            "Hatched: memorised, not generalised within the run: from the median memorisation "
            "step (",
            mem,
            ") to the end of the run, which the median seed ended without 99% validation "
            "accuracy (seeds that reached it: ",
            Num(f"{key}.step_val_acc_99.n_reached", t["step_val_acc_99"]["n_reached"], "count"),
            " of ",
            Num(f"{key}.step_val_acc_99.n", t["step_val_acc_99"]["n"], "count"),
            "); no grokking phase is shown.",
        )
    tail = (
        " Below: each seed's weight norm (the L2 norm of all parameters) on the same step axis."
        if _has_weight_norm(results["curves"][cond][task])
        else ""
    )
    return phrase(head, shade, tail)


def _nan(values: list[Any]) -> list[float]:
    """A series with ``None`` (undefined, or no seed has a value) as a gap in the line."""
    return [np.nan if v is None else v for v in values]


def _val_axis(ax: Any, steps: np.ndarray, val: list[float]) -> None:
    """The validation accuracy (black, dotted) on a labelled right-hand axis of ``ax``."""
    ax2 = ax.twinx()
    ax2.plot(steps, val, color="k", ls=":", lw=1)
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_ylabel("val. accuracy", fontsize=8)
    ax2.tick_params(labelsize=8)


#: the legend label of the one layer drawn when the model has one block (``first_is_last``)
FIRST_IS_LAST = "first = last layer"


def _layers(rep: dict[str, Any]) -> dict[str, str]:
    """The layers the cluster figure draws and their labels: with one block (``first_is_last``
    in the results) the "first" and "last" layers are the same module, drawn once."""
    if rep.get("first_is_last"):
        return {
            lay: FIRST_IS_LAST if lay == "last" else lay for lay in rep["layers"] if lay != "first"
        }
    return {lay: lay for lay in rep["layers"]}


def cluster_figure(results: dict[str, Any], cond: str, task: str, out: Path) -> list[Path]:
    """The means over seeds at the steps every seed snapshotted (markers), and each seed's own
    series at its own steps (thin lines: they carry on past the common steps when runs stop
    early); every panel with the validation accuracy on a right-hand axis."""
    rep = results["representations"][cond][task]
    steps = _log_steps(rep["steps"])
    per_seed = list(rep.get("per_seed", {}).values())
    seed_steps = [_log_steps(r["steps"]) for r in per_seed]
    fourier = rep.get("fourier")
    ncols = 3 if fourier else 2
    fig, axes = plt.subplots(2, ncols, figsize=(4.6 * ncols, 6.4), sharex=True)
    val = _nan(rep["val_acc"]["mean"])
    panels = list(axes.ravel())
    # the panels that show the step axis: the bottom row, and the Fourier panel (top right)
    # above the unused bottom-right one
    labelled = list(axes[-1])
    if fourier:
        ax = panels.pop(2)
        for i, (m, label) in enumerate(
            (("top_k_share", "top-5 frequency share"), ("gini", "Gini"))
        ):
            ax.plot(
                steps, _nan(fourier[m]["mean"]), marker="o", ms=2.5, color=f"C{i + 3}", label=label
            )
            for x, r in zip(seed_steps, per_seed, strict=True):
                ax.plot(x, _nan(r["fourier"][m]), color=f"C{i + 3}", lw=0.6, alpha=0.35)
        _val_axis(ax, steps, val)
        ax.set_title("Fourier sparsity of token embeddings", fontsize=9)
        ax.legend(fontsize=8)
        labelled = [a for a in labelled if a is not axes[-1, -1]] + [ax]
        for unused in panels[len(METRIC_TITLES) :]:
            unused.axis("off")
    layers = _layers(rep)
    for ax, metric in zip(panels, METRIC_TITLES, strict=False):
        for i, (layer, label) in enumerate(layers.items()):
            ms = rep["layers"][layer]
            ax.plot(steps, _nan(ms[metric]["mean"]), marker="o", ms=2.5, color=f"C{i}", label=label)
            for x, r in zip(seed_steps, per_seed, strict=True):
                ax.plot(x, _nan(r["layers"][layer][metric]), color=f"C{i}", lw=0.6, alpha=0.35)
        _val_axis(ax, steps, val)
        ax.set_title(METRIC_TITLES[metric], fontsize=9)
    for ax in axes.ravel():
        _step_axis(ax, [steps, *seed_steps])
        ax.tick_params(which="both", labelsize=8)
    for ax in labelled:
        ax.set_xlabel(STEP_LABEL, fontsize=8)
        ax.tick_params(which="both", labelbottom=True)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"{task} ({cond}): cluster metrics vs validation accuracy (black dotted, right axis)",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, out, f"grok_clusters_{cond}_{task}")


def cluster_caption(results: dict[str, Any], cond: str, task: str) -> str:
    fourier = (
        " Top right: the Fourier sparsity of the token embeddings (the top-5 frequencies' share "
        "of the power, and its Gini coefficient) over "
        + (
            "the multiplicative group Z_p^*, residues in the order of a primitive root's powers."
            if (results["representations"][cond][task].get("fourier") or {}).get("basis")
            == "multiplicative"
            else "Z_p."
        )
        if results["representations"][cond][task].get("fourier")
        else ""
    )
    one = (
        " The model has one block, so its first and last layers are the same module, drawn once "
        f"('{FIRST_IS_LAST}')."
        if results["representations"][cond][task].get("first_is_last")
        else ""
    )
    return (
        "Silhouette, Davies-Bouldin, variance ratio and held-out linear-probe accuracy of the "
        "last-position representations per layer (left axes) against the mean validation "
        "accuracy (black dotted, right axes): markers, the mean over seeds at the steps every "
        "seed snapshotted; thin lines, each seed at its own steps. Log-step axis: step 0 is "
        f"drawn at 1. Undefined values (see the notes) are gaps.{one}{fourier}"
    )


#: what the three PCA panels are: phases of grokking when the seed drawn both memorised and
#: reached 99% validation accuracy, its first, middle and last snapshots otherwise
PHASES = {"before": "before", "during": "during", "after": "after"}
SNAPSHOTS = {"before": "first snapshot", "during": "middle snapshot", "after": "last snapshot"}


def _pca_run(results: dict[str, Any], cond: str, task: str) -> int | None:
    """The index in ``runs`` of the seed the PCA panels are drawn from."""
    seed = results["pca"][cond][task].get("seed")
    runs = results["conditions"][cond]["tasks"][task].get("runs", [])
    return next((j for j, r in enumerate(runs) if seed is not None and r.get("seed") == seed), None)


def _pca_seed_steps(results: dict[str, Any], cond: str, task: str) -> tuple[Any, Any]:
    """The memorisation step and the step of 99% validation accuracy of the seed the PCA
    panels are drawn from (``None``: not reached)."""
    t = results["conditions"][cond]["tasks"][task]
    j = _pca_run(results, cond, task)
    if j is not None:
        return t["runs"][j].get("memorisation_step"), t["runs"][j].get("step_val_acc_99")
    # results without runs: the analysis drew the first seed's snapshots
    return t["memorisation_step"]["values"][0], t["step_val_acc_99"]["values"][0]


def _pca_phased(results: dict[str, Any], cond: str, task: str) -> bool:
    """Whether the PCA panels are before/during/after grokking, as the analysis says
    (``phases_of_grokking``: the seed drawn memorised, reached 99% validation accuracy and
    has a snapshot after that); for results without the flag, whether it has both steps."""
    pca = results["pca"][cond][task]
    if "phases_of_grokking" in pca:
        return bool(pca["phases_of_grokking"])
    mem, gen = _pca_seed_steps(results, cond, task)
    return mem is not None and gen is not None


def _answer_label(spec: dict[str, Any]) -> str:
    """The colour key's label: what the answer class is for the task."""
    if spec.get("task") == "grok.permutation" or spec.get("p") is None:
        k = 1
        while math.factorial(k) < spec["n_classes"]:
            k += 1
        return f"answer (index of the permutation in S{k}, lexicographic)"
    return f"answer (residue mod {spec['p']})"


def pca_figure(results: dict[str, Any], cond: str, task: str, out: Path) -> list[Path]:
    pca = results["pca"][cond][task]
    panels = pca["panels"]
    spec = results["tasks"][task]
    n_classes = spec["n_classes"]
    names = PHASES if _pca_phased(results, cond, task) else SNAPSHOTS
    tsne = all("tsne" in p for p in panels)  # t-SNE on request: a second row
    rows = 2 if tsne else 1
    fig, axes = plt.subplots(
        rows,
        len(panels),
        figsize=(3.2 * len(panels) + 0.8, 3.3 * rows),
        squeeze=False,
        layout="constrained",
    )
    sc = None
    for col, p in enumerate(panels):
        views = [("PCA", p["xy"], p["labels"])]
        if tsne:
            views.append(("t-SNE", p["tsne"]["xy"], p["tsne"]["labels"]))
        for row, (name, xy, labels) in enumerate(views):
            ax = axes[row, col]
            xy = np.asarray(xy, float).reshape(-1, 2)
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="hsv", vmin=0, vmax=n_classes, s=4)
            phase = names.get(p["phase"], p["phase"])
            lines = [f"{name}, {phase}: step {p['step']}"]
            if name == "PCA":
                val = p.get("val_acc")
                acc = [] if val is None else [f"val. acc. {val:.0%}"]
                lines.append(
                    "; ".join([*acc, f"PC1+2: {sum(p['variance_share']):.0%} of variance"])
                )
            ax.set_title("\n".join(lines), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    if sc is not None:
        cbar = fig.colorbar(sc, ax=list(axes.ravel()), fraction=0.03, pad=0.01)
        ticks = MaxNLocator(nbins=6, integer=True).tick_values(0, n_classes - 1)
        cbar.set_ticks([t for t in ticks if 0 <= t <= n_classes - 1])
        cbar.set_label(_answer_label(spec), fontsize=8)
        cbar.ax.tick_params(labelsize=8)
    seed = pca.get("seed")
    who = f", seed {seed}" if seed is not None else ""
    fig.suptitle(
        f"{task} ({cond}{who}): last layer, last position, coloured by answer", fontsize=10
    )
    return _save(fig, out, f"grok_pca_{cond}_{task}")


def pca_title(results: dict[str, Any], cond: str, task: str) -> str:
    seed = results["pca"][cond][task].get("seed")
    who = "" if seed is None else f" (seed {seed})"
    if _pca_phased(results, cond, task):
        return f"Representations before, during and after grokking{who}"
    return f"Representations at the first, middle and last snapshot{who}"


def pca_caption(results: dict[str, Any], cond: str, task: str) -> Phrase:
    key = f"pca.{cond}.{task}"
    pca = results["pca"][cond][task]
    seed = Num(f"{key}.seed", pca.get("seed"), "count")
    spec = results["tasks"][task]
    head = phrase(
        "First two principal components of the last layer's last-position representations of seed ",
        seed,
        ", coloured by ",
        _answer_label(spec),
        "; each panel's title gives the validation accuracy at its snapshot. ",
    )
    if not _pca_phased(results, cond, task):
        return phrase(
            head,
            "No seed both memorised (99% train accuracy) and reached 99% validation accuracy "
            "with a snapshot after it, so the panels are this seed's first, middle and last "
            "snapshots, not phases of grokking.",
        )
    j = _pca_run(results, cond, task)
    gen = Num(
        f"conditions.{cond}.tasks.{task}.runs.{j}.step_val_acc_99"
        if j is not None
        else f"conditions.{cond}.tasks.{task}.step_val_acc_99.values.0",
        _pca_seed_steps(results, cond, task)[1],
        "count",
    )
    head = phrase(
        head,
        "It is the first seed that both memorised and reached 99% validation accuracy. Before: "
        "its first snapshot; during: the snapshot nearest the middle of its phase from "
        "memorisation to 99% validation accuracy, which it reached at step ",
        gen,
        "; after: ",
    )
    i, val = next(
        ((i, p.get("val_acc")) for i, p in enumerate(pca["panels"]) if p.get("phase") == "after"),
        (0, None),
    )
    if val is not None and val < 0.99:
        return phrase(
            head,
            "its first snapshot from that step on, where validation accuracy was ",
            Num(f"{key}.panels.{i}.val_acc", val, "pct"),
            " (no snapshot from that step on had 99%).",
        )
    return phrase(
        head, "its last snapshot from that step on at which validation accuracy was still 99%."
    )


def accuracy_title(results: dict[str, Any], cond: str, task: str) -> str:
    return (
        "Accuracy and weight norm over training"
        if _has_weight_norm(results["curves"][cond][task])
        else "Accuracy over training"
    )


FIGURES = (
    ("accuracy", accuracy_figure, "curves", accuracy_title, accuracy_caption),
    (
        "clusters",
        cluster_figure,
        "representations",
        lambda results, cond, task: "Cluster metrics over training",
        cluster_caption,
    ),
    ("pca", pca_figure, "pca", pca_title, pca_caption),
)


def draw_all(results: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    drawn = []
    for cond, c in results["conditions"].items():
        for task in c["tasks"]:
            for kind, fn, key, title, caption in FIGURES:
                if task not in results.get(key, {}).get(cond, {}):
                    continue
                paths = fn(results, cond, task, out)
                drawn.append(
                    {
                        "kind": kind,
                        "cond": cond,
                        "task": task,
                        "title": f"{title(results, cond, task)}: {task}, {cond}",
                        "caption": caption(results, cond, task),
                        "paths": paths,
                    }
                )
    return drawn


def _fmt_step(x: Any) -> str:
    return "not reached" if x is None else f"{x:.0f}"


def _rep_row(key: str, rep: dict[str, Any]) -> dict[str, Any] | None:
    """The first and last step every seed snapshotted (means over seeds are taken only there),
    and each seed's snapshots at other steps; ``None`` when there is no common step."""
    if not rep["steps"]:
        return None
    last = rep["layers"]["last"]
    n = len(rep["steps"]) - 1

    def ends(series: dict[str, Any], k: str, kind: str) -> tuple[Any, ...]:
        """The first and last common step's means, as numbers keyed into results; one number
        when the seeds share a single step."""
        first = Num(f"{k}.mean.0", series["mean"][0], kind)
        return (first, Num(f"{k}.mean.{n}", series["mean"][n], kind)) if n else (first,)

    late = []
    for seed, steps in rep.get("not_averaged", {}).items():
        if steps:
            parts: list[Any] = [f"seed {seed}: step"]
            for i, step in enumerate(steps):
                at = rep["per_seed"][seed]["steps"].index(step)
                parts += [
                    ", " if i else " ",
                    Num(f"{key}.not_averaged.{seed}.{i}", step, "count"),
                    " (probe, last layer ",
                    Num(
                        f"{key}.per_seed.{seed}.layers.last.probe_acc.{at}",
                        rep["per_seed"][seed]["layers"]["last"]["probe_acc"][at],
                        "pct",
                    ),
                    ")",
                ]
            late.append(phrase(*parts))
    fourier = rep.get("fourier")
    return {
        "steps": (
            (Num(f"{key}.steps.0", rep["steps"][0], "count"),)
            + ((Num(f"{key}.steps.{n}", rep["steps"][n], "count"),) if n else ())
        ),
        "silhouette": ends(last["silhouette"], f"{key}.layers.last.silhouette", "num"),
        "probe": ends(last["probe_acc"], f"{key}.layers.last.probe_acc", "pct"),
        "probe_first": ends(
            rep["layers"]["first"]["probe_acc"], f"{key}.layers.first.probe_acc", "pct"
        ),
        "fourier": ends(fourier["top_k_share"], f"{key}.fourier.top_k_share", "pct")
        if fourier
        else None,
        # the group whose Fourier basis was used: Z_p (x + y, x - y) or Z_p^* (x / y)
        "fourier_group": ("in Z_p^*" if (fourier or {}).get("basis") == "multiplicative" else ""),
        # p // 2 <= 5 frequencies: the top 5 hold all the power (see the notes)
        "fourier_undefined": "fourier.top_k_share" in rep.get("undefined", {}),
        "not_averaged": late,
    }


def context(results: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for cname, c in results["conditions"].items():
        for tname, t in c["tasks"].items():
            key = f"conditions.{cname}.tasks.{tname}"
            g, m, gap = t["step_val_acc_99"], t["memorisation_step"], t["grokking_gap"]
            sem = "" if g["sem"] is None or g["sem"] != g["sem"] else f" ± {g['sem']:.0f}"
            rows.append(
                {
                    "condition": cname,
                    "task": tname,
                    "grokked": t["grokked"],
                    "median": Num(f"{key}.step_val_acc_99.median", g["median"], "count")
                    if g["median"] is not None
                    else "not reached",
                    "mean_sem": (f"{g['mean']:.0f}{sem}" if g["mean"] is not None else "–"),
                    "memorisation": _fmt_step(m["median"]),
                    "gap": _fmt_step(gap["median"]),
                    "final_val": Num(
                        f"{key}.final_val_acc.mean", t["final_val_acc"]["mean"], "pct"
                    ),
                    "per_seed": ", ".join(_fmt_step(v) for v in g["values"]),
                }
            )
    rep_rows = []
    for cname, by_task in results.get("representations", {}).items():
        for tname, rep in by_task.items():
            row = _rep_row(f"representations.{cname}.{tname}", rep)
            if row is not None:  # no step every seed snapshotted: the notes say so
                rep_rows.append({"condition": cname, "task": tname, **row})
    comps = results.get("comparisons", [])
    comp_rows = [
        {
            "condition": comp["condition"],
            "task": comp["task"],
            "seeds": f"{comp['n']} vs {comp['n_reference']}",
            "ratio": Num(f"comparisons.{i}.median_ratio", comp["median_ratio"], "ratio"),
            "shift": _shift(i, comp),
            "p_holm": Num(f"comparisons.{i}.p_holm", comp.get("p_holm"), "p"),
            "verdict": comp["verdict"],
            "reason": comp["reason"] or "",
        }
        for i, comp in enumerate(comps)
    ]
    reference = comps[0]["reference"] if comps else None
    alpha = Num("alpha", results.get("alpha", 0.05), "short")
    return {
        "comp_rows": comp_rows,
        "alpha": alpha,
        "decision": _decision(comps, alpha),
        "censoring": any(c.get("censored") for c in comps),
        "reference": reference,
        "rep_rows": rep_rows,
        "title": results["study"].get("title") or results["study"]["name"],
        "question": results["study"].get("question", ""),
        "session": results["session"],
        "rows": rows,
        "notes": results.get("notes", []),
        "conditions": {k: _settings(c["config"]) for k, c in results["conditions"].items()},
        "task_lines": _task_lines(results),
        "model_lines": _model_lines(results),
    }


def _task_lines(results: dict[str, Any]) -> list[Phrase]:
    """Each task as the study set it up: the operation, the modulus (or the group's size), and
    how its pairs were split (the split's own rounding: :meth:`ModularTask.split`)."""
    lines = []
    for name, t in results.get("tasks", {}).items():
        key = f"tasks.{name}"
        what: list[Any] = [t["task"]]
        if t.get("p") is not None:
            what += [" (mod p = ", Num(f"{key}.p", t["p"], "count"), ")"]
        elif t.get("n_classes") is not None:
            what += [" (", Num(f"{key}.n_classes", t["n_classes"], "count"), " elements)"]
        split: list[Any] = []
        if t.get("n_pairs") is not None and t.get("train_fraction") is not None:
            split = [
                "; ",
                Num(f"{key}.n_pairs", t["n_pairs"], "count"),
                " pairs, training fraction ",
                Num(f"{key}.train_fraction", t["train_fraction"], "short"),
            ]
            # results written before the split sizes were recorded have only the fraction
            if t.get("n_train") is not None and t.get("n_val") is not None:
                split += [
                    " (",
                    Num(f"{key}.n_train", t["n_train"], "count"),
                    " for training, ",
                    Num(f"{key}.n_val", t["n_val"], "count"),
                    " held out for validation)",
                ]
        lines.append(phrase(Ident(name), ": ", *what, *split))
    return lines


def _model_lines(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each model (``name``) with its source, its architecture settings as written in the spec
    (like the conditions' run settings) and the conditions that train it (``text``)."""
    lines = []
    for name, m in results.get("models", {}).items():
        used = [c for c, block in results["conditions"].items() if block.get("model") == name]
        cfg = ", ".join(f"{k}={v}" for k, v in (m.get("config") or {}).items())
        text = m["source"] + (f" ({cfg})" if cfg else "")
        text += ", trained from scratch" + (f" in {', '.join(used)}" if used else "")
        lines.append({"name": Ident(name), "text": text})
    return lines


def _shift(i: int, comp: dict[str, Any]) -> Phrase:
    """The shift with its interval (an end too few seeds or censored seeds leave unbounded is
    "unbounded"); "not given" in place of an estimate that depends on censored seeds' steps."""
    key, shift = f"comparisons.{i}", comp["shift"]
    if shift is None or shift.get("estimate") is not None:
        return interval(f"{key}.shift", shift, "signed", "signed", open_end="unbounded")
    ends = [
        "unbounded"
        if shift.get(side) is None
        else Num(f"{key}.shift.{side}", shift[side], "signed")
        for side in ("low", "high")
    ]
    return phrase("not given [", ends[0], ", ", ends[1], "]")


def _decision(comps: list[dict[str, Any]], alpha: Num) -> Phrase:
    """When a shift is called a difference, worded for the comparisons the study has: how many
    Holm's adjustment runs over, and which seed counts cannot reach ``alpha`` at all (their
    smallest possible p-value, ``p_min``, from the results)."""
    tested = [(i, c) for i, c in enumerate(comps) if c.get("p_value") is not None]
    rule = (
        "A shift is called a difference only if its interval excludes 0 and the Mann-Whitney test"
    )
    if not tested:
        head = phrase(
            rule,
            ", Holm-adjusted over the comparisons that have a test, rejects at ",
            alpha,
            "; here no comparison has one (see why).",
        )
    elif len(tested) == 1:
        head = phrase(rule, " rejects at ", alpha, " (one comparison: no Holm adjustment).")
    else:
        head = phrase(
            rule, f", Holm-adjusted over the {len(tested)} comparisons, rejects at ", alpha, "."
        )
    bound = [(i, c) for i, c in tested if c.get("p_min") is not None]
    counts: dict[tuple[int, int], Num] = {}
    for i, c in bound:
        if c["p_min"] > alpha.value:
            counts.setdefault(
                (c["n"], c["n_reference"]), Num(f"comparisons.{i}.p_min", c["p_min"], "num")
            )
    if counts:
        (n0, m0), p0 = next(iter(counts.items()))
        said = [phrase(f"With {n0} seeds against {m0} the smallest possible p-value is ", p0)]
        said += [
            phrase(f"with {n} against {m} it is ", p) for (n, m), p in list(counts.items())[1:]
        ]
        return phrase(
            head,
            " ",
            listing(said),
            ", above ",
            alpha,
            ", so a comparison with these seed counts cannot reject.",
        )
    if len(tested) > 1 and bound and len(bound) == len(tested):
        i, low = min(bound, key=lambda ic: ic[1]["p_min"])
        if len(tested) * low["p_min"] > alpha.value:
            return phrase(
                head,
                " With these seed counts the smallest possible p-value is ",
                Num(f"comparisons.{i}.p_min", low["p_min"], "num"),
                f", and Holm's adjustment multiplies the smallest of the {len(tested)} by "
                f"{len(tested)}, so no comparison can reject.",
            )
    return head


def _settings(config: dict[str, Any]) -> dict[str, str]:
    """A condition's run settings as a reader needs them: no unset options (None: off, or the
    default), none that its other settings switch off (Grokfast's amplification without
    Grokfast, the floor of a cosine schedule under a constant one, empty per-part multipliers),
    and per-part multipliers as ``embed x4``, not a Python dict."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if k in ("device", "threads") or v is None or v == {}:
            continue
        if k == "grokfast_lamb" and config.get("grokfast_alpha") is None:
            continue
        if k == "min_lr_ratio" and config.get("lr_schedule", "constant") == "constant":
            continue
        if isinstance(v, dict):
            out[k] = ", ".join(f"{part} x{x:g}" for part, x in v.items())
        elif isinstance(v, (list, tuple)):
            out[k] = "[" + ", ".join(str(x) for x in v) + "]"
        else:
            out[k] = str(v)
    return out


def build_grok_report(session_dir: Path, *, pdf: bool = True) -> tuple[Path, Path | None]:
    """Write figures, report.md, report.html and the paper; returns (paper.tex, paper.pdf)."""
    session_dir = Path(session_dir)
    path = session_dir / "results" / "results.json"
    results = read_json(path)
    check_numbers(results, path)
    drawn = draw_all(results, session_dir / "figures")
    ctx = context(results)
    ctx["figures"] = kind_figures(session_dir, drawn)
    return write_kind_documents(session_dir, ctx, "grok", pdf=pdf)
