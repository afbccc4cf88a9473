"""The grokking report's figures say only what happened: the phase shaded in the accuracy figure
is grokking only when the seeds generalised, the PCA panels are phases only when the seed drawn
has both steps, and every axis and colour has its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smollab.analysis.grokking import _representations
from smollab.analysis.stats import describe_seeds, describe_steps
from smollab.io import atomic_write_json, read_json
from smollab.report import grokking
from smollab.report.grokking import (
    SPAN_GROKKING,
    SPAN_NOT_GENERALISED,
    STEP_LABEL,
    _phase_span,
    accuracy_figure,
    build_grok_report,
    cluster_figure,
    draw_all,
    pca_figure,
)

from .test_grok_report import run_rep

STEPS = [0, 10, 20, 50, 100, 200, 300, 400]


def curve(train: list[float], val: list[float], weight_norm: bool = True) -> dict[str, Any]:
    c: dict[str, Any] = {
        "step": STEPS,
        "train_acc": train,
        "val_acc": val,
        "train_loss": [1.0] * len(STEPS),
        "val_loss": [1.0] * len(STEPS),
    }
    if weight_norm:
        c["weight_norm"] = [50.0 - i for i in range(len(STEPS))]
    return c


def grok_results(
    mem: list[int | None],
    gen: list[int | None],
    *,
    weight_norm: bool = True,
    task: str = "grok.x_plus_y",
) -> dict[str, Any]:
    """A grokking study's results with one condition, one task and a seed per entry of ``mem``
    (its memorisation step) and ``gen`` (its step of 99% validation accuracy)."""
    seeds = list(range(len(mem)))
    perm = task == "grok.permutation"
    spec = {"task": task, "p": None if perm else 7, "n_classes": 120 if perm else 7}
    train = [0.1, 0.2, 0.5, 0.9, 1.0, 1.0, 1.0, 1.0]
    reps = [run_rep([0, 100, 200, 400], [0.1, 0.2, 0.5, 1.0]) for _ in seeds]
    panels = [
        {**p, "phase": phase}
        for p, phase in zip(
            [reps[0]["pca"][i] for i in (0, 2, 3)], ("before", "during", "after"), strict=True
        )
    ]
    return {
        "schema": "smollab.grok_results/1",
        "study": {"name": "grok-figures"},
        "session": "s",
        "tasks": {"add": spec},
        "conditions": {
            "ref": {
                "seeds": seeds,
                "config": {"steps": 400},
                "tasks": {
                    "add": {
                        "runs": [
                            {
                                "seed": s,
                                "steps": 400,
                                "memorisation_step": m,
                                "step_val_acc_99": g,
                            }
                            for s, m, g in zip(seeds, mem, gen, strict=True)
                        ],
                        "step_val_acc_99": describe_steps(gen),
                        "memorisation_step": describe_steps(mem),
                        "grokking_gap": describe_steps(
                            [
                                None if m is None or g is None else g - m
                                for m, g in zip(mem, gen, strict=True)
                            ]
                        ),
                        "final_val_acc": describe_seeds([0.5] * len(seeds)),
                        "grokked": f"{sum(g is not None for g in gen)}/{len(gen)}",
                    }
                },
            }
        },
        "curves": {
            "ref": {
                "add": {
                    str(s): curve(train, [0.0, 0.0, 0.1, 0.2, 0.5, 0.9, 1.0, 1.0], weight_norm)
                    for s in seeds
                }
            }
        },
        "representations": {"ref": {"add": _representations(reps, seeds)}},
        "pca": {"ref": {"add": {"seed": 0, "panels": panels}}},
        "comparisons": [],
        "notes": [],
    }


@pytest.fixture
def figs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures drawn (closed, but still there to inspect)."""
    drawn: list[Any] = []
    save = grokking._save

    def keep(fig: Any, out_dir: Path, stem: str) -> list[Path]:
        drawn.append(fig)
        return save(fig, out_dir, stem)

    monkeypatch.setattr(grokking, "_save", keep)
    return drawn


