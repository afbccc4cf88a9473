"""The grokking report's representation section: means only at steps every seed has, each seed's
late snapshots shown as its own, undefined metrics not printed as numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smollab.analysis.grokking import _notes, _representations
from smollab.analysis.representations import CENTROIDS_COINCIDE, top_k_share_undefined
from smollab.analysis.stats import describe_seeds, describe_steps
from smollab.io import atomic_write_json, read_json
from smollab.report.grokking import build_grok_report, cluster_figure, context

METRICS = ("silhouette", "davies_bouldin", "variance_ratio", "probe_acc")


def run_rep(steps: list[int], val: list[float], p: int = 7) -> dict[str, Any]:
    """A run's analyse_run output as it comes for x + y with every pair in the snapshot."""
    n = len(steps)
    layers = {lay: {m: list(val) for m in METRICS} for lay in ("first", "last")}
    layers["embed"] = {
        "silhouette": [-0.09] * n,
        "davies_bouldin": [None] * n,
        "variance_ratio": [None] * n,
        "probe_acc": [0.0] * n,
    }
    undefined = {
        f"layers.embed.{m}": {"reason": CENTROIDS_COINCIDE, "steps": steps}
        for m in ("davies_bouldin", "variance_ratio")
    }
    undefined["fourier.top_k_share"] = {"reason": top_k_share_undefined(p), "steps": steps}
    return {
        "steps": steps,
        "val_acc": val,
        "layers": layers,
        "fourier": {"top_k_share": [None] * n, "gini": [0.3] * n},
        "undefined": undefined,
        "pca": [
            {
                "step": s,
                "xy": [[0.0, 1.0], [1.0, 0.0]],
                "labels": [0, 1],
                "variance_share": [0.5, 0.2],
            }
            for s in steps
        ],
    }


def results(tmp_path: Path) -> dict[str, Any]:
    """QA's case: snapshot_steps = [0, 300], seed 0 stopped early at 240 (stop_after_99)."""
    reps = [run_rep([0, 240], [0.1, 1.0]), run_rep([0, 300], [0.2, 2 / 3])]
    g = describe_steps([230, None])
    out: dict[str, Any] = {
        "schema": "smollab.grok_results/1",
        "study": {"name": "grok-tiny"},
        "session": "s",
        "tasks": {"add": {"task": "grok.x_plus_y", "p": 7, "n_classes": 7}},
        "conditions": {
            "ref": {
                "seeds": [0, 1],
                "config": {"steps": 300, "stop_after_99": 10, "grokfast_alpha": None},
                "tasks": {
                    "add": {
                        "runs": [{"steps": 240}, {"steps": 300}],
                        "step_val_acc_99": g,
                        "memorisation_step": describe_steps([100, 100]),
                        "grokking_gap": describe_steps([130, None]),
                        "final_val_acc": describe_seeds([1.0, 2 / 3]),
                        "grokked": "1/2",
                    }
                },
            }
        },
        "curves": {},
        "representations": {"ref": {"add": _representations(reps, [0, 1])}},
        "pca": {},
        "comparisons": [],
    }
    out["notes"] = _notes(out)
    return out


