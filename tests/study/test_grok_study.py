"""A grokking study through the study engine: spec checks, session, reuse, resume, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError
from smollab.io import read_json
from smollab.study.executor import InlineExecutor
from smollab.study.problem import load_problem
from smollab.study.runspec import expand
from smollab.study.session import run_study
from smollab.study.spec import loads_spec

ROOT = Path(__file__).resolve().parents[2]

SPEC = """
[study]
name = "grok-tiny"
kind = "grok"
seeds = [0, 1]

[[models]]
name = "tiny"
source = "small:decoder"
config = {{ d_model = 32, n_head = 2 }}

[[tasks]]
id = "add"
task = "grok.x_plus_y"
p = {p}
{extra_task}

[[conditions]]
name = "ref"
[conditions.config]
steps = {steps}
batch_size = 16
lr = 3e-3
eval_every = 5
checkpoint_every = 10
snapshot_steps = {snaps}
snapshot_points = 40
{extra}
"""


def spec_text(
    p: int = 7, steps: int = 30, snaps: str = "[0, 10, 30]", extra: str = "", extra_task: str = ""
) -> str:
    return SPEC.format(p=p, steps=steps, snaps=snaps, extra=extra, extra_task=extra_task)


def test_reference_protocol_expands_to_four_tasks_times_three_seeds() -> None:
    prob = load_problem(ROOT / "problems" / "grokking_representations.md")
    runs = expand(prob.spec)
    assert len(runs) == 12 and len({r.hash for r in runs}) == 12
    assert {r.tasks[0]["task"] for r in runs} == {
        "grok.x_plus_y",
        "grok.x_minus_y",
        "grok.x_div_y",
        "grok.permutation",
    }
    assert runs[0].label == "reference/x_plus_y/seed0"
    # the template's attention initialisation (nn.MultiheadAttention)
    assert runs[0].model.config["init"] == "mha"
    cfg = runs[0].config
    assert (cfg["lr"], cfg["weight_decay"], cfg["batch_size"], cfg["steps"]) == (
        1e-3,
        0.5,
        512,
        7500,
    )


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"extra_task": "train_fraction = 1.0"}, "train_fraction"),
        ({"snaps": "[0, 31]"}, "outside the run"),
        ({"extra": "tsne_points = 60"}, "t-SNE asks for 60 points"),
        ({"p": 5, "extra": "tsne_points = 30"}, "only 25 pairs"),
        ({"extra": "learning_rate = 1"}, "unknown field"),
        # caught when the spec is read, not when a run starts
        ({"p": 3, "extra_task": "train_fraction = 0.01"}, r"tasks\[0\]: field 'train_fraction'"),
        ({"extra": 'device = "tpu"'}, r"conditions\[0\].config: device='tpu' is not a device"),
        ({"snaps": '"some"'}, r"snapshot_steps is 'auto'.*'none', or a list of steps"),
    ],
)
def test_bad_specs(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        loads_spec(spec_text(**kw), "s.toml")


def test_reference_condition_must_exist() -> None:
    text = spec_text().replace("seeds = [0, 1]", 'seeds = [0, 1]\nreference = "fast"')
    with pytest.raises(ConfigError, match=r"study.reference names condition 'fast'.*\['ref'\]"):
        loads_spec(text, "s.toml")
    ok = text + '\n[[conditions]]\nname = "fast"\n[conditions.config]\nsteps = 30\n'
    assert loads_spec(ok, "s.toml").study.reference == "fast"


def test_a_train_table_gets_the_grokking_hint_first_and_once() -> None:
    """[conditions.train] holds a language-model study's fine-tuning fields: a grokking study's
    settings there are not listed as unknown fine-tuning fields; the message says where they go,
    once, and still names the spec's other errors."""
    train = spec_text().replace("[conditions.config]", "[conditions.train]")
    for text in (
        train,  # snapshot_steps etc. are no fine-tuning fields
        train.replace("snapshot_steps = [0, 10, 30]\nsnapshot_points = 40\n", ""),
    ):
        with pytest.raises(ConfigError) as err:
            loads_spec(text, "s.toml")
        msg = err.value.message
        assert msg.startswith(
            "s.toml: conditions[0] ('ref'): a grokking study configures training in "
            "[conditions.config]"
        )
        assert "rename the table to [conditions.config]" in msg
        assert msg.count("[conditions.config]") == 2 and "Did you mean" not in msg
        assert "Valid fields" not in msg
    two = (
        train
        + '\n[[conditions]]\nname = "b"\nbogus = 1\n[conditions.train]\nsteps = 30\n'
        + '\n[[conditions]]\nname = "c"\n[conditions.config]\nsteps = 30\n'
    )
    with pytest.raises(ConfigError) as err:
        loads_spec(two, "s.toml")
    msg = err.value.message
    assert msg.startswith("s.toml: conditions[0] ('ref') and conditions[1] ('b'): a grokking")
    assert "rename these tables" in msg and msg.count("a grokking study") == 1
    # the other error is still named, after the hint
    assert msg.index("unknown field 'conditions[1].bogus'") > msg.index("rename these tables")


