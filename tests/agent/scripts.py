"""Scripted replies for agent tests: one tiny study, a rejected claim, a fixed one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smollab.agent import Agent, Limits
from smollab.providers import make_provider
from smollab.study.problem import load_problem
from tests.conftest import TINY_SPEC

PROBLEM = (
    "# Can a tiny model learn addition?\n\nA 1-layer model, 4 training steps, 2 seeds.\n\n"
    "```toml\n" + TINY_SPEC + "```\n"
)

GOOD_PROSE = (
    "Fine-tuning for 4 steps gave an overall exact match of "
    "{{conditions.ft.tasks.add.overall.exact_match.estimate|pct}} against "
    "{{conditions.baseline.tasks.add.overall.exact_match.estimate|pct}} for the baseline, "
    "over 2 seeds."
)


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "arguments": args}


def tiny_script(spec_text: str = TINY_SPEC) -> list[dict[str, Any]]:
    """plan -> act (bad spec, fixed spec, run) -> critique -> decide finish -> write (bad, good)."""
    bad = spec_text.replace('name = "ft"', 'name = "ft"\nlearning_rate = 3')
    return [
        {"text": "Plan: compare the baseline with a 4-step fine-tune over 2 seeds."},
        {"text": "", "tool_calls": [call("write_file", path="study.toml", content=bad)]},
        {"text": "", "tool_calls": [call("run_study", path="study.toml")]},
        {
            "text": "",
            "tool_calls": [
                call("write_file", path="../escape.txt", content="x"),
                call("write_file", path="session.json", content="{}"),
                call("run_study", nonsense=1),
                call("no_such_tool"),
            ],
        },
        {
            "text": "",
            "tool_calls": [
                call("write_file", path="study.toml", content=spec_text),
                call("run_study"),
            ],
        },
        {"text": "The study ran."},
        {"text": "Two seeds only; the fine-tune is tiny, so no gain is expected."},
        {"text": "", "tool_calls": [call("finish", reason="enough")]},
        {"text": "Accuracy rose to 97.5% after training."},
        {"text": GOOD_PROSE},
    ]


def write_script(path: Path, replies: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(replies))
    return path


def scripted_agent(
    tmp: Path,
    replies: list[dict[str, Any]] | Path,
    *,
    name: str = "s",
    limits: Limits | None = None,
    **kw: Any,
) -> Agent:
    """An Agent on :data:`PROBLEM` (written to ``tmp/problem.md``) whose model is scripted:
    ``replies``, or a script file already written."""
    prob = tmp / "problem.md"
    prob.write_text(PROBLEM)
    script = replies if isinstance(replies, Path) else write_script(tmp / "s.json", replies)
    return Agent(
        load_problem(prob),
        make_provider(f"scripted:{script}"),
        out_root=tmp / "out",
        session_name=name,
        limits=limits or Limits(pdf=False),
        **kw,
    )