def legend_texts(fig: Any) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def spans(ax: Any) -> list[Any]:
    """The shaded step ranges (axvspan rectangles) of ``ax``."""
    return [p for p in ax.patches if p.get_x() is not None and p.get_height() == 1]


def caption(res: dict[str, Any], kind: str, tmp_path: Path) -> str:
    (d,) = [d for d in draw_all(res, tmp_path) if d["kind"] == kind]
    return f"{d['title']}. {d['caption']}"


def test_accuracy_shades_the_grokking_phase_only_when_the_seeds_generalised(
    tmp_path: Path, figs: list[Any]
) -> None:
    res = grok_results([100, 100, 120], [300, 320, None])
    assert _phase_span(res, "ref", "add") == ("grokking", 100, 320)
    accuracy_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    ax = fig.axes[0]
    (span,) = spans(ax)
    assert span.get_hatch() is None and span.get_x() == pytest.approx(100)
    assert SPAN_GROKKING in legend_texts(fig)
    text = caption(res, "accuracy", tmp_path)
    assert "grokking phase, from the median memorisation step (100)" in text
    assert "median step of 99% validation accuracy (320)" in text


def test_memorised_not_generalised_is_hatched_not_called_grokking(
    tmp_path: Path, figs: list[Any]
) -> None:
    res = grok_results([100, 120, 150], [None, None, None])
    assert _phase_span(res, "ref", "add") == ("not_generalised", 120, 400)
    accuracy_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    for ax in fig.axes:  # both panels: accuracy and weight norm
        (span,) = spans(ax)
        assert span.get_hatch() == "///" and span.get_facecolor()[3] == 0  # no grey fill
    texts = legend_texts(fig)
    assert SPAN_NOT_GENERALISED in texts and SPAN_GROKKING not in texts
    assert not any("grokking" in t for t in texts)
    text = caption(res, "accuracy", tmp_path)
    assert "memorised, not generalised within the run" in text
    assert "median memorisation step (120) to the end of the run" in text
    assert "seeds that reached it: 0 of 3" in text
    assert "to the median step of 99% validation accuracy" not in text