def test_the_table_shows_only_steps_every_seed_has(tmp_path: Path) -> None:
    res = results(tmp_path)
    atomic_write_json(tmp_path / "results" / "results.json", res)
    build_grok_report(tmp_path, pdf=False)
    md = (tmp_path / "report.md").read_text()
    reps = md.split("## Representations")[1].split("## Conditions")[0]
    # before: "0 → 240" with the probe at mean(1.0 at step 240, 0.667 at step 300) = 83.3%
    assert "0 → 240" not in reps and "83.3%" not in reps
    # one step every seed has: its values alone (it printed "0 → 0 | 0.150 → 0.150")
    assert "| ref | add | 0 | 0.150 | 15.0% | 15.0% | not informative" in md
    assert "→" not in reps.split("| ref | add |")[1].split("\n")[0]
    assert "seed 0: step 240 (probe, last layer 100.0%)" in md
    assert "seed 1: step 300 (probe, last layer 66.7%)" in md
    assert "not informative for p <= 11" in reps and "100.0% → 100.0%" not in reps
    assert "layers.embed.davies_bouldin, layers.embed.variance_ratio undefined" in md
    html = (tmp_path / "report.html").read_text()
    assert "seed 0: step 240" in html and "not informative for p &lt;= 11" in html
    assert "<td>0</td><td>0.150</td>" in html
    tex = (tmp_path / "paper" / "paper.tex").read_text()
    assert "ref & add & 0 & 0.150 & 15.0\\% \\\\" in tex
    # the paper prints only numbers it can key into results.json
    numbers = read_json(tmp_path / "paper" / "numbers.json")["numbers"]
    assert "representations.ref.add.steps.0" in numbers
    assert not any(".steps.1" in k for k in numbers)
    assert (tmp_path / "figures" / "grok_clusters_ref_add.png").is_file()
    # the Conditions line lists settings, not unset options ("grokfast_alpha=")
    assert "- `ref`: steps=300, stop_after_99=10" in md and "grokfast_alpha" not in md


def test_context_keys_late_snapshots_into_results(tmp_path: Path) -> None:
    res = results(tmp_path)
    (row,) = context(res)["rep_rows"]
    assert [n.value for n in row["steps"]] == [0]
    assert row["fourier_undefined"] is True
    nums = [n for p in row["not_averaged"] for n in p.nums()]
    assert [(n.key, n.value) for n in nums] == [
        ("representations.ref.add.not_averaged.0.0", 240),
        ("representations.ref.add.per_seed.0.layers.last.probe_acc.1", 1.0),
        ("representations.ref.add.not_averaged.1.0", 300),
        ("representations.ref.add.per_seed.1.layers.last.probe_acc.1", 2 / 3),
    ]


def test_no_common_step_gives_no_row_but_a_note(tmp_path: Path) -> None:
    res = results(tmp_path)
    res["representations"]["ref"]["add"] = _representations(
        [run_rep([0, 240], [0.1, 1.0]), run_rep([10, 300], [0.2, 2 / 3])], [0, 1]
    )
    assert context(res)["rep_rows"] == []
    assert any("averaged over seeds only at the 0 steps" in n for n in _notes(res))


def test_cluster_figure_draws_undefined_values_as_gaps(tmp_path: Path) -> None:
    paths = cluster_figure(results(tmp_path), "ref", "add", tmp_path)
    assert all(p.is_file() for p in paths)


def test_report_and_paper_say_which_tasks_and_models_were_trained(tmp_path: Path) -> None:
    res = results(tmp_path)
    res["tasks"] = {
        "add": {
            "task": "grok.x_plus_y",
            "p": 23,
            "train_fraction": 0.5,
            "n_pairs": 529,
            "n_train": 264,
            "n_val": 265,
            "n_classes": 23,
        },
        "perm": {
            "task": "grok.permutation",
            "p": None,
            "train_fraction": 0.3,
            "n_pairs": 14400,
            "n_classes": 120,
        },  # results written before n_train/n_val were recorded
    }
    res["models"] = {"dec": {"source": "small:decoder", "config": {"n_layer": 2, "d_model": 64}}}
    res["conditions"]["ref"]["model"] = "dec"
    atomic_write_json(tmp_path / "results" / "results.json", res)
    build_grok_report(tmp_path, pdf=False)
    md = (tmp_path / "report.md").read_text()
    setup = md.split("## Tasks and models")[1].split("## Conditions")[0]
    assert (
        "- `add`: grok.x_plus_y (mod p = 23); 529 pairs, training fraction 0.5 (264 for "
        "training, 265 held out for validation)" in setup
    )
    assert "- `perm`: grok.permutation (120 elements); 14400 pairs, training fraction 0.3\n" in (
        setup
    )
    assert "- model `dec`: small:decoder (n_layer=2, d_model=64), trained from scratch in ref" in (
        setup
    )
    html = (tmp_path / "report.html").read_text()
    assert "<li><code>add</code>: grok.x_plus_y (mod p = 23); 529 pairs" in html
    tex = (tmp_path / "paper" / "paper.tex").read_text()
    methods = tex.split("\\section{Methods}")[1].split("\\section{Results}")[0]
    assert "\\texttt{add}: grok.x\\_plus\\_y (mod p = 23); 529 pairs" in methods
    assert "\\texttt{dec}: \\freetext{small:decoder (n\\_layer=2, d\\_model=64)" in methods
    numbers = read_json(tmp_path / "paper" / "numbers.json")["numbers"]
    assert {"tasks.add.p", "tasks.add.n_train", "tasks.add.n_val", "tasks.perm.n_classes"} <= set(
        numbers
    )


