"""Bad input found in a review of the CLI: each is one clear paragraph, a non-zero exit, no
traceback, and nothing already written is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError, CorruptFile
from smollab.io import read_json
from tests.cli.test_cli import assert_clean_error
from tests.cli.test_eval_cli import MODEL
from tests.conftest import one_line, run_cli


def _session(root: Path, name: str = "s") -> Path:
    d = root / name
    (d / "results").mkdir(parents=True)
    (d / "session.json").write_text(json.dumps({"name": name, "stage": "done"}))
    return d


def test_read_json_names_a_corrupt_file(tmp_path: Path) -> None:
    p = tmp_path / "cut.json"
    p.write_text('{"schema": "smollab.results/1", "tas')
    with pytest.raises(CorruptFile, match="cut.json is not valid JSON") as e:
        read_json(p)
    assert isinstance(e.value, ValueError)  # callers that treat it as unreadable still do


def test_read_json_refuses_valid_json_that_is_not_an_object(tmp_path: Path) -> None:
    """Every JSON file smollab writes holds an object; a list (a hand edit) is named, not an
    AttributeError further on."""
    p = tmp_path / "session.json"
    p.write_text("[1]")
    with pytest.raises(CorruptFile, match=r"session.json holds a JSON list where smollab writes"):
        read_json(p)


def test_report_and_sessions_on_a_state_file_that_is_not_an_object(
    cli: Any, tmp_path: Path
) -> None:
    d = _session(tmp_path)
    (d / "results" / "results.json").write_text("[]")
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    assert "results.json holds a JSON list" in msg
    (d / "session.json").write_text("[1]")
    proc = cli("sessions", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "unreadable session.json" in one_line(proc.stdout)


def test_report_refuses_statistics_that_are_not_numbers(cli: Any, tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "results_sample.json"
    res = json.loads(fixture.read_text())
    cond = next(iter(res["conditions"]))
    task = next(iter(res["conditions"][cond]["tasks"]))
    res["conditions"][cond]["tasks"][task]["overall"]["exact_match"]["estimate"] = "0.93"
    d = _session(tmp_path)
    (d / "results" / "results.json").write_text(json.dumps(res))
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    field = f"conditions.{cond}.tasks.{task}.overall.exact_match.estimate"
    assert f"field {field} is '0.93', not a number" in msg
    assert not (d / "report.md").exists()
    # the grokking report checks the same fields
    grok = {"schema": "smollab.grok_results/1", "kind": "grok", "conditions": {"ref": {"tasks": {
        "add": {"step_val_acc_99": {"median": "2363", "n": 3}}}}}}  # fmt: skip
    (d / "results" / "results.json").write_text(json.dumps(grok))
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    assert "field conditions.ref.tasks.add.step_val_acc_99.median is '2363'" in msg


def test_report_on_an_eval_folder_says_what_it_is(cli: Any, tmp_path: Path) -> None:
    from smollab.errors import DataError
    from smollab.report import build_report

    d = tmp_path / "eval"
    d.mkdir()
    (d / "results.json").write_text("{}")
    (d / "summary.md").write_text("| task |")
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    assert "is a `smollab eval` folder, not a study session" in msg
    with pytest.raises(DataError, match="is a `smollab eval` folder"):
        build_report(d, pdf=False)


def test_report_on_a_cut_results_file(cli: Any, tmp_path: Path) -> None:
    d = _session(tmp_path)
    (d / "results" / "results.json").write_text('{"schema": "smollab.res')
    msg = assert_clean_error(cli("report", d, "--no-pdf"), 2)
    assert "results.json is not valid JSON" in msg and "run again" in msg


def test_report_on_a_missing_folder(cli: Any, tmp_path: Path) -> None:
    msg = assert_clean_error(cli("report", "nope", "--out", tmp_path, "--no-pdf"), 2)
    assert "No session folder nope" in msg and "smollab sessions" in msg


def test_sessions_lists_a_corrupt_session_instead_of_failing(cli: Any, tmp_path: Path) -> None:
    _session(tmp_path, "good")
    bad = _session(tmp_path, "bad")
    (bad / "session.json").write_text("{bad")
    proc = cli("sessions", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = one_line(proc.stdout)
    assert "good" in out and "bad" in out and "unreadable session.json" in out


def test_sessions_counts_the_runs_of_the_current_study_only(cli: Any, tmp_path: Path) -> None:
    """Run folders of an earlier version of the study stay for reuse, but are not its runs."""
    d = _session(tmp_path, "edited")
    state = {"name": "edited", "stage": "runs_failed", "run_hashes": ["aaa", "bbb", "ccc"]}
    (d / "session.json").write_text(json.dumps(state))
    for h in ("aaa", "old1", "old2"):  # one current run finished, two stale ones
        (d / "runs" / h).mkdir(parents=True)
        (d / "runs" / h / "record.json").write_text("{}")
    (d / "runs" / "bbb").mkdir()  # started, not finished
    old = _session(tmp_path, "older")  # written before the run list was recorded
    (old / "runs" / "x").mkdir(parents=True)
    (old / "runs" / "x" / "record.json").write_text("{}")
    proc = cli("sessions", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if "│" in line}
    assert rows["edited"].split("│")[4].strip() == "1/3"
    assert rows["older"].split("│")[4].strip() == "1"


def test_sessions_on_a_file_is_a_clear_error(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    msg = assert_clean_error(cli("sessions", "--out", f), 2)
    assert "is a file, not a folder of sessions" in msg


def test_sessions_on_a_folder_that_does_not_exist(cli: Any, tmp_path: Path) -> None:
    proc = cli("sessions", "--out", tmp_path / "nope")
    assert proc.returncode == 0, proc.stderr
    assert "(the folder does not exist)" in one_line(proc.stdout)


def test_unusable_smollab_home(tmp_path: Path) -> None:
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")
    args = ["eval", *MODEL, "--task", "arith_probe", "--limit", "1", "--out", tmp_path / "o"]
    proc = run_cli(*map(str, args), home=blocker / "sub")
    msg = assert_clean_error(proc, 2)
    assert "SMOLLAB_HOME" in msg and "writable folder" in msg
    assert blocker.read_text() == "x"


def test_eval_out_that_is_a_file_fails_before_loading(cli: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("mine")
    msg = assert_clean_error(
        cli("eval", *MODEL, "--task", "arith_probe", "--limit", "1", "--out", blocker), 2
    )
    assert str(blocker) in msg and "is a file" in msg and "--out" in msg
    assert blocker.read_text() == "mine"


def test_eval_unknown_dtype(cli: Any) -> None:
    msg = assert_clean_error(
        cli("eval", *MODEL, "--task", "arith_probe", "--limit", "1", "--dtype", "float8"), 2
    )
    assert "--dtype 'float8'" in msg and "bfloat16" in msg


@pytest.mark.parametrize(
    ("seeds", "match"),
    [("[]", "at least 1 item"), ("[1, 1]", "seeds must be distinct"), ("[true]", "integer")],
)
def test_condition_seeds_are_checked(tiny_spec_text: str, seeds: str, match: str) -> None:
    from smollab.study.spec import loads_spec

    text = tiny_spec_text.replace('name = "ft"', f'name = "ft"\nseeds = {seeds}', 1)
    assert text != tiny_spec_text
    with pytest.raises(ConfigError, match=match):
        loads_spec(text, "s.toml")


def test_session_name_must_be_one_folder(cli: Any, tmp_path: Path, tiny_spec_text: str) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text)
    for name in ("../escaped", "a/b", ".."):
        proc = cli("study", spec, "--out", tmp_path / "out", "--session-name", name, "--no-pdf")
        assert f"Session name {name!r} is not a folder name" in assert_clean_error(proc, 2)
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.rglob("record.json"))


def test_agent_options_without_an_agent_are_refused(cli: Any, tmp_path: Path) -> None:
    from tests.conftest import REPO

    proc = cli(
        "run", REPO / "problems" / "multiplication.md", "--out", tmp_path,
        "--code", tmp_path, "--max-output-tokens", "20",
    )  # fmt: skip
    msg = assert_clean_error(proc, 2)
    assert "--code, --max-output-tokens are for the research agent" in msg and "--agent" in msg
    assert not list(tmp_path.rglob("record.json"))


def test_study_data_dir_must_exist(cli: Any, tmp_path: Path, tiny_spec_text: str) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text)
    proc = cli("study", spec, "--out", tmp_path / "out", "--data-dir", tmp_path / "nodata")
    msg = assert_clean_error(proc, 2)
    assert "--data-dir" in msg and "nodata" in msg and "not a folder" in msg


@pytest.mark.parametrize("command", ["study", "eval"])
def test_an_empty_data_dir_is_refused_not_read_as_the_current_folder(
    cli: Any, tmp_path: Path, tiny_spec_text: str, command: str
) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text)
    args = [spec] if command == "study" else ["--model", "smollm2-135m", "--task", "hellaswag"]
    proc = cli(command, *args, "--out", tmp_path / "out", "--data-dir", "")
    msg = assert_clean_error(proc, 2)
    assert "--data-dir is empty" in msg and "SMOLLAB_DATA_DIR" in msg
    assert not (tmp_path / "out").exists()


STRATA = 'strata = ["1x1", "1x2", "2x2", "3x3"]'


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (STRATA, 'strata = ["9x9x"]', "field 'strata': Stratum '9x9x'"),
        (STRATA, 'strata = ["0x1"]', "field 'strata': Stratum '0x1'"),
        ('task = "arith.mul"', "task = 5", "field 'task' is 5, not a task name"),
    ],
)
def test_task_field_errors_name_the_file_and_field(old: str, new: str, match: str) -> None:
    from smollab.study.spec import loads_spec
    from tests.conftest import REPO

    text = (REPO / "studies" / "multiplication.toml").read_text()
    assert old in text
    with pytest.raises(ConfigError, match=rf"^m\.toml: tasks\[0\]: {match}"):
        loads_spec(text.replace(old, new, 1), "m.toml")


@pytest.mark.parametrize("fence", ["```toml", "  ```toml", "```TOML"])
def test_a_problem_file_whose_toml_fence_is_not_a_closed_block(tmp_path: Path, fence: str) -> None:
    """A protocol block that is there but not closed (or indented, or upper case) is named as
    such, with its line, instead of "no reference protocol"."""
    from smollab.study.problem import load_problem

    p = tmp_path / "q.md"
    p.write_text(f"# Question\n\nText.\n\n{fence}\n[study]\nname = 'x'\n")
    if fence != "```toml":  # a closed block, but one the reader does not take
        p.write_text(p.read_text() + "```\n")
    with pytest.raises(ConfigError) as e:
        load_problem(p)
    msg = str(e.value)
    assert f"q.md, line 5: the reference protocol's fence {fence.strip()!r}" in msg
    assert "close it with ```" in msg


def test_study_on_a_problem_file_points_at_smollab_run(cli: Any) -> None:
    msg = assert_clean_error(cli("study", "problems/multiplication.md", "--no-pdf"), 2)
    assert "is a problem file (Markdown), not a study spec" in msg
    assert "smollab run problems/multiplication.md" in msg


def test_estimate_checks_code_and_prices_runs_default_iterations(cli: Any, tmp_path: Path) -> None:
    """estimate refuses a --code that is not a folder (as run does), and by default prices the
    iterations run takes by default (3)."""
    msg = assert_clean_error(
        cli("estimate", "problems/multiplication.md", "--code", tmp_path / "nope"), 2
    )
    assert f"--code {tmp_path / 'nope'} is not a directory" in msg
    proc = cli("estimate", "problems/multiplication.md", "--agent", "anthropic:claude-sonnet-5-5")
    assert proc.returncode == 0 and "3 iterations" in one_line(proc.stdout)


def test_start_iteration_beyond_max_iterations_is_refused(cli: Any, tmp_path: Path) -> None:
    from tests.agent.scripts import PROBLEM

    problem = tmp_path / "problem.md"
    problem.write_text(PROBLEM)
    script = tmp_path / "s.json"
    script.write_text("[]")
    proc = cli("run", problem, "--agent", f"scripted:{script}", "--max-iterations", "2",
               "--start-iteration", "9", "--out", tmp_path / "o")  # fmt: skip
    msg = assert_clean_error(proc, 2)
    assert "--start-iteration 9 is beyond the session's 2 iterations" in msg