def test_division_by_a_composite_modulus_is_refused() -> None:
    text = spec_text().replace('task = "grok.x_plus_y"\np = 7', 'task = "grok.x_div_y"\np = 9')
    with pytest.raises(ConfigError, match="prime"):
        loads_spec(text, "s.toml")


def test_kinds_do_not_mix() -> None:
    text = spec_text().replace('task = "grok.x_plus_y"', 'task = "arith.mul"')
    with pytest.raises(ConfigError):
        loads_spec(text, "s.toml")
    with pytest.raises(ConfigError, match="Unknown study kind"):
        loads_spec(spec_text().replace('kind = "grok"', 'kind = "grokk"'), "s.toml")
    with pytest.raises(ConfigError, match="small from-scratch model"):
        loads_spec(spec_text().replace("small:decoder", "scratch:gpt2"), "s.toml")


def _run(text: str, out: Path):
    return run_study(
        loads_spec(text, "s.toml"), text, out_root=out, executor=InlineExecutor(), pdf=False
    )


def test_session_reuses_and_resumes_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smollab.study.grok_kind import GrokKind

    monkeypatch.setattr(GrokKind, "report", lambda self, d, pdf: (None, None))  # tested below
    text = spec_text(steps=20, snaps="[0, 20]")
    d = _run(text, tmp_path).session_dir
    results = read_json(d / "results" / "results.json")
    block = results["conditions"]["ref"]["tasks"]["add"]
    assert [r["seed"] for r in block["runs"]] == [0, 1]
    assert all(r["final_weight_norm"] > 0 for r in block["runs"])
    assert block["final_weight_norm"]["n"] == 2
    assert (d / "data" / "add_split_ref_seed1.json").is_file()
    # a run killed after its step-10 checkpoint: re-running resumes it and ends the same
    run_dir = d / "runs" / block["runs"][0]["hash"]
    before = read_json(run_dir / "train_summary.json")
    for f in ("record.json", "train_summary.json", "representations.json"):
        (run_dir / f).unlink()
    (run_dir / "ckpt" / "final.pt").unlink()
    res2 = _run(text, tmp_path)
    after = read_json(run_dir / "train_summary.json")
    assert after["final_val_acc"] == before["final_val_acc"]
    assert after["step_val_acc_99"] == before["step_val_acc_99"]
    assert len(res2.outcomes) == 1  # the other run was reused


def test_a_changed_spec_moves_the_previous_outputs_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smollab.study.grok_kind import GrokKind

    monkeypatch.setattr(GrokKind, "report", lambda self, d, pdf: (None, None))
    text = spec_text(steps=20, snaps="[0, 20]")
    d = _run(text, tmp_path).session_dir
    (d / "report.md").write_text("the report a user read")
    assert _run(text, tmp_path).outcomes == [] and not (d / "previous").exists()  # same spec
    # (the re-run re-aggregates: its results.json, with its own "created" time, is what a
    # changed spec moves aside)
    old_results = (d / "results" / "results.json").read_text()
    changed = text.replace("lr = 3e-3", "lr = 2e-3").replace("seeds = [0, 1]", "seeds = [0]")
    res = _run(changed, tmp_path)
    (kept,) = (d / "previous").iterdir()
    assert (kept / "study.toml").read_text() == text
    assert (kept / "results" / "results.json").read_text() == old_results
    assert (kept / "report.md").read_text() == "the report a user read"
    assert (d / "study.toml").read_text() == changed and len(res.outcomes) == 1
    # the dropped seed's split goes with the old spec; the new spec's is linked again
    assert (kept / "data" / "add_split_ref_seed1.json").is_file()
    assert sorted(p.name for p in (d / "data").iterdir()) == [
        "add_split_ref_seed0.json",
        "add_task.json",
    ]
    log = (d / "session_log.jsonl").read_text()
    assert '"spec_changed"' in log and f"previous/{kept.name}" in log