def test_nothing_is_shaded_when_nothing_was_memorised(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([None, None], [None, None])
    assert _phase_span(res, "ref", "add") is None
    accuracy_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    assert all(not spans(ax) for ax in fig.axes)
    texts = legend_texts(fig)
    assert SPAN_GROKKING not in texts and SPAN_NOT_GENERALISED not in texts
    assert "Nothing is shaded" in caption(res, "accuracy", tmp_path)


def test_accuracy_legend_is_compact_and_outside_the_axes(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([100, 100, 120], [300, 320, None])
    accuracy_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    ax = fig.axes[0]
    assert ax.get_legend() is None  # not over the curves
    (legend,) = fig.legends
    # a colour per seed, a line style each for train and validation, the 99% line, the span
    assert legend_texts(fig) == [
        "seed 0",
        "seed 1",
        "seed 2",
        "train",
        "validation",
        "99% accuracy",
        SPAN_GROKKING,
    ]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1  # right of the axes
    assert all(t.get_fontsize() >= 8 for t in legend.get_texts())


def test_weight_norm_panel_shares_the_log_step_axis(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([100, 100], [300, 320])
    accuracy_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    acc, wn = fig.axes
    assert wn.get_ylabel() == "weight norm\n(L2, all parameters)"
    assert wn.get_xscale() == "log" and wn.get_shared_x_axes().joined(acc, wn)
    assert wn.get_xlabel() == STEP_LABEL
    assert len(wn.get_lines()) == 2
    # step 0 drawn at 1 on the log axis
    assert wn.get_lines()[0].get_xdata()[0] == 1
    assert "weight norm" in caption(res, "accuracy", tmp_path)
    assert "step 0 is drawn at 1" in caption(res, "accuracy", tmp_path)


def test_results_without_weight_norm_skip_the_panel(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([100, 100], [300, 320], weight_norm=False)
    accuracy_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    (ax,) = fig.axes
    assert ax.get_xlabel() == STEP_LABEL
    text = caption(res, "accuracy", tmp_path)
    assert "weight norm" not in text and text.startswith("Accuracy over training")


def test_pca_panels_are_phases_only_when_the_seed_grokked(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([100, 100], [300, 320])
    pca_figure(res, "ref", "add", tmp_path)
    titles = [ax.get_title() for ax in figs[0].axes[:3]]
    assert [t.split(":")[0] for t in titles] == ["PCA, before", "PCA, during", "PCA, after"]
    text = caption(res, "pca", tmp_path)
    assert text.startswith("Representations before, during and after grokking")


@pytest.mark.parametrize("mem, gen", [([None, None], [None, None]), ([100, 100], [None, 300])])
def test_pca_panels_without_both_steps_are_snapshots(
    tmp_path: Path, figs: list[Any], mem: list[Any], gen: list[Any]
) -> None:
    res = grok_results(mem, gen)
    pca_figure(res, "ref", "add", tmp_path)
    titles = [ax.get_title() for ax in figs[0].axes[:3]]
    assert titles[0].startswith("PCA, first snapshot: step 0")
    assert titles[1].startswith("PCA, middle snapshot: step 200")
    assert titles[2].startswith("PCA, last snapshot: step 400")
    assert not any(w in t for t in titles for w in ("before", "during", "after"))
    text = caption(res, "pca", tmp_path)
    assert text.startswith("Representations at the first, middle and last snapshot")
    assert "first, middle and last snapshots, not phases of grokking" in text


@pytest.mark.parametrize(
    "task, label",
    [
        ("grok.x_plus_y", "answer (residue mod 7)"),
        ("grok.permutation", "answer (index of the permutation in S5, lexicographic)"),
    ],
)
def test_pca_has_a_colour_key(tmp_path: Path, figs: list[Any], task: str, label: str) -> None:
    res = grok_results([100, 100], [300, 320], task=task)
    pca_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    cbar = fig.axes[-1]
    assert cbar.get_ylabel() == label
    n = res["tasks"]["add"]["n_classes"]
    assert all(0 <= t <= n - 1 for t in cbar.get_yticks())


def test_cluster_axes_are_labelled_and_legible(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([100, 100], [300, 320])
    cluster_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    left = [ax for ax in fig.axes if ax.get_title()]  # the panels (twins have no title)
    twins = [ax for ax in fig.axes if not ax.get_title() and ax.axison]
    assert len(left) == 5 and len(twins) == 5  # four metrics and the Fourier panel
    assert all(ax.get_ylabel() == "val. accuracy" for ax in twins)
    # every column shows the step axis at its lowest visible panel
    labelled = [ax for ax in left if ax.get_xlabel() == STEP_LABEL]
    fourier = next(ax for ax in left if ax.get_title().startswith("Fourier"))
    assert fourier in labelled and len(labelled) == 3
    fig.canvas.draw()
    for ax in left + twins:
        for lab in ax.get_xticklabels() + ax.get_yticklabels():
            assert lab.get_fontsize() >= 8
    for ax in labelled:
        assert any(lab.get_text() for lab in ax.get_xticklabels())
    assert "step 0 is drawn at 1" in caption(res, "clusters", tmp_path)


def test_report_prints_the_captions_numbers_keyed_into_results(tmp_path: Path) -> None:
    res = grok_results([100, 120, 150], [None, None, None])
    atomic_write_json(tmp_path / "results" / "results.json", res)
    build_grok_report(tmp_path, pdf=False)
    md = (tmp_path / "report.md").read_text()
    assert "memorised, not generalised within the run" in md
    assert "Representations at the first, middle and last snapshot (seed 0): add, ref" in md
    numbers = read_json(tmp_path / "paper" / "numbers.json")["numbers"]
    assert numbers["conditions.ref.tasks.add.memorisation_step.median"]["text"] == "120"
    assert numbers["pca.ref.add.seed"]["text"] == "0"
    for stem in ("grok_accuracy_ref_add", "grok_clusters_ref_add", "grok_pca_ref_add"):
        assert (tmp_path / "figures" / f"{stem}.png").is_file()


def test_pca_names_its_seed_and_each_snapshots_validation_accuracy(
    tmp_path: Path, figs: list[Any]
) -> None:
    """QA: only seed 1 grokked, and the 'after' snapshot is one where validation accuracy fell
    again (no snapshot from its step of 99% on kept it): the titles say seed 1 and 27%."""
    res = grok_results([100, 100], [None, 200])
    pca = res["pca"]["ref"]["add"]
    pca.update(seed=1, phases_of_grokking=True)
    for p, v in zip(pca["panels"], (0.1, 0.5, 0.27), strict=True):
        p["val_acc"] = v
    pca_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles[2] == "PCA, after: step 400\nval. acc. 27%; PC1+2: 70% of variance"
    assert titles[0].startswith("PCA, before: step 0\nval. acc. 10%")
    assert "seed 1" in fig._suptitle.get_text()
    text = caption(res, "pca", tmp_path)
    assert text.startswith("Representations before, during and after grokking (seed 1): add, ref")
    assert "representations of seed 1" in text
    assert "which it reached at step 200" in text
    assert "its first snapshot from that step on, where validation accuracy was 27.0%" in text
    pca["panels"][2]["val_acc"] = 1.0
    assert "its last snapshot from that step on at which validation accuracy was still 99%" in (
        caption(res, "pca", tmp_path)
    )


def test_pca_follows_the_analysis_flag_for_phases(tmp_path: Path, figs: list[Any]) -> None:
    """Both steps, but no snapshot after the step of 99% (the analysis says so): snapshots."""
    res = grok_results([100, 100], [300, 320])
    res["pca"]["ref"]["add"]["phases_of_grokking"] = False
    pca_figure(res, "ref", "add", tmp_path)
    titles = [ax.get_title() for ax in figs[0].axes[:3]]
    assert titles[2].startswith("PCA, last snapshot: step 400")
    assert "not phases of grokking" in caption(res, "pca", tmp_path)


def test_one_block_draws_first_equals_last_once(tmp_path: Path, figs: list[Any]) -> None:
    res = grok_results([100, 100], [300, 320])
    res["representations"]["ref"]["add"]["first_is_last"] = True
    cluster_figure(res, "ref", "add", tmp_path)
    (fig,) = figs
    sil = next(ax for ax in fig.axes if ax.get_title().startswith("Silhouette"))
    labels = [t.get_text() for t in sil.get_legend().get_texts()]
    assert sorted(labels) == ["embed", "first = last layer"]
    # a mean line and one line per seed for each of the two layers drawn
    assert len(sil.get_lines()) == 2 * (1 + 2)
    assert "first and last layers are the same module, drawn once" in caption(
        res, "clusters", tmp_path
    )
    figs.clear()
    res["representations"]["ref"]["add"]["first_is_last"] = False
    cluster_figure(res, "ref", "add", tmp_path)
    sil = next(ax for ax in figs[0].axes if ax.get_title().startswith("Silhouette"))
    assert sorted(t.get_text() for t in sil.get_legend().get_texts()) == ["embed", "first", "last"]


def test_figures_are_the_same_bytes_when_drawn_again(tmp_path: Path) -> None:
    """Rebuilding a grokking report from the same results rewrites the same figure files (no
    creation date in the PDFs), as the language-model report's figures do."""
    res = grok_results([100, 100, 120], [300, 320, None])
    a = accuracy_figure(res, "ref", "add", tmp_path / "a")
    b = accuracy_figure(res, "ref", "add", tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b] and len(a) == 2
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes(), x.name
    pdf = next(p for p in a if p.suffix == ".pdf").read_bytes()
    assert b"CreationDate" not in pdf
