"""The agent through the CLI: bad input, rejected keys and estimates end in one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.scripts import PROBLEM
from tests.conftest import cli_env, one_line, smollab_cmd
from tests.providers.wire import Replay


@pytest.fixture
def problem(tmp_path: Path) -> Path:
    p = tmp_path / "problem.md"
    p.write_text(PROBLEM)
    return p


@pytest.fixture
def server() -> Iterator[Replay]:
    r = Replay()
    yield r
    r.close()


def _run(home: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
    import subprocess

    return subprocess.run(
        smollab_cmd(*args), env=cli_env(home, **env), capture_output=True, text=True, timeout=120
    )


def _no_traceback(r) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in r.stderr + r.stdout


def test_bad_agent_spec(cli, problem: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("run", problem, "--agent", "claude", "--out", tmp_path / "o")
    assert r.returncode == 2 and "is not PROVIDER:MODEL" in one_line(r.stderr)
    _no_traceback(r)
    r = cli("run", problem, "--agent", "scripted:nope.json", "--out", tmp_path / "o")
    assert r.returncode == 2 and "cannot be read" in one_line(r.stderr)


def test_rejected_key_is_one_line(
    tmp_home: Path, problem: Path, tmp_path: Path, server: Replay
) -> None:
    server.queue.append((401, "openai_401.json"))
    r = _run(
        tmp_home,
        "run",
        str(problem),
        "--agent",
        "openai:gpt-4o",
        "--base-url",
        server.url + "/v1",
        "--out",
        str(tmp_path / "o"),
        OPENAI_API_KEY="sk-test-planted-000000000000000000",
    )
    assert r.returncode == 3, r.stderr
    err = one_line(r.stderr)
    assert "the API key was rejected (HTTP 401)" in err and err.count("error:") == 1
    _no_traceback(r)
    assert "sk-test-planted" not in r.stderr + r.stdout


def test_outage_is_one_line(tmp_home: Path, problem: Path, tmp_path: Path) -> None:
    r = _run(
        tmp_home,
        "run",
        str(problem),
        "--agent",
        "openai:gpt-4o",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--out",
        str(tmp_path / "o"),
    )
    assert r.returncode == 3 and "cannot reach the server" in one_line(r.stderr)
    _no_traceback(r)


def test_budget_needs_a_price_before_any_call(
    tmp_home: Path, problem: Path, tmp_path: Path, server: Replay
) -> None:
    r = _run(
        tmp_home,
        "run",
        str(problem),
        "--agent",
        "openai:local-model",
        "--base-url",
        server.url + "/v1",
        "--budget-usd",
        "1",
        "--out",
        str(tmp_path / "o"),
    )
    assert r.returncode == 2 and "cannot be enforced" in one_line(r.stderr)
    assert server.requests == []


def test_budget_of_zero_is_refused_before_any_call(
    tmp_home: Path, problem: Path, tmp_path: Path, server: Replay
) -> None:
    """A zero budget cannot pay even the preflight's key check: refused, no call, no session."""
    r = _run(
        tmp_home,
        "run",
        str(problem),
        "--agent",
        "openai:gpt-4o",
        "--base-url",
        server.url + "/v1",
        "--budget-usd",
        "0",
        "--out",
        str(tmp_path / "o"),
        OPENAI_API_KEY="sk-test-planted-000000000000000000",
    )
    assert r.returncode == 2 and "--budget-usd 0 leaves nothing" in one_line(r.stderr)
    _no_traceback(r)
    assert server.requests == [] and not (tmp_path / "o" / "tiny").exists()


