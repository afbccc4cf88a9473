"""The run_code tool through the real sandbox: plug-in code of the session, the Agent's limits,
no keys inside. Skipped where the sandbox is not installed or cannot run here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smollab.agent import Agent
from smollab.agent.tools import dispatch
from tests.agent.scripts import scripted_agent

sandbox = pytest.importorskip("smollab.sandbox")


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Agent:
    reason = sandbox.sandbox_status()
    if reason is not None:
        pytest.skip(f"sandbox unavailable here: {reason}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-inside-sandbox-0000000000")
    a = scripted_agent(tmp_path, [], name="rc", sandbox_limits=sandbox.Limits(timeout_s=3))
    (a.dir / "code").mkdir(parents=True)
    return a


def test_plugin_runs_sandboxed_without_keys(agent: Agent) -> None:
    (agent.dir / "code" / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (agent.dir / "code" / "plugin.py").write_text(
        "import os\nfrom helper import double\n"
        "print(double(21), 'ANTHROPIC_API_KEY' in os.environ)\n"
    )
    r = dispatch(agent, "run_code", {"path": "code/plugin.py"})
    v = json.loads(r.content)
    assert r.ok and v["passed"] and v["stdout_tail"].strip() == "42 False"


def test_the_agents_limits_apply(agent: Agent) -> None:
    (agent.dir / "code" / "spin.py").write_text("while True:\n    pass\n")
    r = dispatch(agent, "run_code", {"path": "code/spin.py"})
    v = json.loads(r.content)
    assert not r.ok and v["timed_out"] and v["duration_s"] < 30
