"""Budget before every call, resume after a crash mid model call, --start-iteration, limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smollab.agent import Agent, Limits
from smollab.agent.state import AgentState
from smollab.agent.tools import session_path
from smollab.io import read_json, read_jsonl
from smollab.providers import make_provider
from smollab.providers.base import Reply, Usage
from smollab.providers.ledger import BudgetExceeded
from smollab.providers.redact import Redactor
from smollab.study.executor import InlineExecutor
from smollab.study.problem import load_problem
from tests.agent.scripts import PROBLEM, tiny_script, write_script


class PricedFake:
    """Pretends to be a priced Anthropic model; counts the calls it actually receives."""

    name = "anthropic"
    model = "claude-sonnet-4-5"
    supports_images = False

    def __init__(self, replies: list[dict[str, Any]], usage: Usage) -> None:
        self.replies = replies
        self.usage = usage
        self.received = 0

    def complete(self, system: str, messages: Any, tools: Any, **kw: Any) -> Reply:
        r = Reply.from_dict(self.replies[self.received])
        self.received += 1
        r.usage = self.usage
        return r

    def ping(self) -> None:
        return None


class Crash(BaseException):
    """Stands for the process dying (not an Exception, so nothing catches it)."""


class CrashAt:
    def __init__(self, inner: Any, at: int) -> None:
        self.inner, self.at, self.n = inner, at, 0
        self.name, self.model, self.supports_images = inner.name, inner.model, False

    def complete(self, *a: Any, **kw: Any) -> Reply:
        self.n += 1
        if self.n == self.at:
            raise Crash
        return self.inner.complete(*a, **kw)

    def skip(self, n: int) -> None:
        self.inner.skip(n)
        self.n = n


def _agent(tmp: Path, provider: Any, name: str, **lim: Any) -> Agent:
    prob = tmp / "problem.md"
    prob.write_text(PROBLEM)
    return Agent(
        load_problem(prob),
        provider,
        out_root=tmp / "out",
        session_name=name,
        limits=Limits(pdf=False, **lim),
        executor=InlineExecutor(),
    )


def test_call_over_budget_is_never_started(tmp_path: Path) -> None:
    fake = PricedFake([{"text": "plan"}] * 5, Usage(1000, 200, 0, 0))
    agent = _agent(tmp_path, fake, "b0", budget_usd=0.001)
    with pytest.raises(BudgetExceeded):
        agent.run()
    assert fake.received == 0
    d = tmp_path / "out" / "b0"
    assert read_json(d / "session.json")["status"] == "budget"
    assert read_json(d / "metrics.json")["llm"]["calls"] == 0


def test_budget_stops_between_calls(tmp_path: Path) -> None:
    # each call really costs ~$0.035; the worst case of a plan call is ~$0.03
    fake = PricedFake([{"text": "a plan"}] * 10, Usage(5000, 1300, 0, 0))
    agent = _agent(tmp_path, fake, "b1", budget_usd=0.06)
    with pytest.raises(BudgetExceeded):
        agent.run()
    llm = read_json(tmp_path / "out" / "b1" / "metrics.json")["llm"]
    assert fake.received == llm["calls"] >= 1
    assert llm["cost_usd"] <= 0.06
    log = read_jsonl(tmp_path / "out" / "b1" / "session_log.jsonl")
    assert log[-1]["event"] == "budget_exceeded"


def test_crash_mid_model_call_then_resume(tmp_path: Path) -> None:
    """Die during the decide call (after the study ran), resume: the study is not re-run,
    nothing recorded is paid twice, and the session ends as an uninterrupted one would."""
    from tests.conftest import ensure_report

    mp = pytest.MonkeyPatch()
    ensure_report(mp)
    script = write_script(tmp_path / "s.json", tiny_script())
    with pytest.raises(Crash):
        _agent(
            tmp_path, CrashAt(make_provider(f"scripted:{script}"), 8), "r", max_iterations=2
        ).run()
    d = tmp_path / "out" / "r"
    assert read_json(d / "session.json")["stage"] == "decide"
    assert read_json(d / "metrics.json")["llm"]["calls"] == 7

    import smollab.study.session as S

    def no_rerun(*a: Any, **k: Any) -> Any:
        raise AssertionError("the study ran again on resume")

    mp.setattr(S, "run_study", no_rerun)
    res = _agent(tmp_path, make_provider(f"scripted:{script}"), "r", max_iterations=2).run()
    mp.undo()
    assert res.finished and res.claims_ok
    assert read_json(d / "metrics.json")["llm"]["calls"] == 10
    replies = [r for r in read_jsonl(d / "transcript.jsonl") if r["kind"] == "reply"]
    assert [r["call"] for r in replies] == list(range(1, 11))
    assert "Analysis by the research agent" in (d / "paper" / "paper.tex").read_text()


def test_start_iteration_drops_later_records(tmp_path: Path) -> None:
    st = AgentState(tmp_path, Redactor())
    for call, it in [(1, 1), (2, 1), (3, 2), (4, 2)]:
        st.record(
            {
                "kind": "reply",
                "call": call,
                "iteration": it,
                "stage": "plan",
                "reply": {"text": str(call)},
            }
        )
    st2 = AgentState(tmp_path, Redactor())
    st2.load_transcript(before_iteration=2)
    assert st2.n_recorded() == 2 and st2.recorded_reply(3) is None
    assert len(read_jsonl(tmp_path / "transcript.jsonl")) == 2


def test_tools_stay_inside_the_session(tmp_path: Path) -> None:
    for bad in ["/etc/passwd", "../x", "code/../../x", "~/.bashrc"]:
        with pytest.raises(ValueError):
            session_path(tmp_path, bad, write=False)
    for own in ["session.json", "metrics.json", "limits.json", "runs/x/record.json"]:
        with pytest.raises(ValueError, match="written by smollab"):
            session_path(tmp_path, own, write=True)
    assert session_path(tmp_path, "code/plugin.py", write=True).name == "plugin.py"


def test_limits_are_not_in_any_writable_file(tmp_path: Path, report_ready: bool) -> None:
    """Writing a 'limits' file changes nothing: the limits are the Agent's attributes. A model
    that never runs a study still gets one: the loop runs the current study.toml itself."""
    script = write_script(
        tmp_path / "s.json",
        [
            {
                "text": "",
                "tool_calls": [
                    {
                        "name": "write_file",
                        "arguments": {"path": "limits.toml", "content": "max_iterations = 99"},
                    }
                ],
            },
            {"text": "plan"},
        ],
    )
    agent = _agent(tmp_path, make_provider(f"scripted:{script}"), "lim", max_iterations=1)
    res = agent.run()
    assert res.iterations == 1 and agent.limits.max_iterations == 1
    assert json.loads((tmp_path / "out/lim/session.json").read_text())["max_iterations"] == 1
    log = read_jsonl(tmp_path / "out/lim/session_log.jsonl")
    assert any(e["event"] == "fallback_run" and e["spec_was_valid"] for e in log)
    assert (tmp_path / "out/lim/results/results.json").is_file()