def test_a_seed_that_grokked_and_fell_back_below_99_is_noted(tmp_path: Path) -> None:
    res = results(tmp_path)
    add = res["conditions"]["ref"]["tasks"]["add"]
    # seed 0 reached 99% at 230 and ended at 100%; seed 1 reached it at 250, ended at 37.8%
    add["step_val_acc_99"] = describe_steps([230, 250])
    add["runs"] = [
        {"seed": 0, "steps": 240, "step_val_acc_99": 230, "final_val_acc": 1.0},
        {"seed": 1, "steps": 300, "step_val_acc_99": 250, "final_val_acc": 0.378},
    ]
    notes = _notes(res)
    fell = [n for n in notes if "ended the run below it" in n]
    assert fell == [
        "ref / add: 1 of 2 seeds that reached 99% validation accuracy ended the run below it "
        "(seed 1 37.8%): they count as grokked at their first crossing (step_val_acc_99), "
        "which did not last."
    ]
    # a seed that never reached 99% is noted as such, not as one that fell back
    add["step_val_acc_99"] = describe_steps([230, None])
    add["runs"][1]["step_val_acc_99"] = None
    assert not any("ended the run below it" in n for n in _notes(res))


def test_the_papers_conditions_list_reads_as_settings_not_quoted_json(tmp_path: Path) -> None:
    """QA: the paper printed {"batch_size": "64", "compile": "False", ...}, each value a quoted
    string; it now reads like the report's list, batch_size = 64, ..."""
    res = results(tmp_path)
    res["conditions"]["ref"]["config"] = {
        "steps": 300,
        "batch_size": 64,
        "compile": False,
        "betas": [0.9, 0.98],
        "grokfast_alpha": None,
    }
    atomic_write_json(tmp_path / "results" / "results.json", res)
    build_grok_report(tmp_path, pdf=False)
    tex = (tmp_path / "paper" / "paper.tex").read_text()
    line = tex.split("Conditions (the run settings")[1].split("\\end{itemize}")[0]
    assert '"' not in line and "\\{" not in line
    assert (
        "\\item ref: \\freetext{steps = 300}, \\freetext{batch\\_size = 64}, "
        "\\freetext{compile = False}, \\freetext{betas = [0.9, 0.98]}\n" in line
    )


def test_the_accuracy_caption_says_when_only_some_seeds_reached_99() -> None:
    """QA: with 2 of 3 seeds grokking the caption shaded 'the grokking phase' to a median step
    and said nothing of the seed that never reached 99%; the table did."""
    from smollab.report.grokking import accuracy_caption

    def caption(steps: list[int | None]) -> str:
        t = {
            "memorisation_step": describe_steps([100, 100, 100]),
            "step_val_acc_99": describe_steps(steps),
        }
        res = {"conditions": {"ref": {"tasks": {"add": t}}}, "curves": {"ref": {"add": {}}}}
        return str(accuracy_caption(res, "ref", "add"))

    some = caption([700, 790, None])
    assert "the median step of 99% validation accuracy (790)." in some
    assert "Only 2 of 3 seeds reached 99% validation accuracy" in some
    assert "counts a seed that did not as later than every seed that did" in some
    every = caption([700, 790, 800])
    assert "Shaded grey: the grokking phase" in every and "Only" not in every
