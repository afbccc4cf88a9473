"""A scripted agent's replies are checked when the script is loaded: a malformed reply is one
clear error naming the file, the reply and the field, not a traceback mid-session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError
from smollab.providers.scripted import load_script
from tests.agent.scripts import PROBLEM
from tests.conftest import one_line

GOOD = {"text": "ok", "tool_calls": [{"name": "run_study", "arguments": {"spec": "x"}}]}


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (
            {"text": "x", "tool_calls": "run_study"},
            "field 'tool_calls' is \"run_study\", not a list",
        ),
        ({"tool_calls": [{"arguments": {}}]}, "tool_calls[0] has no 'name'"),
        ({"text": 5}, "field 'text' is 5, not a string"),
        ({"tool_calls": [{"name": "x", "arguments": [1]}]}, "tool_calls[0].arguments is not an"),
        ({"usage": {"tokens": 3}}, "field 'usage' must be an object with keys among"),
        ("just text", "is a JSON str, not an object"),
    ],
)
def test_a_malformed_reply_names_the_file_and_reply(
    tmp_path: Path, reply: Any, problem: str
) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps([GOOD, reply]))
    with pytest.raises(ConfigError) as e:
        load_script(p)
    assert f"Scripted agent file {p}, reply 1: {problem}" in str(e.value)


def test_a_transcript_line_that_is_not_json_is_named_by_its_line(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"reply": GOOD}) + "\n" + "{cut\n")
    with pytest.raises(ConfigError, match=r"t.jsonl, line 2: not valid JSON"):
        load_script(p)
    p.write_text(json.dumps({"reply": GOOD}) + "\n" + json.dumps({"event": "x"}) + "\n")
    assert load_script(p) == [GOOD]


def test_run_with_a_malformed_script_exits_2_without_a_session(cli: Any, tmp_path: Path) -> None:
    problem = tmp_path / "problem.md"
    problem.write_text(PROBLEM)
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"text": "x", "tool_calls": "run_study"}]))
    r = cli("run", problem, "--agent", f"scripted:{script}", "--out", tmp_path / "o")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "reply 0: field 'tool_calls'" in one_line(r.stderr)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