@pytest.mark.slow  # ~15 s: two runs, representation analysis, all figures, then the CLI report
def test_session_end_to_end_with_report(tmp_path: Path, cli: Any) -> None:
    text = spec_text()
    res = _run(text, tmp_path)
    d = res.session_dir
    for f in (
        "report.md",
        "report.html",
        "paper/paper.tex",
        "paper/numbers.json",
        "critiques.txt",
        "data/add_split_ref_seed0.json",
        "data/add_task.json",
    ):
        assert (d / f).is_file(), f
    for kind in ("accuracy", "clusters", "pca"):
        assert (d / "figures" / f"grok_{kind}_ref_add.png").is_file()
    results = read_json(d / "results" / "results.json")
    assert results["schema"] == "smollab.grok_results/1"
    add = results["conditions"]["ref"]["tasks"]["add"]
    assert add["runs"][0]["final_weight_norm"] > 0 and add["final_weight_norm"]["mean"] > 0
    reps = results["representations"]["ref"]["add"]
    assert reps["steps"] == [0, 10, 30]
    assert set(reps["layers"]) == {"embed", "first", "last"}
    assert reps["first_is_last"] is False  # n_layer = 2 by default
    assert len(reps["fourier"]["gini"]["mean"]) == 3
    panels = results["pca"]["ref"]["add"]["panels"]
    assert isinstance(results["pca"]["ref"]["add"]["phases_of_grokking"], bool)
    assert [p["phase"] for p in panels] == ["before", "during", "after"]
    assert all(0 <= p["val_acc"] <= 1 for p in panels)
    md = (d / "report.md").read_text()
    assert "| ref | add | 0 → 30 |" in md and "Representations: first and last snapshot" in md
    # the report says what was trained on what: p = 7 gives 49 pairs, half of them (25) trained on
    assert results["tasks"]["add"] | {"n_train": 25, "n_val": 24} == results["tasks"]["add"]
    assert "- `add`: grok.x_plus_y (mod p = 7); 49 pairs, training fraction 0.5 (25 for " in md
    assert "- model `tiny`: small:decoder (d_model=32, n_head=2), trained from scratch in ref" in md
    numbers = read_json(d / "paper" / "numbers.json")["numbers"]
    assert "conditions.ref.tasks.add.final_val_acc.mean" in numbers
    assert "tasks.add.n_train" in numbers and "tasks.add.p" in numbers
    # `smollab report` rebuilds a grokking session with the grokking report
    (d / "report.md").unlink()
    proc = cli("report", d, "--no-pdf")
    assert proc.returncode == 0, proc.stderr
    assert "Representations: first and last snapshot" in (d / "report.md").read_text()


def test_lm_study_refuses_a_kind_config() -> None:
    from tests.conftest import REPO

    text = (REPO / "studies" / "multiplication.toml").read_text()
    text = text.replace('name = "baseline"', 'name = "baseline"\nconfig = { steps = 3 }', 1)
    with pytest.raises(ConfigError, match="conditions\\[0\\].config"):
        loads_spec(text, "m.toml")


def test_lm_study_refuses_a_baseline_reference_condition() -> None:
    """A language-model study's reference is a trained condition (tests/study/test_lm_reference)."""
    from tests.conftest import REPO

    text = (REPO / "studies" / "multiplication.toml").read_text()
    text = text.replace("[study]", '[study]\nreference = "baseline"', 1)
    with pytest.raises(ConfigError, match="'study.reference' is 'baseline', a baseline condition"):
        loads_spec(text, "m.toml")
