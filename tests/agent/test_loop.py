"""The whole loop end to end with the scripted provider on a tiny study (in-process runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from smollab.agent import Agent, Limits
from smollab.io import read_json, read_jsonl
from smollab.study.executor import InlineExecutor
from tests.agent.scripts import scripted_agent, tiny_script, write_script

FAKE_KEY = "sk-ant-FAKEKEY0123456789abcdefSECRET"


def run_session(tmp: Path, name: str, script: Path, **kw: Any) -> tuple[Agent, Any]:
    agent = scripted_agent(
        tmp,
        script,
        name=name,
        limits=Limits(max_iterations=2, pdf=False),
        executor=InlineExecutor(),
        **kw,
    )
    return agent, agent.run()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    mp.setenv("MY_SERVICE_TOKEN", "tok-PLANTED-0123456789")
    from tests.conftest import ensure_report

    ensure_report(mp)
    tmp = tmp_path_factory.mktemp("agent")
    script = write_script(tmp / "script.json", tiny_script())
    agent, res = run_session(tmp, "s1", script)
    yield tmp, agent, res
    mp.undo()


def test_session_files(session: Any) -> None:
    tmp, agent, res = session
    d = res.session_dir
    for f in (
        "problem.md",
        "study.toml",
        "plans.txt",
        "critiques.txt",
        "session_log.jsonl",
        "metrics.json",
        "session.json",
        "transcript.jsonl",
        "results/results.json",
        "results/iteration-1/results.json",
        "paper/paper.tex",
        "paper/claims.json",
        "report.md",
    ):
        assert (d / f).is_file(), f
    assert res.finished and res.stop_reason == "finished" and res.iterations == 1
    info = read_json(d / "session.json")
    assert info["iteration"] == 1 and info["stage"] == "done" and info["status"] == "done"
    assert "Plan: compare the baseline" in (d / "plans.txt").read_text()
    crit = (d / "critiques.txt").read_text()
    assert "Automated checks" in crit and "seed(s)" in crit and "Two seeds only" in crit


def test_invalid_tool_calls_go_back_as_errors(session: Any) -> None:
    _, _, res = session
    rows = [r for r in read_jsonl(res.session_dir / "transcript.jsonl") if r["kind"] == "tool"]
    by = [(r["name"], r["result"]["ok"], r["result"]["content"]) for r in rows]
    # the bad spec: written with a warning, then run_study reports the unknown field
    assert "WARNING, the spec is invalid" in by[0][2] and "learning_rate" in by[0][2]
    assert by[1][0] == "run_study" and not by[1][1] and "learning_rate" in by[1][2]
    assert "leaves the session folder" in by[2][2]
    assert "written by smollab itself" in by[3][2]
    assert "unknown argument(s) ['nonsense']" in by[4][2]
    assert "unknown tool 'no_such_tool'" in by[5][2]
    assert by[7][0] == "run_study" and by[7][1] and "exact match" in by[7][2]
    assert not (res.session_dir.parent / "escape.txt").exists()


def test_claim_checker_sent_writer_back(session: Any) -> None:
    _, _, res = session
    d = res.session_dir
    log = read_jsonl(d / "session_log.jsonl")
    claims = [r for r in log if r["event"] == "claims"]
    assert [c["ok"] for c in claims] == [False, True]
    assert "'97.5%'" in claims[0]["problems"][0]
    tex = (d / "paper" / "paper.tex").read_text()
    assert "Analysis by the research agent" in tex and "97.5" not in tex
    results = read_json(d / "results" / "results.json")
    ft = results["conditions"]["ft"]["tasks"]["add"]["overall"]["exact_match"]["estimate"]
    assert f"{ft * 100:.1f}\\%" in tex
    assert read_json(d / "paper" / "claims.json")["ok"] is True


def test_ledger_in_metrics(session: Any) -> None:
    _, _, res = session
    llm = read_json(res.session_dir / "metrics.json")["llm"]
    assert llm["provider"] == "scripted" and llm["calls"] == 10
    assert llm["cost_usd"] == 0.0 and llm["input_tokens"] > 0
    assert {c["stage"] for c in llm["call_log"]} == {"plan", "act", "critique", "decide", "write"}


def test_no_key_in_any_session_file(session: Any) -> None:
    _, _, res = session
    hits = []
    for p in res.session_dir.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            if FAKE_KEY.encode() in data or b"tok-PLANTED-0123456789" in data:
                hits.append(p)
    assert hits == []


TIMING = {"wall_s", "tokens_per_s", "train_seconds", "created", "session", "elapsed_s", "time"}


def _drop_timing(obj: Any) -> Any:
    """Results without wall-clock fields (the only thing allowed to differ between replays)."""
    if isinstance(obj, dict):
        return {k: _drop_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_drop_timing(v) for v in obj]
    return obj


def _norm(d: Path, name: str) -> str:
    """paper.tex with the session name, dates and the wall-clock numbers masked."""
    text = (d / "paper" / "paper.tex").read_text()
    for key, n in read_json(d / "paper" / "numbers.json")["numbers"].items():
        if any(t in key for t in TIMING) and len(n["text"]) >= 2:
            text = text.replace(n["text"], "T")
    text = text.replace(name, "SESSION")
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:+.]+", "DATE", text)


@pytest.mark.slow
def test_transcript_reproduces_session(session: Any) -> None:
    """Replaying the recorded transcript as a script gives the same results and paper text."""
    tmp, _, res = session
    _, res2 = run_session(tmp, "s2", res.session_dir / "transcript.jsonl")
    a, b = res.session_dir, res2.session_dir
    ra = _drop_timing(read_json(a / "results/results.json"))
    rb = _drop_timing(read_json(b / "results/results.json"))
    assert ra["curves"] and ra["comparisons"]
    assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)
    assert _norm(a, "s1") == _norm(b, "s2")
    assert (a / "paper/prose.tex").read_text() == (b / "paper/prose.tex").read_text()
    assert (a / "plans.txt").read_text() == (b / "plans.txt").read_text()
