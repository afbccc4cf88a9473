"""The real CLI in a subprocess: help texts, listing, and clear errors without tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import one_line, with_source


def assert_clean_error(proc: Any, code: int | None = None) -> str:
    """A non-zero exit with one paragraph on stderr and no traceback; returns the message."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    if code is None:
        assert proc.returncode != 0, out
    else:
        assert proc.returncode == code, out
    msg = proc.stderr.strip()
    assert msg.startswith("error:"), out
    assert "\n\n" not in msg, "one paragraph"
    return one_line(msg)


@pytest.mark.parametrize("command", ["run", "study", "report", "sessions"])
def test_help_has_example(cli: Any, command: str) -> None:
    proc = cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Example" in proc.stdout
    assert "--out" in proc.stdout
    if command == "study":  # the kinds a spec can declare
        assert all(f"'{k}'" in one_line(proc.stdout) for k in ("lm", "grok", "pretrain"))


def test_top_level_help_lists_commands(cli: Any) -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("run", "study", "report", "sessions"):
        assert command in proc.stdout


def test_sessions_on_empty_dir(cli: Any, tmp_path: Path) -> None:
    proc = cli("sessions", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "No sessions in" in one_line(proc.stdout)


def test_sessions_says_which_agent_sessions_stopped(cli: Any, tmp_path: Path) -> None:
    for name, status in (("b", "budget"), ("f", "failed"), ("r", "running")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "session.json").write_text(
            f'{{"stage": "act", "status": "{status}", "updated": "t"}}'
        )
    out = one_line(cli("sessions", "--out", tmp_path).stdout)
    assert "act (budget reached)" in out and "act (stopped by an error)" in out
    assert out.count("act") == 3


def test_report_on_non_session_dir(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "something.txt").write_text("not a session")
    proc = cli("report", tmp_path, "--no-pdf")
    msg = assert_clean_error(proc, 2)
    assert "not a finished session" in msg
    assert "smollab sessions" in msg


def test_report_on_unfinished_session_names_a_command_that_finishes_it(
    cli: Any, tmp_path: Path
) -> None:
    # a failed study/train session: re-studying its own study.toml into the same folder
    # (a train session named by --session-name differs from the spec's study name)
    d = tmp_path / "failmid"
    d.mkdir()
    (d / "study.toml").write_text('[study]\nname = "train-add"\n')
    (d / "session.json").write_text('{"stage": "runs_failed"}')
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    assert (
        f"finish this one with `smollab study {d / 'study.toml'} --out {tmp_path} "
        "--session-name failmid` (its finished runs are reused)." in msg
    )
    assert "smollab run" not in msg
    # an agent session is resumed
    (d / "session.json").write_text('{"stage": "act", "launch": {"agent": "openai:x"}}')
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    assert f"continue this agent session with `smollab resume {d}`." in msg
    assert "smollab study" not in msg


def test_bad_spec_names_field(cli: Any, tmp_path: Path, tiny_spec_text: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(tiny_spec_text.replace("lr = 1e-3", "lrr = 1e-3"))
    proc = cli("study", spec, "--out", tmp_path / "out", "--no-pdf")
    msg = assert_clean_error(proc, 2)
    assert str(spec) in msg
    assert "conditions[1].train.lrr" in msg and "Did you mean 'lr'?" in msg
    assert not (tmp_path / "out").exists()  # nothing was started


def test_malformed_toml(cli: Any, tmp_path: Path) -> None:
    spec = tmp_path / "broken.toml"
    spec.write_text("[study\nname = 'x'\n")
    msg = assert_clean_error(cli("study", spec, "--out", tmp_path / "out"), 2)
    assert str(spec) in msg and "not valid TOML" in msg


def test_missing_spec_and_problem_files(cli: Any, tmp_path: Path) -> None:
    msg = assert_clean_error(cli("study", tmp_path / "nope.toml"), 2)
    assert "does not exist" in msg
    msg = assert_clean_error(cli("run", tmp_path / "nope.md"), 2)
    assert "does not exist" in msg
    problem = tmp_path / "q.md"
    problem.write_text("# A question without a protocol\n")
    msg = assert_clean_error(cli("run", problem), 2)
    assert "reference protocol" in msg and "toml" in msg


def test_run_given_a_study_spec_points_to_smollab_study(
    cli: Any, tmp_path: Path, tiny_spec_text: str
) -> None:
    spec = tmp_path / "multiplication.toml"
    spec.write_text(tiny_spec_text)
    msg = assert_clean_error(cli("run", spec, "--out", tmp_path / "out"), 2)
    assert f"{spec} is a study spec (TOML), not a problem file" in msg
    assert f"Run it with `smollab study {spec}`" in msg
    assert "add a fenced" not in msg
    assert not (tmp_path / "out").exists()
    # a spec under another suffix is told by its [study] table
    from smollab.errors import ConfigError
    from smollab.study.problem import load_problem

    other = tmp_path / "spec.txt"
    other.write_text(tiny_spec_text)
    with pytest.raises(ConfigError, match="is a study spec"):
        load_problem(other)


def test_run_without_agent_says_why_it_runs_the_reference_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key in the environment does not start the agent: the offline run says so, and how."""
    from smollab.cli.study import _why_offline

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert _why_offline() == "no LLM configured"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert "OPENAI_API_KEY is set: add --agent openai:<model>" in _why_offline()


def test_unknown_hub_model_offline(cli: Any, tmp_path: Path, tiny_spec_text: str) -> None:
    text = with_source(tiny_spec_text, "nonexistent-org/nonexistent-model")
    text = text.split('[[conditions]]\nname = "ft"')[0]  # baseline only: fail fast either way
    spec = tmp_path / "hub.toml"
    spec.write_text(text)
    proc = cli("study", spec, "--out", tmp_path / "out", "--no-pdf", timeout=180)
    msg = assert_clean_error(proc)
    assert "nonexistent-org/nonexistent-model" in msg
    assert "--local-dir" in msg  # says how to get it and point at a local dir


def test_api_model_trained_in_a_study(cli: Any, tmp_path: Path, tiny_spec_text: str) -> None:
    """A study that would fine-tune an API model is a clear error before any run (it was the hub
    client's validation traceback), and so is one without the API key."""
    text = with_source(tiny_spec_text, "openai:gpt-4o-mini")
    spec = tmp_path / "api.toml"
    spec.write_text(text)
    proc = cli("study", spec, "--out", tmp_path / "out", "--no-pdf", timeout=180)
    msg = assert_clean_error(proc, 2)
    assert "an API model (openai:gpt-4o-mini)" in msg and "[conditions.train]" in msg
    spec.write_text(text.split('[[conditions]]\nname = "ft"')[0])  # the baseline only
    proc = cli("study", spec, "--out", tmp_path / "out", "--no-pdf", timeout=180)
    assert "OPENAI_API_KEY is not set" in assert_clean_error(proc, 2)
    assert not list((tmp_path / "out").rglob("record.json"))


@pytest.mark.parametrize("how", ["file_as_dir", "file_as_out"])
def test_unwritable_out(cli: Any, tmp_path: Path, tiny_spec_text: str, how: str) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text)
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    out = blocker / "out" if how == "file_as_dir" else blocker
    proc = cli("study", spec, "--out", out, "--no-pdf")
    msg = assert_clean_error(proc, 2)
    assert str(out) in msg and "not writable" in msg and "--out" in msg
    assert blocker.read_text() == "I am a file"


def test_a_refused_command_leaves_no_empty_out_folder(cli: Any, tmp_path: Path) -> None:
    from smollab.study.session import check_writable

    out = tmp_path / "a" / "b"
    check_writable(out)  # writable, and nothing is left of the check
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    check_writable(tmp_path / "kept")  # a folder that was there stays
    assert (tmp_path / "kept").is_dir()
    # a model that does not load is refused after the --out check: no folder is left
    proc = cli("eval", "--model", "smolm2-135m", "--task", "arith.add:1x1", "--out", out)
    assert "smolm2-135m" in assert_clean_error(proc, 2)
    assert not (tmp_path / "a").exists()
