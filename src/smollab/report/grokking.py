"""The report of a grokking study: figures, ``report.md``/``.html``, ``paper/paper.tex``
(+ ``numbers.json`` and, with TeX, ``paper.pdf``), all from ``results/results.json`` alone.

Figures per condition and task:

* ``grok_accuracy_<cond>_<task>``: train and validation accuracy on a log-step axis, one line
  per seed; the grokking phase (median memorisation step to median step_val_acc_99) shaded;
* ``grok_clusters_<cond>_<task>``: each cluster metric over time per layer (the mean over seeds
  at the steps every seed snapshotted, and each seed at its own steps), with the validation
  accuracy on a second axis;
* ``grok_pca_<cond>_<task>``: PCA of the last layer's last-position representations before,
  during and after grokking, coloured by answer class.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from markupsafe import Markup  # noqa: E402

from smollab.io import atomic_write_json, atomic_write_text, read_json  # noqa: E402
from smollab.report.context import Num, check_numbers, interval, phrase  # noqa: E402
from smollab.report.pdf import build_pdf  # noqa: E402
from smollab.report.render import NumberLog, html_env, md_env, tex_env  # noqa: E402

METRIC_TITLES = {
    "silhouette": "Silhouette (higher: tighter classes)",
    "davies_bouldin": "Davies-Bouldin (lower: better separated)",
    "variance_ratio": "Between/within variance ratio",
    "probe_acc": "Linear probe, held-out pairs",
}


def _save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=110, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def accuracy_figure(results: dict[str, Any], cond: str, task: str, out: Path) -> list[Path]:
    curves = results["curves"][cond][task]
    t = results["conditions"][cond]["tasks"][task]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, (seed, c) in enumerate(sorted(curves.items())):
        steps = np.maximum(np.asarray(c["step"], float), 1)
        ax.plot(steps, c["train_acc"], color=f"C{i}", ls="--", lw=1, label=f"train, seed {seed}")
        ax.plot(steps, c["val_acc"], color=f"C{i}", lw=1.4, label=f"val, seed {seed}")
    mem, gen = t["memorisation_step"]["median"], t["step_val_acc_99"]["median"]
    if mem is not None:
        right = gen if gen is not None else max(max(c["step"]) for c in curves.values())
        ax.axvspan(max(mem, 1), max(right, 1), color="0.85", zorder=0, label="grokking phase")
    ax.axhline(0.99, color="0.5", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("optimisation step (log)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{task} ({cond})")
    ax.legend(fontsize=6, ncol=2, loc="center left")
    return _save(fig, out, f"grok_accuracy_{cond}_{task}")


def _nan(values: list[Any]) -> list[float]:
    """A series with ``None`` (undefined, or no seed has a value) as a gap in the line."""
    return [np.nan if v is None else v for v in values]


def cluster_figure(results: dict[str, Any], cond: str, task: str, out: Path) -> list[Path]:
    """The means over seeds at the steps every seed snapshotted (markers), and each seed's own
    series at its own steps (thin lines: they carry on past the common steps when runs stop
    early)."""
    rep = results["representations"][cond][task]
    steps = np.maximum(np.asarray(rep["steps"], float), 1)
    per_seed = list(rep.get("per_seed", {}).values())
    seed_steps = [np.maximum(np.asarray(r["steps"], float), 1) for r in per_seed]
    fourier = rep.get("fourier")
    ncols = 3 if fourier else 2
    fig, axes = plt.subplots(2, ncols, figsize=(4.2 * ncols, 5.6), sharex=True)
    val = _nan(rep["val_acc"]["mean"])
    panels = list(axes.ravel())
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
        ax2 = ax.twinx()
        ax2.plot(steps, val, color="k", ls=":", lw=1)
        ax2.set_ylim(-0.02, 1.02)
        ax2.tick_params(labelsize=6)
        ax.set_xscale("log")
        ax.set_title("Fourier sparsity of token embeddings", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
        for unused in panels[len(METRIC_TITLES) :]:
            unused.axis("off")
    for ax, metric in zip(panels, METRIC_TITLES, strict=False):
        for i, (layer, ms) in enumerate(rep["layers"].items()):
            ax.plot(steps, _nan(ms[metric]["mean"]), marker="o", ms=2.5, color=f"C{i}", label=layer)
            for x, r in zip(seed_steps, per_seed, strict=True):
                ax.plot(x, _nan(r["layers"][layer][metric]), color=f"C{i}", lw=0.6, alpha=0.35)
        ax2 = ax.twinx()
        ax2.plot(steps, val, color="k", ls=":", lw=1, label="val acc")
        ax2.set_ylim(-0.02, 1.02)
        ax2.tick_params(labelsize=6)
        ax.set_xscale("log")
        ax.set_title(METRIC_TITLES[metric], fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"{task} ({cond}): cluster metrics vs validation accuracy (dotted)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, f"grok_clusters_{cond}_{task}")


def pca_figure(results: dict[str, Any], cond: str, task: str, out: Path) -> list[Path]:
    panels = results["pca"][cond][task]["panels"]
    n_classes = results["tasks"][task]["n_classes"]
    tsne = all("tsne" in p for p in panels)  # t-SNE on request: a second row
    rows = 2 if tsne else 1
    fig, axes = plt.subplots(rows, len(panels), figsize=(3.2 * len(panels), 3.1 * rows))
    axes = np.asarray(axes).reshape(rows, len(panels))
    for col, p in enumerate(panels):
        views = [("PCA", p["xy"], p["labels"])]
        if tsne:
            views.append(("t-SNE", p["tsne"]["xy"], p["tsne"]["labels"]))
        for row, (name, xy, labels) in enumerate(views):
            ax = axes[row, col]
            xy = np.asarray(xy)
            ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="hsv", vmin=0, vmax=n_classes, s=4)
            extra = f" (PC1+2 {sum(p['variance_share']):.0%})" if name == "PCA" else ""
            ax.set_title(f"{name}, {p['phase']}: step {p['step']}{extra}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{task} ({cond}): last layer, last position, coloured by answer", fontsize=9)
    return _save(fig, out, f"grok_pca_{cond}_{task}")


FIGURES = (
    (
        "accuracy",
        accuracy_figure,
        "curves",
        "Accuracy over training",
        "Train (dashed) and validation accuracy per seed on a log-step axis; shaded: the grokking "
        "phase from the median memorisation step to the median step of 99% validation accuracy.",
    ),
    (
        "clusters",
        cluster_figure,
        "representations",
        "Cluster metrics over training",
        "Silhouette, Davies-Bouldin, variance ratio and held-out linear-probe accuracy of the "
        "last-position representations per layer against validation accuracy: markers, the mean "
        "over seeds at the steps every seed snapshotted; thin lines, each seed at its own steps. "
        "Undefined values (see the notes) are gaps.",
    ),
    (
        "pca",
        pca_figure,
        "pca",
        "Representations before, during and after grokking",
        "First two principal components of the last layer's last-position representations, "
        "coloured by answer class (seed shown in the results).",
    ),
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
                        "title": f"{title}: {task}, {cond}",
                        "caption": caption,
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
            "shift": interval(
                f"comparisons.{i}.shift", comp["shift"], "signed", "signed", open_end="unbounded"
            ),
            "p_holm": Num(f"comparisons.{i}.p_holm", comp.get("p_holm"), "p"),
            "verdict": comp["verdict"],
            "reason": comp["reason"] or "",
        }
        for i, comp in enumerate(comps)
    ]
    reference = comps[0]["reference"] if comps else None
    return {
        "comp_rows": comp_rows,
        "alpha": Num("alpha", results.get("alpha", 0.05), "short"),
        "n_tested": sum(1 for c in comps if c.get("p_value") is not None),
        "reference": reference,
        "rep_rows": rep_rows,
        "title": results["study"].get("title") or results["study"]["name"],
        "question": results["study"].get("question", ""),
        "session": results["session"],
        "rows": rows,
        "notes": results.get("notes", []),
        "conditions": {
            # unset options (None: off, or the default) are not settings a reader needs
            k: {
                kk: v
                for kk, v in c["config"].items()
                if kk not in ("device", "threads") and v is not None
            }
            for k, c in results["conditions"].items()
        },
    }


def build_grok_report(session_dir: Path, *, pdf: bool = True) -> tuple[Path, Path | None]:
    """Write figures, report.md, report.html and the paper; returns (paper.tex, paper.pdf)."""
    session_dir = Path(session_dir)
    path = session_dir / "results" / "results.json"
    results = read_json(path)
    check_numbers(results, path)
    drawn = draw_all(results, session_dir / "figures")
    ctx = context(results)
    figs = []
    for d in drawn:
        png, pdf_path = (p.relative_to(session_dir).as_posix() for p in d["paths"])
        figs.append(
            {
                **{k: v for k, v in d.items() if k != "paths"},
                "png": png,
                "pdf": pdf_path,
                "stem": Markup(Path(png).stem),  # a file name: not LaTeX-escaped
            }
        )
    ctx["figures"] = figs
    md = md_env().get_template("grok_report.md.j2").render(**ctx)
    atomic_write_text(session_dir / "report.md", md)
    html_figs = [
        {
            **f,
            "data_uri": "data:image/png;base64,"
            + base64.b64encode((session_dir / f["png"]).read_bytes()).decode(),
        }
        for f in figs
    ]
    html = html_env().get_template("grok_report.html.j2").render(**{**ctx, "figures": html_figs})
    atomic_write_text(session_dir / "report.html", html)
    log = NumberLog()
    tex = tex_env(log).get_template("grok_paper.tex.j2").render(**ctx)
    tex_path = atomic_write_text(session_dir / "paper" / "paper.tex", tex)
    atomic_write_json(
        session_dir / "paper" / "numbers.json",
        {
            "schema": "smollab.numbers/1",
            "source": "../results/results.json",
            "paper": "paper.tex",
            "numbers": log.numbers,
        },
    )
    return tex_path, build_pdf(tex_path) if pdf else None
