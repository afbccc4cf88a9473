"""A whole session in-process (InlineExecutor): folder layout, reuse on re-run, the store."""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from smollab.io import read_json, read_jsonl
from smollab.study.executor import InlineExecutor
from smollab.study.problem import load_problem
from smollab.study.runspec import expand
from smollab.study.session import run_study
from smollab.study.spec import loads_spec
from smollab.study.store import Store
from tests.conftest import TINY_SPEC, ensure_report

PROBLEM = f"""# Can a one-layer model learn to add?

A tiny from-scratch GPT-2 is fine-tuned on single-digit addition.

```toml
{TINY_SPEC}```
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One study run from a problem file; returns (result, out_root, events, problem)."""
    out = tmp_path_factory.mktemp("outputs")
    problem_path = out.parent / "adding.md"
    problem_path.write_text(PROBLEM)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMOLLAB_HOME", str(out.parent / "home"))
        ensure_report(mp)
        prob = load_problem(problem_path)
        events: list[dict[str, Any]] = []
        res = run_study(
            prob.spec,
            prob.protocol_text,
            out_root=out,
            problem_text=prob.text,
            executor=InlineExecutor(),
            on_event=events.append,
            pdf=False,
        )
    return res, out, events, prob


def test_run_study_refuses_a_text_that_is_not_the_spec_and_a_spec_that_is_not_parsed(
    tmp_path: Path,
) -> None:
    """QA: run_study(spec, "") ran and wrote an empty study.toml, "the declared study"."""
    from smollab.errors import ConfigError

    spec = loads_spec(TINY_SPEC)
    other = TINY_SPEC.replace("seeds = [0, 1]", "seeds = [0, 1, 2]")
    with pytest.raises(ConfigError, match="spec_text does not describe spec"):
        run_study(spec, other, out_root=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="spec_text: field 'study' is required"):
        run_study(spec, "", out_root=tmp_path / "out")
    with pytest.raises(ConfigError, match="run_study takes a StudySpec, not a str"):
        run_study(TINY_SPEC, TINY_SPEC, out_root=tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_session_layout(session: Any) -> None:
    res, out, _, prob = session
    d = out / "tiny"
    assert res.session_dir == d
    for name in (
        "problem.md",
        "study.toml",
        "plans.txt",
        "critiques.txt",
        "session_log.jsonl",
        "metrics.json",
        "session.json",
        "report.md",
        "report.html",
    ):
        assert (d / name).is_file(), name
    assert (d / "problem.md").read_text() == prob.text
    assert (d / "study.toml").read_text() == TINY_SPEC
    assert read_json(d / "session.json")["stage"] == "done"
    assert read_json(d / "metrics.json")["llm"]["calls"] == 0
    events = [e["event"] for e in read_jsonl(d / "session_log.jsonl")]
    assert events[0] == "plan" and events[-1] == "report_done"
    assert events.count("run_end") == 4  # a scratch baseline runs every seed

    runs = expand(prob.spec)
    plans = (d / "plans.txt").read_text()
    assert all(r.hash in plans for r in runs)

    # data/: the exact test set and every run's exact training set
    test = read_jsonl(d / "data" / "add_test.jsonl")
    assert len(test) == 24 and {e["stratum"] for e in test} == {"1x1", "1x2"}
    for seed in (0, 1):
        train = read_jsonl(d / "data" / f"add_train_ft_seed{seed}.jsonl")
        assert train
        test_pairs = {(e["question"]["a"], e["question"]["b"]) for e in test}
        assert not {(e["question"]["a"], e["question"]["b"]) for e in train} & test_pairs
    assert not list((d / "data").glob("add_train_baseline*"))

    for r in runs:
        rd = d / "runs" / r.hash
        for name in ("spec.json", "env.json", "seeds.json", "record.json", "predictions/add.jsonl"):
            assert (rd / name).is_file(), (r.label, name)
        assert read_json(rd / "spec.json")["hash"] == r.hash
        assert read_json(rd / "seeds.json")["seed"] == r.seed
        assert "torch" in read_json(rd / "env.json")["packages"]
        rec = read_json(rd / "record.json")
        assert (rec["hash"], rec["condition"], rec["seed"], rec["status"]) == (
            r.hash,
            r.condition,
            r.seed,
            "done",
        )
        preds = read_jsonl(rd / "predictions" / "add.jsonl")
        assert [p["id"] for p in preds] == [e["id"] for e in test]
        if r.train is None:
            assert rec["train"] is None and not (rd / "metrics.jsonl").exists()
        else:
            rows = read_jsonl(rd / "metrics.jsonl")
            assert [row["step"] for row in rows] == [1, 2, 3, 4]
            assert [row["step"] for row in rows if "eval" in row] == [2, 4]
            assert rec["train"]["steps"] == 4
            assert (rd / "ckpt" / "final" / "config.json").exists()
            assert not (rd / "ckpt" / "last").exists()


def test_each_trained_run_says_it_is_building_data_before_training(session: Any) -> None:
    _, _, events, _ = session
    stages = [(e["label"], e["stage"]) for e in events if e["event"] == "stage"]
    trained = sorted({label for label, stage in stages if stage == "train"})
    assert trained == ["ft/seed0", "ft/seed1"]
    for label in trained:
        mine = [stage for lab, stage in stages if lab == label]
        assert mine.index("prepare") == mine.index("train") - 1
    assert not any(stage == "prepare" for label, stage in stages if label.startswith("baseline"))


def test_results_files(session: Any) -> None:
    res, out, _, _ = session
    rd = out / "tiny" / "results"
    results = read_json(rd / "results.json")
    assert results["schema"] == "smollab.results/1" and results["session"] == "tiny"
    assert results["conditions"].keys() == res.results["conditions"].keys()
    assert set(results["conditions"]) == {"baseline", "ft"}
    ft = results["conditions"]["ft"]
    assert ft["kind"] == "finetune" and ft["seeds"] == [0, 1]
    assert set(ft["tasks"]["add"]["strata"]) == {"1x1", "1x2"}
    assert ft["tasks"]["add"]["strata"]["1x1"]["n_items"] == 12
    assert len(ft["tasks"]["add"]["overall"]["exact_match_per_seed"]) == 2
    assert set(results["curves"]["ft"]) == {"0", "1"}
    assert len(results["curves"]["ft"]["0"]["train"]) == 4
    assert {c["stratum"] for c in results["comparisons"]} == {"1x1", "1x2", "overall"}
    base = read_json(rd / "results_baseline.json")
    fine = read_json(rd / "results_finetuned.json")
    assert set(base["conditions"]) == {"baseline"}
    assert set(fine["conditions"]) == {"ft"}
    assert "only 2 seed(s)" in (out / "tiny" / "critiques.txt").read_text()


def test_rerun_reuses_finished_runs(session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, out, _, prob = session
    d = out / "tiny"
    records = sorted((d / "runs").glob("*/record.json"))
    assert len(records) == 4
    before = {p: p.stat().st_mtime_ns for p in records}
    ckpts = {p: p.stat().st_mtime_ns for p in (d / "runs").glob("*/ckpt/final/model.safetensors")}
    assert len(ckpts) == 2

    def no_training(*a: Any, **k: Any) -> None:
        raise AssertionError("a finished run was executed again")

    monkeypatch.setattr("smollab.study.worker.execute_run", no_training)
    ensure_report(monkeypatch)
    events: list[dict[str, Any]] = []
    res = run_study(
        prob.spec,
        prob.protocol_text,
        out_root=out,
        problem_text=prob.text,
        executor=InlineExecutor(),
        on_event=events.append,
        pdf=False,
    )
    assert res.outcomes == []
    assert sorted(e["label"] for e in events if e["event"] == "reused") == [
        "baseline/seed0",
        "baseline/seed1",
        "ft/seed0",
        "ft/seed1",
    ]
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts
    assert read_json(d / "session.json")["reused"] == 4


def test_store_index_and_reindex(session: Any) -> None:
    _, out, _, prob = session
    store = Store(out)
    assert store.path == out / "index.sqlite"
    hashes = sorted(r.hash for r in expand(prob.spec))
    rows = store.runs("tiny")
    assert sorted(r["hash"] for r in rows) == hashes
    assert [(r["condition"], r["seed"]) for r in rows] == [
        ("baseline", 0),
        ("baseline", 1),
        ("ft", 0),
        ("ft", 1),
    ]
    sessions = store.sessions()
    assert [(s["name"], s["status"], s["n_runs"]) for s in sessions] == [("tiny", "done", 4)]
    with sqlite3.connect(store.path) as c:
        strata = {r[0] for r in c.execute("SELECT stratum FROM metrics WHERE session='tiny'")}
        n_metrics = c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert strata == {"1x1", "1x2"} and n_metrics == 4 * 2

    store.path.unlink()
    fresh = Store(out)
    assert fresh.runs("tiny") == []
    assert fresh.reindex() == 4
    again = fresh.runs("tiny")
    assert sorted(r["hash"] for r in again) == hashes
    assert {r["hash"]: r["record"] for r in again} == {r["hash"]: r["record"] for r in rows}


def test_study_without_problem_has_no_problem_md(
    tmp_path: Path, report_ready: bool, tiny_spec_text: str
) -> None:
    # baseline only: one cheap evaluation run
    text = tiny_spec_text.split('[[conditions]]\nname = "ft"')[0] + "[eval]\nbatch_size = 16\n"
    spec = loads_spec(text)
    res = run_study(
        spec,
        text,
        out_root=tmp_path,
        session_name="plain-study",
        executor=InlineExecutor(),
        pdf=False,
    )
    d = tmp_path / "plain-study"
    assert res.session_dir == d
    assert not (d / "problem.md").exists()
    assert (d / "study.toml").read_text() == text
    assert set(read_json(d / "results" / "results_finetuned.json")["conditions"]) == set()
    assert set(read_json(d / "results" / "results_baseline.json")["conditions"]) == {"baseline"}
    assert Store(tmp_path).sessions()[0]["problem"] is None


def _strict(text: str) -> Any:
    """``json.loads`` as jq or JavaScript parse: NaN, Infinity and -Infinity are errors."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_one_seed_study_writes_strict_json_and_its_report_reads_it(
    tmp_path: Path, report_ready: bool
) -> None:
    """One seed leaves the std and sem of each training summary undefined: they were written
    as NaN, which jq and JavaScript refuse. Every JSON file of the session is strict JSON, with
    null there, and the report of it is the report of the NaN file sessions wrote before."""
    text = TINY_SPEC.replace("seeds = [0, 1]", "seeds = [0]")
    run_study(loads_spec(text), text, out_root=tmp_path, executor=InlineExecutor(), pdf=False)
    d = tmp_path / "tiny"
    written = sorted(p for p in d.rglob("*") if p.suffix in (".json", ".jsonl"))
    assert d / "results" / "results.json" in written
    for p in written:
        body = p.read_text(encoding="utf-8")
        for doc in body.splitlines() if p.suffix == ".jsonl" else [body]:
            _strict(doc)
    results = _strict((d / "results" / "results.json").read_text())
    summary = results["conditions"]["ft"]["train_summary"]
    assert summary["final_loss"] is not None and summary["steps"]["mean"] == 4
    for name, desc in summary.items():
        if desc is not None:
            assert desc["n"] == 1 and desc["std"] is None and desc["sem"] is None, name
            assert math.isfinite(desc["mean"]), name

    if not report_ready:
        pytest.skip("needs the real report package")
    from smollab.report import build_report

    # the same results as an earlier session wrote them (NaN tokens), built beside it
    old = tmp_path / "old" / "tiny"
    shutil.copytree(d, old)
    for desc in results["conditions"]["ft"]["train_summary"].values():
        if desc is not None:
            desc.update(std=math.nan, sem=math.nan)
    (old / "results" / "results.json").write_text(json.dumps(results, indent=2))
    assert "NaN" in (old / "results" / "results.json").read_text()
    new_md = build_report(d, pdf=False).report_md.read_text()
    old_md = build_report(old, pdf=False).report_md.read_text()
    assert new_md == old_md
    # one seed: the mean alone, no "± n/a" or "nan"
    row = next(line for line in new_md.splitlines() if line.startswith("| `ft` | 1 | 4 |"))
    loss = f"{summary['final_loss']['mean']:.3f}"
    assert f"| {loss} |" in row and "±" not in row and "n/a" not in row
    assert not re.search(r"\bnan\b", new_md, re.IGNORECASE)


def test_a_model_that_cannot_load_leaves_the_session_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed spec whose model cannot be loaded (a typo'd hub id, offline) fails before the
    session's outputs are moved to previous/ for it, and a new session gets no folder."""
    from smollab.errors import ModelLoadError
    from smollab.models import loader
    from tests.conftest import with_source

    ensure_report(monkeypatch)
    text = TINY_SPEC.split('[[conditions]]\nname = "ft"')[0] + "[eval]\nbatch_size = 16\n"
    run_study(loads_spec(text), text, out_root=tmp_path, executor=InlineExecutor(), pdf=False)
    d = tmp_path / "tiny"
    before = {p: p.read_bytes() for p in (d / "results").iterdir()}
    assert before and (d / "report.md").is_file()
    monkeypatch.setattr(loader, "hub_reachable", lambda timeout=3.0: False)
    typo = with_source(text, "nobody/no-such-model")
    with pytest.raises(ModelLoadError, match="'nobody/no-such-model' is not a local path"):
        run_study(loads_spec(typo), typo, out_root=tmp_path, executor=InlineExecutor(), pdf=False)
    assert not (d / "previous").exists()
    assert (d / "study.toml").read_text() == text
    assert {p: p.read_bytes() for p in (d / "results").iterdir()} == before
    with pytest.raises(ModelLoadError):
        run_study(loads_spec(typo), typo, out_root=tmp_path, session_name="other",
                  executor=InlineExecutor(), pdf=False)  # fmt: skip
    assert not (tmp_path / "other").exists()