def test_resume_needs_a_session(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("resume", tmp_path)
    assert r.returncode == 2 and "is not a session folder" in one_line(r.stderr)
    _no_traceback(r)
    # a session that lost its problem.md says so (not 'pass a problem file' to a command
    # that takes none)
    (tmp_path / "session.json").write_text('{"launch": {"agent": "openai:m", "max_iterations": 1}}')
    r = cli("resume", tmp_path)
    assert r.returncode == 2 and f"{tmp_path} has no problem.md" in one_line(r.stderr)
    _no_traceback(r)


def test_estimate(cli, problem: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("estimate", "problems/multiplication.md", "--agent", "anthropic:claude-sonnet-5-5")
    out = one_line(r.stdout)
    assert r.returncode == 0 and "estimate with prompt caching" in out
    # no budget was given, so none is measured against (it said "fits in $1")
    assert "$1." not in out and "fits" not in out
    assert (
        "This is an estimate: `smollab run problems/multiplication.md --agent "
        "anthropic:claude-sonnet-5-5 --budget-usd B` makes B a hard bound." in out
    )
    r = cli("estimate", problem, "--agent", "openai:unlisted")
    assert r.returncode == 0 and "unknown" in one_line(r.stdout)


def test_existing_session_is_not_overwritten(cli, problem: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "o" / "tiny"
    d.mkdir(parents=True)
    (d / "transcript.jsonl").write_text("")
    script = tmp_path / "s.json"
    script.write_text("[]")
    r = cli("run", problem, "--agent", f"scripted:{script}", "--out", tmp_path / "o")
    assert r.returncode == 2 and "smollab resume" in one_line(r.stderr)
    _no_traceback(r)


def test_outage_mid_session_names_the_session_to_resume(
    tmp_home: Path, problem: Path, tmp_path: Path, server: Replay
) -> None:
    """Once the session folder exists, `smollab run` again is refused, so a failing server's
    error says `smollab resume <that folder>`, not 'run the same command again'."""
    import json

    from tests.providers.wire import chat_completion

    server.respond = lambda body: (
        (200, chat_completion("OK"))
        if body.get("max_tokens") == 1
        else (500, json.dumps({"error": {"message": "boom"}}))
    )
    r = _run(
        tmp_home,
        "run",
        str(problem),
        "--agent",
        "openai:local-model",
        "--base-url",
        server.url + "/v1",
        "--no-pdf",
        "--out",
        str(tmp_path / "o"),
    )
    err = one_line(r.stderr)
    assert r.returncode == 3 and "the server failed (HTTP 500)" in err, r.stderr
    assert f"continue with `smollab resume {tmp_path / 'o' / 'tiny'}`" in err
    assert "SESSION" not in err and "same command again" not in err
    _no_traceback(r)
    assert (tmp_path / "o" / "tiny" / "session.json").is_file()
    # resume takes --base-url (the server moved); its preflight failing names the session too
    r = _run(
        tmp_home, "resume", str(tmp_path / "o" / "tiny"), "--base-url", "http://127.0.0.1:9/v1"
    )
    err = one_line(r.stderr)
    assert r.returncode == 3 and "at http://127.0.0.1:9/v1: cannot reach the server" in err
    assert f"continue with `smollab resume {tmp_path / 'o' / 'tiny'}`" in err
    _no_traceback(r)


def test_ctrl_c_names_the_session_to_resume(
    tmp_home: Path, problem: Path, tmp_path: Path, server: Replay
) -> None:
    """Ctrl-C during a model call exits 130 with `smollab resume <session>` (a study's
    'run the same command again' would be refused for an agent session)."""
    import json
    import os
    import signal
    import subprocess
    import threading
    import time

    from tests.providers.wire import chat_completion

    asked, release = threading.Event(), threading.Event()

    def respond(body: dict) -> tuple[int, str]:  # type: ignore[type-arg]
        if body.get("max_tokens") == 1:
            return 200, chat_completion("OK")
        asked.set()
        release.wait(60)
        return 500, json.dumps({"error": {"message": "late"}})

    server.respond = respond
    proc = subprocess.Popen(
        smollab_cmd(
            "run",
            str(problem),
            "--agent",
            "openai:local-model",
            "--base-url",
            server.url + "/v1",
            "--no-pdf",
            "--out",
            str(tmp_path / "o"),
        ),
        env=cli_env(tmp_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert asked.wait(90), "the agent never made its first call"
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    msg = one_line(err)
    assert proc.returncode == 130, err
    assert f"continue with `smollab resume {tmp_path / 'o' / 'tiny'}`" in msg
    assert "same command again" not in msg and "Traceback" not in err


def test_a_pdf_that_failed_to_build_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smollab.report
    from smollab.cli.agent import _missing_pdf_note

    assert _missing_pdf_note(False, None, tmp_path) is None
    assert _missing_pdf_note(True, tmp_path / "paper.pdf", tmp_path) is None
    monkeypatch.setattr(smollab.report, "tex_available", lambda: "latexmk", raising=False)
    note = _missing_pdf_note(True, None, tmp_path)
    assert note and "latexmk failed" in note and str(tmp_path / "paper" / "build.log") in note
    monkeypatch.setattr(smollab.report, "tex_available", lambda: None, raising=False)
    assert "no TeX engine" in (_missing_pdf_note(True, None, tmp_path) or "")


def test_a_corrupt_session_json_is_named_and_kept(cli, problem: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """session.json holds the launch settings resume needs: a cut-short one is named with a way
    on that works (not 'delete it', which would lose them), and nothing is changed."""
    d = tmp_path / "o" / "tiny"
    d.mkdir(parents=True)
    (d / "problem.md").write_text(PROBLEM)
    (d / "transcript.jsonl").write_text("")
    torn = '{"iteration": 2, "stage": "act", "launch": {"agent": "openai:m", "max_iter'
    (d / "session.json").write_text(torn)
    before = sorted(p.name for p in d.iterdir())
    script = tmp_path / "s.json"
    script.write_text("[]")
    for args in (
        ("resume", d),
        # redoing it from an iteration reads the same file, before any model call
        (
            "run",
            problem,
            "--agent",
            f"scripted:{script}",
            "--out",
            d.parent,
            "--start-iteration",
            1,
        ),
    ):
        r = cli(*args)
        err = one_line(r.stderr)
        assert r.returncode == 2, r.stderr
        assert f"{d / 'session.json'} is not valid JSON" in err and "launch settings" in err
        assert "Restore it from a backup" in err and "--session-name" in err
        assert "delete it" not in err and "Preflight" not in r.stdout
        _no_traceback(r)
        assert (d / "session.json").read_text() == torn
        assert sorted(p.name for p in d.iterdir()) == before
    # valid JSON whose launch record lost a setting resume needs: named, no KeyError
    (d / "session.json").write_text('{"iteration": 2, "launch": {"agent": "openai:m"}}')
    r = cli("resume", d)
    err = one_line(r.stderr)
    assert r.returncode == 2 and "'max_iterations'" in err and "Restore it" in err, r.stderr
    _no_traceback(r)
    # the library's own reads and writes of it say the same, and write nothing over it
    from smollab.agent.state import AgentState
    from smollab.errors import CorruptFile
    from smollab.providers.redact import Redactor

    (d / "session.json").write_text(torn)
    with pytest.raises(CorruptFile, match="launch settings"):
        AgentState(d, Redactor()).set_stage(1, "plan")
    assert (d / "session.json").read_text() == torn
