"""The report of a pretraining study: figures, ``report.md``/``.html`` and ``paper/paper.tex``
(+ ``numbers.json`` and, with TeX, ``paper.pdf``), all from ``results/results.json`` alone.

Figures (PNG + PDF in ``figures/``):

* ``pretrain_curves``: training loss at every step and validation loss (mean NLL per token on
  the first ``eval_items`` held-out documents) at every evaluation, one colour per trained
  condition, each seed a thin line and, with several seeds, their mean a thick one;
* ``pretrain_bits_per_byte``: each run's bits per byte on all held-out documents with its 95%
  bootstrap interval over documents, grouped by condition (the seeds side by side).

Numbers enter the templates as :class:`~smollab.report.context.Num` keyed into the results, as
in every report; the documents are written by :func:`~smollab.report.build.
write_kind_documents` from the ``pretrain_*`` templates.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from smollab.errors import DataError
from smollab.io import read_json
from smollab.report.build import kind_figures, write_kind_documents
from smollab.report.context import (
    Ident,
    Num,
    Phrase,
    check_numbers,
    interval,
    joined,
    phrase,
    seed_summary,
)
from smollab.report.figures import STYLE, color, save_figure
from smollab.study.pretrain_kind import SCHEMA

#: figure stems start with this (an earlier build's figures that this one does not draw go)
PREFIX = "pretrain_"
#: the training settings the setup names, in this order
SETTINGS = ("steps", "seq_len", "batch_size", "lr", "eval_every", "eval_items")


def _remake(session_dir: Path) -> str:
    """The command that (re)writes a session's results.json: its own study, finished runs
    reused."""
    spec = session_dir / "study.toml"
    cmd = f"smollab study {shlex.quote(str(spec))} --out {shlex.quote(str(session_dir.parent))}"
    return cmd + f" --session-name {shlex.quote(session_dir.name)}"


def load_pretrain_results(session_dir: Path) -> dict[str, Any]:
    """``results/results.json`` of a pretraining session, checked: a DataError naming the
    file and the command that writes it when it is missing or from before curves and
    comparisons were recorded."""
    path = session_dir / "results" / "results.json"
    if not path.is_file():
        raise DataError(
            f"No results file at {path}: the pretraining report is drawn from it alone. Write "
            f"it by running the session's study, `{_remake(session_dir)}` (finished runs are "
            "reused), then run `smollab report` again."
        )
    results = read_json(path)
    found = results.get("schema") if isinstance(results, dict) else type(results).__name__
    if found != SCHEMA:
        raise DataError(
            f"{path} has schema {found!r}; the pretraining report reads {SCHEMA!r} (learning "
            f"curves and comparisons between conditions). Rewrite it with "
            f"`{_remake(session_dir)}` (finished runs are reused), then run `smollab report` "
            "again."
        )
    check_numbers(results, path)
    return results


# --------------------------------------------------------------------------- figures


def _cond_colors(results: dict[str, Any]) -> dict[str, str]:
    return {name: color(i) for i, name in enumerate(results["conditions"])}


def _mean_curve(runs: list[list[dict[str, Any]]], field: str) -> tuple[np.ndarray, np.ndarray]:
    """The mean over seeds at the steps every seed logged."""
    common = set.intersection(*({r["step"] for r in rows} for rows in runs))
    steps = np.array(sorted(common), float)
    vals = [{r["step"]: r[field] for r in rows} for rows in runs]
    return steps, np.array([np.mean([v[s] for v in vals]) for s in steps])


def curves_figure(results: dict[str, Any], out: Path) -> list[Path]:
    """Training and validation loss against step per trained condition (see the module)."""
    curves = {c: s for c, s in results["curves"].items() if s}
    if not curves:
        return []
    colors = _cond_colors(results)
    fig = Figure(figsize=(9.0, 3.4))
    ax_t, ax_v = fig.subplots(1, 2)
    for ax, part, field in ((ax_t, "train", "loss"), (ax_v, "eval", "val_loss")):
        for cond, seeds in curves.items():
            runs = [run[part] for _, run in sorted(seeds.items()) if run[part]]
            for rows in runs:
                ax.plot([r["step"] for r in rows], [r[field] for r in rows], color=colors[cond],
                        lw=0.8, alpha=0.45 if len(runs) > 1 else 0.9,
                        marker="o" if part == "eval" else None, ms=2.5)  # fmt: skip
            if len(runs) > 1:
                steps, mean = _mean_curve(runs, field)
                ax.plot(steps, mean, color=colors[cond], lw=2.0)
            ax.plot([], [], color=colors[cond], lw=2.0, label=cond)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (NLL per token)")
    ax_t.set_title("training loss")
    ax_v.set_title("validation loss (held-out documents)")
    ax_v.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return save_figure(fig, out, f"{PREFIX}curves")


def bits_per_byte_figure(results: dict[str, Any], out: Path) -> list[Path]:
    """Each run's bits per byte with its 95% interval over documents, by condition."""
    colors = _cond_colors(results)
    conds = list(results["conditions"].items())
    fig = Figure(figsize=(max(4.0, 1.3 * len(conds) + 2.0), 3.2))
    ax = fig.add_subplot()
    for x, (name, c) in enumerate(conds):
        runs = c["runs"]
        offsets = np.linspace(-0.15, 0.15, len(runs)) if len(runs) > 1 else [0.0]
        for dx, r in zip(offsets, runs, strict=True):
            m = r["metrics"]["bits_per_byte"]
            err = [[m["estimate"] - m["low"]], [m["high"] - m["estimate"]]]
            ax.errorbar(x + dx, m["estimate"], yerr=err, fmt="o", color=colors[name],
                        ecolor="black", elinewidth=1, capsize=3, ms=5)  # fmt: skip
        if len(runs) > 1:
            mean = c["over_seeds"]["bits_per_byte"]["mean"]
            ax.hlines(mean, x - 0.3, x + 0.3, color=colors[name], lw=1.5, ls="--")
    ax.set_xticks(range(len(conds)), [name for name, _ in conds])
    ax.set_xlim(-0.6, len(conds) - 0.4)
    ax.set_xlabel("condition")
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title(f"{results['task']}: bits per byte on held-out documents")
    fig.tight_layout()
    return save_figure(fig, out, f"{PREFIX}bits_per_byte")


