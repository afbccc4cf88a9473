"""``smollab eval`` through the real CLI: outputs, resume, and clear errors on bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import assert_clean_error
from tests.conftest import SHARED, needs_data, one_line
from tests.tasks.test_text import qa_records, write_jsonl

TOK = SHARED / "gpt2-tokenizer"
pytestmark = needs_data
MODEL = ("--model", "scratch:gpt2", "--tokenizer", str(TOK))


def _lines(p: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_eval_writes_results_samples_summary_and_resumes(cli, tmp_path):
    out = tmp_path / "ev"
    args = (*MODEL, "--task", "hellaswag", "--task", "arith_probe", "--limit", "4",
            "--data-dir", SHARED, "--out", out, "--batch-size", "8")  # fmt: skip
    proc = cli("eval", *args)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())
    hs = res["tasks"]["hellaswag"]
    assert hs["n"] == 4 and set(hs["metrics"]) == {"acc", "acc_norm"}
    iv = hs["metrics"]["acc"]
    assert iv["method"] == "wilson" and iv["low"] <= iv["estimate"] <= iv["high"]
    samples = _lines(out / "samples_hellaswag.jsonl")
    assert [s["id"] for s in samples] == ["0", "1", "2", "3"]
    assert sum(s["acc"] for s in samples) / 4 == pytest.approx(iv["estimate"])
    assert "| hellaswag | acc_norm |" in (out / "summary.md").read_text()
    assert "arith_probe" in proc.stdout and "acc" in proc.stdout
    assert "samples_hellaswag.jsonl" in proc.stdout.replace("\n", "")  # listed as written
    # again, with a higher limit: the first 4 items are reused, 2 more computed
    proc = cli("eval", *args[:-4], "--limit", "6", "--out", out)
    assert proc.returncode == 0, proc.stderr
    ids = [s["id"] for s in _lines(out / "samples_hellaswag.jsonl")]
    assert ids == ["0", "1", "2", "3", "4", "5"]
    hs = json.loads((out / "results.json").read_text())["tasks"]["hellaswag"]
    assert hs["n"] == 6 and hs["n_reused"] == 4
    said = " ".join(proc.stdout.split())
    assert "hellaswag: 6 items in" in said
    assert "(4 read back from samples_hellaswag.jsonl, 2 computed)" in said
    # and once more: nothing to compute, and the message says so
    proc = cli("eval", *args[:-4], "--limit", "6", "--out", out)
    said = " ".join(proc.stdout.split())
    assert "(every item read back from samples_hellaswag.jsonl)" in said, said


def test_unknown_task_lists_valid_tasks(cli):
    msg = assert_clean_error(cli("eval", *MODEL, "--task", "hellaswg"), code=2)
    assert "Unknown task 'hellaswg'" in msg and "gsm8k" in msg and "hellaswag" in msg


def test_unknown_device_is_a_clear_error(cli):
    msg = assert_clean_error(
        cli("eval", *MODEL, "--task", "arith_probe", "--device", "gpu"), code=2
    )
    assert "device='gpu' is not a device name" in msg and "'cuda'" in msg


def test_missing_data_file(cli, tmp_path):
    (tmp_path / "hellaswag").mkdir()
    msg = assert_clean_error(
        cli("eval", *MODEL, "--task", "hellaswag", "--data-dir", tmp_path), code=2
    )
    assert "hellaswag_val.jsonl.gz" in msg and "--data-dir" in msg


def test_truncated_data_file(cli, tmp_path):
    src = (SHARED / "hellaswag" / "hellaswag_val.jsonl.gz").read_bytes()
    (tmp_path / "hellaswag").mkdir()
    (tmp_path / "hellaswag" / "hellaswag_val.jsonl.gz").write_bytes(src[: len(src) // 2])
    msg = assert_clean_error(
        cli("eval", *MODEL, "--task", "hellaswag", "--data-dir", tmp_path), code=2
    )
    assert "hellaswag_val.jsonl.gz is truncated or corrupt" in msg and "PROVENANCE.md" in msg


def test_data_dir_with_the_wrong_format(cli, tmp_path):
    (tmp_path / "gsm8k").mkdir()
    rows = "".join(json.dumps({"problem": "x", "solution": "y"}) + "\n" for _ in range(3))
    (tmp_path / "gsm8k" / "test.jsonl").write_text(rows)
    (tmp_path / "gsm8k" / "train.jsonl.gz").write_bytes(gzip.compress(rows.encode()))
    msg = assert_clean_error(cli("eval", *MODEL, "--task", "gsm8k", "--data-dir", tmp_path), code=2)
    assert "test.jsonl, record 0: missing field(s) ['question', 'answer']" in msg


def test_window_too_short_for_the_generation_budget(cli, tmp_path):
    # the scratch model's window is 256 tokens, gsm8k's generation budget alone is 256
    # (finished tasks are kept on such a failure: tests/eval/test_harness.py)
    proc = cli("eval", *MODEL, "--task", "gsm8k", "--limit", "1", "--data-dir", SHARED,
               "--out", tmp_path / "ev")  # fmt: skip
    msg = assert_clean_error(proc, code=2)
    assert "max_tokens=256 leaves no room for the prompt" in msg and "256 tokens" in msg
    assert "below 256 (e.g. smollab eval --max-tokens 64;" in msg  # the flag that fixes it


@pytest.mark.slow
def test_humaneval_through_the_cli_runs_tests_in_the_sandbox(cli, tmp_path):
    from smollab.sandbox import sandbox_status

    if sandbox_status() is not None:
        pytest.skip("sandbox unavailable here")
    out = tmp_path / "ev"
    proc = cli("eval", *MODEL, "--task", "humaneval", "--limit", "2", "--max-tokens", "8",
               "--data-dir", SHARED, "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    he = json.loads((out / "results.json").read_text())["tasks"]["humaneval"]
    assert he["n"] == 2 and he["pass_at_k"]["pass@1"]["estimate"] == 0.0  # a random model
    assert set(he["outcomes"]) <= {"syntax_error", "runtime_error", "assertion_error"}
    rec = _lines(out / "samples_humaneval.jsonl")[0]
    assert rec["id"] == "HumanEval/0" and len(rec["completions"]) == 1


def test_samples_option_on_tasks_that_take_none(cli):
    msg = assert_clean_error(cli("eval", *MODEL, "--task", "hellaswag", "--samples", "5"), code=2)
    want = (
        "--samples applies to the tasks humaneval, humaneval_chat, humaneval_unstripped, mbpp, "
        "mbpp_chat, mbpp_sanitized"
    )
    assert want in msg


def test_threads_option_sets_and_records_the_threads(cli, tmp_path):
    out = tmp_path / "ev"
    proc = cli("eval", *MODEL, "--task", "arith_probe", "--limit", "2", "--threads", "1",
               "--out", out, "--no-cache")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["workers"] == {"procs": 1, "threads_per_proc": 1, "start_seconds": None}
    bad = cli("eval", *MODEL, "--task", "arith_probe", "--threads", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_second_eval_into_a_folder_keeps_the_first_ones_tasks(cli, tmp_path):
    """QA: eval --task hellaswag --task arith_probe --out D, then eval --task gsm8k ... --out D
    left results.json and summary.md with the second run's tasks only."""
    out = tmp_path / "ev"
    proc = cli("eval", *MODEL, "--task", "arith_probe", "--limit", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    proc = cli("eval", *MODEL, "--task", "hellaswag", "--limit", "1", "--data-dir", SHARED,
               "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "keeps the results of the tasks evaluated there before: arith_probe" in text
    assert "arith_probe: 5 items in" in text and "s (an earlier run)" in text
    assert list(json.loads((out / "results.json").read_text())["tasks"]) == [
        "arith_probe",
        "hellaswag",
    ]
    summary = (out / "summary.md").read_text()
    assert "| arith_probe | acc |" in summary and "| hellaswag | acc |" in summary


def test_pass_k_option_is_checked_against_the_samples(cli):
    msg = assert_clean_error(
        cli("eval", *MODEL, "--task", "mbpp", "--samples", "2", "--pass-k", "1", "--pass-k", "5"),
        code=2,
    )
    assert "field 'k': pass@k with k = [5] needs at least 5 samples per problem" in msg
    msg = assert_clean_error(cli("eval", *MODEL, "--task", "hellaswag", "--pass-k", "2"), code=2)
    assert "Option --pass-k applies to the tasks humaneval" in msg


def test_huge_samples_is_refused_before_anything_is_loaded(cli):
    # 10^8 samples per problem once built 5 GB of requests in a minute before any was scored
    proc = cli("eval", *MODEL, "--task", "humaneval", "--samples", "100000000", "--pass-k", "5")
    msg = assert_clean_error(proc, code=2)
    assert "field 'n_samples': n_samples (smollab eval --samples) is 100000000" in msg
    assert "ask for at most 1000" in msg
    assert "n_samples is 1" not in msg  # --pass-k is not compared with a refused --samples


def test_ctrl_c_says_the_evaluated_items_are_kept_and_the_command_resumes(tmp_path, tmp_home):
    """QA: an interrupted eval printed the study's message (runs, training checkpoints)."""
    import os
    import signal
    import subprocess
    import time

    from tests.cli.test_interrupt import _sigint_default
    from tests.conftest import REPO, cli_env, one_line, smollab_cmd

    out = tmp_path / "ev"
    args = ("eval", "--model", "scratch:gpt2", "--task", "hellaswag", "--limit", "300",
            "--data-dir", SHARED, "--out", out, "--no-cache")  # fmt: skip
    proc = subprocess.Popen(
        smollab_cmd(*map(str, args)),
        env=cli_env(tmp_home, SMOLLAB_EVAL_CHUNK="4"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_sigint_default,
    )
    samples = out / "samples_hellaswag.jsonl"
    t0 = time.monotonic()
    while not (samples.exists() and len(_lines(samples)) >= 4):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 120, "no item was evaluated in 120 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    msg = one_line(stderr)
    assert "interrupted: the items evaluated so far are kept in the samples_<task>.jsonl" in msg
    assert "run the same eval command again to resume" in msg and "checkpoint" not in msg
    assert len(_lines(samples)) < 300 and not (out / "summary.md").exists()


def test_eval_of_an_exact_match_task_with_a_benchmark_and_resume(cli, tmp_path):
    """DESIGN.md's flow `smollab eval --model M --task arith.mul:2x2 --task hellaswag`."""
    out = tmp_path / "ev"
    args = (*MODEL, "--task", "arith.mul:2x2", "--task", "hellaswag", "--data-dir", SHARED,
            "--out", out, "--batch-size", "4", "--no-cache")  # fmt: skip
    proc = cli("eval", *args, "--limit", "3")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())
    assert list(res["tasks"]) == ["arith.mul", "hellaswag"]
    mul = res["tasks"]["arith.mul"]
    assert mul["n"] == 3 and list(mul["strata"]) == ["2x2"]
    iv = mul["metrics"]["exact_match"]
    assert iv["method"] == "wilson" and iv["n"] == 3 and iv["low"] <= iv["estimate"] <= iv["high"]
    assert mul["strata"]["2x2"]["exact_match"]["n"] == 3
    rows = _lines(out / "samples_arith.mul.jsonl")
    assert [r["id"] for r in rows] == ["2x2-0000", "2x2-0001", "2x2-0002"]
    for r in rows:
        assert r["stratum"] == "2x2" and r["prompt"].startswith("Q: What is ")
        assert {"completion", "target", "correct"} <= set(r)
        a, b = r["prompt"].removeprefix("Q: What is ").removesuffix("? A:").split(" * ")
        assert r["target"] == str(int(a) * int(b))
    assert sum(r["correct"] for r in rows) / 3 == pytest.approx(iv["estimate"])
    summary = (out / "summary.md").read_text()
    # one stratum: its rows once, under the stratum's name (not the same numbers twice)
    assert summary.count("| arith.mul / 2x2 | exact_match |") == 1
    assert "| arith.mul | exact_match |" not in summary
    assert "| hellaswag | acc |" in summary
    # more items: the 3 finished are read back
    proc = cli("eval", *args, "--limit", "5")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stdout.split())
    assert "(3 read back from samples_arith.mul.jsonl, 2 computed)" in said, said
    assert len(_lines(out / "samples_arith.mul.jsonl")) == 5
    # another exact-match task into the same folder keeps the others' results
    proc = cli("eval", *MODEL, "--task", "arith.add:1x1", "--limit", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())
    assert list(res["tasks"]) == ["arith.mul", "hellaswag", "arith.add"]
    assert res["tasks"]["arith.mul"]["n"] == 5 and res["tasks"]["arith.add"]["n"] == 2


def test_unknown_stratum_lists_the_tasks_strata(cli):
    msg = assert_clean_error(cli("eval", *MODEL, "--task", "arith.mul:5x5"), code=2)
    assert "Task 'arith.mul' has no stratum '5x5'" in msg
    assert "are: 1x1, 1x2, 2x2, 3x3" in msg and "--task arith.mul:2x2" in msg


def test_help_shows_the_spec_table_name(cli: Any) -> None:
    """rich read [[tasks]] in the help as markup and printed "[] table gives only the task"."""
    said = one_line(cli("eval", "--help").stdout)
    assert "[[tasks]] table gives only the task" in said and "[] table" not in said
    assert "--task text:PATH evaluates every record of the JSON Lines file PATH" in said


def test_text_task_evaluates_your_own_file(cli: Any, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records()[:8])
    out = tmp_path / "ev"
    proc = cli("eval", *MODEL, "--task", f"text:{data}", "--stratum-field", "kind", "--limit", "2",
               "--out", out, "--no-cache")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = json.loads((out / "results.json").read_text())["tasks"]["text"]
    assert text["n"] == 4 and list(text["strata"]) == ["capital", "reverse"]
    iv = text["metrics"]["exact_match"]
    assert iv["method"] == "wilson" and iv["n"] == 4 and iv["low"] <= iv["estimate"] <= iv["high"]
    assert [text["strata"][s]["exact_match"]["n"] for s in ("capital", "reverse")] == [2, 2]
    assert text["config"]["format"] == "text" and text["data_files"] == [str(data.resolve())]
    rows = _lines(out / "samples_text.jsonl")
    # the first 2 records of each stratum, in file order (capital and reverse alternate)
    assert [r["id"] for r in rows] == [f"test-line{i:06d}" for i in range(1, 5)]
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in qa_records()[:4]]
    assert sum(r["correct"] for r in rows) / 4 == pytest.approx(iv["estimate"])
    assert "| text / capital | exact_match |" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--task", "text:nope.jsonl"], "--task text:nope.jsonl: data file nope.jsonl does not "
         "exist (a relative path is read from"),
        (["--task", "text:BAD"], "bad.jsonl, line 2: not valid JSON (Expecting property name "
         "enclosed in double quotes); the file looks truncated. Each line of a .jsonl file must "
         "be one JSON record; fix or drop that line."),
        (["--task", "text:QA", "--stratum-field", "topic"], "qa.jsonl, line 1: field 'topic' is "
         "missing, where a string is expected (the record has fields ['answer', 'kind', "
         "'prompt']). Fix that line, or give the field that holds it with --stratum-field."),
        (["--task", "text"], "--task text names no file: the text task evaluates your own JSON "
         "Lines file, given after a colon: --task text:PATH"),
        (["--task", "text:qa.csv"], "--task text:qa.csv: qa.csv is not a JSON Lines file."),
        (["--task", "text:QA", "--format", "plain"], "the formats that fit it are text, "
         "text_chat. Pass --format with one of them."),
    ],
)  # fmt: skip
def test_text_task_bad_input_is_one_clear_paragraph(
    cli: Any, tmp_path: Path, args: list[str], says: str
) -> None:
    qa = write_jsonl(tmp_path / "qa.jsonl", qa_records()[:4])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "answer": "b"}\n{"prompt": "c", answer: "d"}\n')
    args = [a.replace("text:QA", f"text:{qa}").replace("text:BAD", f"text:{bad}") for a in args]
    msg = assert_clean_error(cli("eval", *MODEL, *args, "--out", tmp_path / "ev"), code=2)
    assert says in msg, msg
