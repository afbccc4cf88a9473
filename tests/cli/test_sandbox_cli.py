"""``smollab sandbox run`` / ``status`` through the real CLI: verdict JSON, faults, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from smollab.sandbox import sandbox_status
from tests.cli.test_cli import assert_clean_error
from tests.conftest import REPO, cli_env, smollab_cmd

needs_sandbox = pytest.mark.skipif(
    sandbox_status() is not None, reason="bubblewrap sandbox unavailable here"
)


def _verdict(proc: Any) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


@needs_sandbox
def test_run_prints_a_passing_verdict(cli: Any, tmp_path: Path) -> None:
    prog = tmp_path / "ok.py"
    prog.write_text("import sys\nprint('sum', sum(map(int, sys.stdin.read().split())))\n")
    feed = tmp_path / "in.txt"
    feed.write_text("1 2 3")
    proc = cli("sandbox", "run", prog, "--stdin", feed)
    assert proc.returncode == 0, proc.stderr
    v = _verdict(proc)
    assert v["passed"] is True and v["exit_code"] == 0 and v["sandboxed"] is True
    assert v["stdout_tail"] == "sum 6\n" and v["file"] == str(prog)


@needs_sandbox
def test_never_ending_program_is_killed_and_exits_1(cli: Any, tmp_path: Path) -> None:
    prog = tmp_path / "loop.py"
    prog.write_text("while True:\n    pass\n")
    proc = cli("sandbox", "run", prog, "--timeout", "1")
    assert proc.returncode == 1
    v = _verdict(proc)
    assert v["passed"] is False and v["timed_out"] is True and v["killed_by"] == "timeout"


@needs_sandbox
def test_megabytes_of_output_come_back_as_a_short_tail(cli: Any, tmp_path: Path) -> None:
    prog = tmp_path / "flood.py"
    prog.write_text("import sys\nwhile True:\n    sys.stdout.write('z' * 100000)\n")
    proc = cli("sandbox", "run", prog, "--timeout", "20")
    assert proc.returncode == 1
    v = _verdict(proc)
    assert v["killed_by"] == "output" and v["output_truncated"] is True
    assert len(proc.stdout) < 200_000  # the CLI never echoes the megabytes


@needs_sandbox
def test_killing_its_parent_leaves_the_cli_standing(cli: Any, tmp_path: Path) -> None:
    prog = tmp_path / "parricide.py"
    prog.write_text("import os\nos.kill(os.getppid(), 9)\nos.kill(-1, 9)\nraise SystemExit(4)\n")
    proc = cli("sandbox", "run", prog, "--timeout", "5")
    assert proc.returncode == 1
    v = _verdict(proc)  # the CLI lived to print the verdict
    assert v["passed"] is False and v["exit_code"] in (1, 4)


@needs_sandbox
def test_status_says_it_works(cli: Any) -> None:
    proc = cli("sandbox", "status")
    assert proc.returncode == 0, proc.stderr
    assert "sandbox works" in proc.stdout


def test_missing_file_is_a_clean_error(cli: Any, tmp_path: Path) -> None:
    proc = cli("sandbox", "run", tmp_path / "nope.py")
    msg = assert_clean_error(proc, 2)
    assert "nope.py does not exist" in msg


def test_non_utf8_file_is_a_clean_error(cli: Any, tmp_path: Path) -> None:
    prog = tmp_path / "latin1.py"
    prog.write_bytes(b"print('\xe9')\n")
    msg = assert_clean_error(cli("sandbox", "run", prog), 2)
    assert "not UTF-8" in msg


@pytest.mark.parametrize(
    ("flag", "value", "allowed"),
    [
        ("--timeout", "0", "must be above 0"),
        ("--timeout", "nan", "must be above 0 and at most 86400"),
        ("--timeout", "inf", "at most 86400 seconds"),
        ("--timeout", "1e300", "at most 86400 seconds"),
        ("--cpu", "99999999999999999999", "at most 86400 seconds"),
        ("--memory-mb", "-5", "must be at least 64"),
        ("--memory-mb", "99999999999999", "at most 1048576 MB"),
    ],
)
def test_bad_limit_names_the_flag(
    cli: Any, tmp_path: Path, flag: str, value: str, allowed: str
) -> None:
    prog = tmp_path / "ok.py"
    prog.write_text("pass\n")
    msg = assert_clean_error(cli("sandbox", "run", prog, flag, value), 2)
    assert flag in msg and allowed in msg


def _run_without_bwrap(home: Path, *args: Any) -> subprocess.CompletedProcess[str]:
    # python by absolute path, PATH without bwrap: what a machine without bubblewrap looks like
    env = cli_env(home, PATH="/nonexistent")
    return subprocess.run(
        smollab_cmd(*map(str, args)), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_without_bubblewrap_it_refuses_unless_unsafe(tmp_home: Path, tmp_path: Path) -> None:
    prog = tmp_path / "ok.py"
    prog.write_text("print('hi')\n")
    msg = assert_clean_error(_run_without_bwrap(tmp_home, "sandbox", "run", prog), 1)
    assert "bubblewrap" in msg and "unsafe" in msg
    msg = assert_clean_error(_run_without_bwrap(tmp_home, "sandbox", "status"), 1)
    assert "bubblewrap" in msg
    proc = _run_without_bwrap(tmp_home, "sandbox", "run", prog, "--unsafe")
    assert proc.returncode == 0, proc.stderr
    v = _verdict(proc)
    assert v["passed"] is True and v["sandboxed"] is False and v["stdout_tail"] == "hi\n"


def test_help_has_example(cli: Any) -> None:
    proc = cli("sandbox", "run", "--help")
    assert proc.returncode == 0 and "Example" in proc.stdout and "--timeout" in proc.stdout