def _curves_caption(results: dict[str, Any]) -> Phrase:
    untrained = [Ident(n) for n, c in results["conditions"].items() if not c["trained"]]
    tail = (
        phrase(" ", joined(untrained), " is evaluated as it is and has no curve.")
        if untrained
        else ""
    )
    return phrase(
        "Left: training loss at every step (mean NLL per token of the batch). Right: validation "
        "loss (mean NLL per token on the first eval_items held-out documents, the monitor's "
        "subset) at every evaluation. One colour per condition; each seed a thin line and, "
        "with several seeds, their mean (at the steps every seed logged) a thick one.",
        tail,
    )


BPB_CAPTION = (
    "Bits per byte of each run on all held-out documents (-sum log p / sum bytes / ln 2; "
    "lower is better), with its 95% percentile bootstrap interval over documents; seeds side "
    "by side, and with several seeds their mean as a dashed line."
)


def draw_all(results: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """Draw every figure under ``out``; remove this report's figures that an earlier build
    drew and this one does not (a condition that no longer trains)."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    with mpl.rc_context(STYLE):
        for title, draw, caption in (
            ("Learning curves", curves_figure, _curves_caption(results)),
            ("Bits per byte by condition", bits_per_byte_figure, phrase(BPB_CAPTION)),
        ):
            paths = draw(results, out)
            if paths:
                drawn.append({"title": title, "caption": caption, "paths": paths})
    keep = {p for d in drawn for p in d["paths"]}
    for old in out.iterdir():
        if old.stem.startswith(PREFIX) and old.suffix in (".png", ".pdf") and old not in keep:
            old.unlink()
    return drawn


# --------------------------------------------------------------------------- context


def _iv(key: str, iv: dict[str, Any] | None, kind: str = "sig") -> Phrase:
    return interval(key, iv, kind, kind)


def _setup(results: dict[str, Any]) -> dict[str, Any]:
    """The corpus, its split, the models and each condition's settings, as results hold them."""
    data = results["data"]
    files = [str(v) for v in (data.get("files") or {}).values()]
    n_test, n_train = data.get("n_test"), data.get("n_train")
    split = phrase(
        Num("data.n_test", n_test, "count"),
        " test document" + ("" if n_test == 1 else "s"),
        " from test_path" if data.get("test_set") == "test_path" else " held out of path",
        ", ",
        Num("data.n_train", n_train, "count"),
        " for training",
    )
    if data.get("n_train_removed"):
        split = phrase(
            split,
            " (",
            Num("data.n_train_removed", data["n_train_removed"], "count"),
            " left out of training for being test documents)",
        )
    if data.get("n_empty"):
        split = phrase(
            split, "; ", Num("data.n_empty", data["n_empty"], "count"), " empty record(s) skipped"
        )
    if data.get("test_fraction") is not None:
        split = phrase(
            split,
            "; test fraction ",
            Num("data.test_fraction", data["test_fraction"], "short"),
            ", split seed ",
            Num("data.data_seed", data.get("data_seed"), "count"),
        )
    models = []
    for name, m in results["models"].items():
        cfg = [
            phrase(f"{k}=", Num(f"models.{name}.config.{k}", v, "short"))
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"{k}={v}"
            for k, v in (m.get("config") or {}).items()
        ]
        params = (
            phrase(", ", Num(f"models.{name}.n_params", m["n_params"], "params"), " parameters")
            if m.get("n_params") is not None
            else ""
        )
        # char and BPE runs of one scratch:ARCH differ only here
        vocab = (
            phrase(", vocabulary ", Num(f"models.{name}.vocab_size", m["vocab_size"], "count"))
            if m.get("vocab_size") is not None
            else ""
        )
        tokenizer = (
            phrase("; tokenizer ", m["tokenizer"], vocab) if m.get("tokenizer") is not None else ""
        )
        models.append(
            {
                "name": Ident(name),
                "source": m["source"],
                "text": phrase(*(["(", joined(cfg), ")"] if cfg else []), params, tokenizer),
            }
        )
    conditions = []
    for name, c in results["conditions"].items():
        key = f"conditions.{name}"
        seeds = [Num(f"{key}.seeds.{i}", s, "count") for i, s in enumerate(c["seeds"])]
        train = c.get("train") or {}
        settings = [
            phrase(f"{k} ", Num(f"{key}.train.{k}", train[k], "short"))
            for k in SETTINGS
            if train.get(k) is not None
        ]
        conditions.append(
            {
                "name": Ident(name),
                "model": Ident(c["model"]),
                "what": phrase("trained: ", joined(settings))
                if c["trained"]
                else "evaluated as it is (no training)",
                "seeds": phrase("seeds ", joined(seeds)),
            }
        )
    # what was left out of the data, and runs that passed over their text too often
    notes = list(results.get("notes", []))
    return {
        "files": files,
        "split": split,
        "models": models,
        "conditions": conditions,
        "notes": notes,
    }


def _rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, c in results["conditions"].items():
        for i, r in enumerate(c["runs"]):
            key = f"conditions.{name}.runs.{i}"
            m = r["metrics"]
            rows.append(
                {
                    "condition": Ident(name),
                    "seed": Num(f"{key}.seed", r["seed"], "count"),
                    **{
                        metric: _iv(f"{key}.metrics.{metric}", m.get(metric))
                        for metric in (
                            "token_perplexity",
                            "word_perplexity",
                            "byte_perplexity",
                            "bits_per_byte",
                        )
                    },
                    "loss": Num(f"{key}.final_train_loss", r.get("final_train_loss"), "num"),
                }
            )
    return rows


def _seed_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Conditions with several seeds: the mean ± std over seeds."""
    return [
        {
            "condition": Ident(name),
            "n": Num(f"conditions.{name}.over_seeds.bits_per_byte.n", len(c["runs"]), "count"),
            "bits_per_byte": seed_summary(
                f"conditions.{name}.over_seeds.bits_per_byte",
                c["over_seeds"]["bits_per_byte"],
                "sig",
                "sig2",
            ),
            "token_perplexity": seed_summary(
                f"conditions.{name}.over_seeds.token_perplexity",
                c["over_seeds"]["token_perplexity"],
                "sig",
                "sig2",
            ),
        }
        for name, c in results["conditions"].items()
        if len(c["runs"]) > 1
    ]


def _comp_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, comp in enumerate(results["comparisons"]):
        key = f"comparisons.{i}"
        pooled = comp["pooled_bits_per_byte"]
        rows.append(
            {
                "condition": Ident(comp["condition"]),
                "seeds": phrase(
                    Num(f"{key}.n_seeds", comp["n_seeds"], "count"),
                    " vs ",
                    Num(f"{key}.n_seeds_reference", comp["n_seeds_reference"], "count"),
                ),
                "bpb": Num(f"{key}.pooled_bits_per_byte.condition", pooled["condition"], "sig"),
                "bpb_ref": Num(f"{key}.pooled_bits_per_byte.reference", pooled["reference"], "sig"),
                "diff": _iv(f"{key}.bits_per_byte", comp["bits_per_byte"], "signed4"),
                "ratio": _iv(f"{key}.token_perplexity_ratio", comp["token_perplexity_ratio"])
                if comp["token_perplexity_ratio"] is not None
                else "not comparable",
                "p_holm": Num(f"{key}.p_holm", comp["p_holm"], "p"),
                "verdict": comp["verdict"],
                "token_note": comp.get("token_note") or "",
            }
        )
    return rows


def context(results: dict[str, Any]) -> dict[str, Any]:
    comps = results["comparisons"]
    return {
        "title": results.get("title") or results["study"],
        "session": results["session"],
        "task": Ident(results["task"]),
        "n_test": Num("data.n_test", results["data"].get("n_test"), "count"),
        "setup": _setup(results),
        "rows": _rows(results),
        "seed_rows": _seed_rows(results),
        "comp_rows": _comp_rows(results),
        "reference": Ident(results["reference"]) if results.get("reference") else None,
        "n_comparisons": Num("comparisons.length", len(comps), "count"),
        "alpha": Num("alpha", results.get("alpha"), "short"),
    }


def build_pretrain_report(session_dir: Path, *, pdf: bool = True) -> tuple[Path, Path | None]:
    """Write figures, report.md, report.html and the paper; returns (paper.tex, paper.pdf).

    Raises:
        DataError: ``results/results.json`` is missing or not a ``smollab.pretrain/2`` file.
    """
    session_dir = Path(session_dir)
    results = load_pretrain_results(session_dir)
    drawn = draw_all(results, session_dir / "figures")
    ctx = context(results)
    ctx["figures"] = kind_figures(session_dir, drawn)
    return write_kind_documents(session_dir, ctx, "pretrain", pdf=pdf)
