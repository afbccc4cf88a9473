"""``kill -9`` between and inside stages (mid training), then ``smollab resume``: the same
final session as an uninterrupted one. Real subprocesses and real run workers: slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smollab.io import read_json, read_jsonl
from tests.agent.scripts import PROBLEM, tiny_script, write_script
from tests.agent.test_loop import _drop_timing
from tests.conftest import cli_env, smollab_cmd

pytestmark = pytest.mark.slow


def _start(home: Path, out: Path, problem: Path, script: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        smollab_cmd(
            "run",
            problem,
            "--agent",
            f"scripted:{script}",
            "--out",
            out,
            "--session-name",
            name,
            "--max-iterations",
            "2",
            "--no-pdf",
        ),
        env=cli_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen, cond: Callable[[], bool], timeout: float = 240) -> None:
    t0 = time.time()
    while not cond():
        assert proc.poll() is None, f"finished before the kill point: {proc.stderr.read()}"
        assert time.time() - t0 < timeout
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _log_has(d: Path, **match: Any) -> Callable[[], bool]:
    def cond() -> bool:
        p = d / "session_log.jsonl"
        return p.exists() and any(
            all(r.get(k) == v for k, v in match.items()) for r in read_jsonl(p)
        )

    return cond


def _training_started(d: Path) -> Callable[[], bool]:
    return lambda: any(p.stat().st_size > 0 for p in d.glob("runs/*/metrics.jsonl"))


def _final(d: Path) -> dict[str, Any]:
    replies = [
        r["reply"]["text"] for r in read_jsonl(d / "transcript.jsonl") if r["kind"] == "reply"
    ]
    return {
        "results": _drop_timing(read_json(d / "results" / "results.json")),
        "prose": (d / "paper" / "prose.tex").read_text(),
        "plans": (d / "plans.txt").read_text(),
        "critiques": (d / "critiques.txt").read_text(),
        "replies": replies,
        "state": {k: read_json(d / "session.json")[k] for k in ("stage", "status", "iteration")},
        "calls": read_json(d / "metrics.json")["llm"]["calls"],
    }


def test_kill_9_anywhere_then_resume(tmp_home: Path, tmp_path: Path) -> None:
    problem = tmp_path / "problem.md"
    problem.write_text(PROBLEM)
    script = write_script(tmp_path / "s.json", tiny_script())
    out = tmp_path / "out"
    ref = _start(tmp_home, out, problem, script, "ref")
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    want = _final(out / "ref")
    assert want["state"] == {"stage": "done", "status": "done", "iteration": 1}

    kill_points = {
        "between": lambda d: _log_has(d, event="stage", stage="critique"),
        "training": _training_started,
        "writing": lambda d: _log_has(d, event="stage", stage="write"),
    }
    for name, point in kill_points.items():
        d = out / name
        proc = _start(tmp_home, out, problem, script, name)
        _kill_when(proc, point(d))
        assert read_json(d / "session.json")["stage"] != "done"
        r = subprocess.run(
            smollab_cmd("resume", d, "--no-pdf"),
            env=cli_env(tmp_home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        got = _final(d)
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True), name

    # --start-iteration 1 redoes the iteration from the script: the same session again
    r = subprocess.run(
        smollab_cmd("resume", out / "ref", "--start-iteration", "1", "--no-pdf"),
        env=cli_env(tmp_home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    again = _final(out / "ref")
    assert again["prose"] == want["prose"] and again["results"] == want["results"]
