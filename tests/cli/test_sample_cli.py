"""``smollab sample`` through the real CLI: greedy and sampled completions from the existing
generation, a study run's trained model, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import assert_clean_error
from tests.conftest import SHARED, TINY_SPEC, needs_data, one_line

TOK = SHARED / "gpt2-tokenizer"
MODEL = ("--model", "scratch:gpt2", "--tokenizer", str(TOK))
PROMPTS = ["Hello world", "23*47=", "The capital of France is"]


def _lines(p: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def _scratch() -> Any:
    from smollab.models import load_model

    return load_model("scratch:gpt2", tokenizer=str(TOK))


@needs_data
def test_greedy_is_the_batched_generation(cli, tmp_path):
    from smollab.eval.generate import greedy_generate

    pfile = tmp_path / "prompts.txt"
    pfile.write_text(f"{PROMPTS[1]}\n\n{PROMPTS[2]}\n")  # a blank line is skipped
    out = tmp_path / "s.jsonl"
    proc = cli("sample", *MODEL, "--prompt", PROMPTS[0], "--prompts-file", pfile,
               "--max-tokens", "8", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = _lines(out)
    assert [r["prompt"] for r in rows] == PROMPTS
    assert [r["sample"] for r in rows] == [0, 0, 0]
    assert rows[0]["settings"] == {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0,
                                   "seed": 0, "stop": [], "format": None}  # fmt: skip
    lm = _scratch()
    want = greedy_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=8, stop=())
    assert [r["completion"] for r in rows] == want
    assert all(w for w in want)  # eight tokens each: something to compare
    said = one_line(proc.stdout)
    assert f"prompt 1: {PROMPTS[0]!r}" in said and one_line(want[0]) in said


@needs_data
def test_sampling_n_per_prompt_reproducible_with_seed(cli, tmp_path):
    from smollab.eval.generate import greedy_generate

    pfile = tmp_path / "prompts.jsonl"
    pfile.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:2]))
    args = (*MODEL, "--prompts-file", pfile, "--temperature", "1.0", "--top-p", "0.95",
            "--n", "3", "--seed", "5", "--max-tokens", "6")  # fmt: skip
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        proc = cli("sample", *args, "--out", out)
        assert proc.returncode == 0, proc.stderr
    rows = _lines(a)
    assert rows == _lines(b)  # the same seed: the same samples
    assert [(r["prompt"], r["sample"], r["settings"]["seed"]) for r in rows] == [
        (p, k, 5 + k) for p in PROMPTS[:2] for k in range(3)
    ]
    first = [r["completion"] for r in rows[:3]]
    assert len(set(first)) > 1, first  # three draws at temperature 1, not one text thrice
    lm = _scratch()
    for k in range(3):  # sample k is the generation's sample with seed 5 + k
        want = greedy_generate(lm.model, lm.tokenizer, PROMPTS[:2], max_new_tokens=6, stop=(),
                               temperature=1.0, top_p=0.95, seed=5 + k)  # fmt: skip
        assert [rows[k]["completion"], rows[3 + k]["completion"]] == want
    c = tmp_path / "c.jsonl"
    assert cli("sample", *args[:-4], "--seed", "6", "--max-tokens", "6", "--out", c).returncode == 0
    assert [r["completion"] for r in _lines(c)][:2] == first[1:]  # seed 6 is a's sample 2


def test_api_model_through_an_openai_compatible_server(cli, tmp_path):
    """An API model samples through ProviderLM: one user message per prompt and sample, the
    reply cut at --stop."""
    pytest.importorskip("openai")
    from tests.providers.wire import Replay, chat_completion

    server = Replay()
    server.respond = lambda body: (200, chat_completion(f"re: {body['messages'][0]['content']}!"))
    try:
        out = tmp_path / "api.jsonl"
        proc = cli("sample", "--model", "openai:local", "--base-url", server.url + "/v1",
                   "--prompt", "7 * 8", "--format", "plain", "--prompt", "2+2", "--stop", "?",
                   "--temperature", "0.5", "--n", "2", "--max-tokens", "12",
                   "--out", out)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        bodies = [r["body"] for r in server.requests]
    finally:
        server.close()
    rows = _lines(out)
    sent = ["Q: What is 7 * 8? A:", "Q: What is 2 + 2? A:"]
    assert [r["prompt_sent"] for r in rows] == [sent[0], sent[0], sent[1], sent[1]]
    # the reply "re: Q: What is 7 * 8? A:!" cut before the first "?"
    assert [r["completion"] for r in rows[::2]] == ["re: Q: What is 7 * 8", "re: Q: What is 2 + 2"]
    assert len(bodies) == 4
    assert all(b["max_tokens"] == 12 and b["temperature"] == 0.5 for b in bodies)
    assert sorted(b["messages"][0]["content"] for b in bodies) == sorted(sent * 2)


@pytest.fixture
def tiny_runs(tmp_path: Path) -> dict[str, Path]:
    """The tiny study's baseline and fine-tuned runs of seed 0, finished in-process."""
    from smollab.study.runspec import expand
    from smollab.study.spec import loads_spec
    from smollab.study.worker import execute_run, prepare_run_dir

    runs = {}
    for r in expand(loads_spec(TINY_SPEC)):
        if r.seed == 0:
            d = tmp_path / "runs" / r.hash
            prepare_run_dir(d, r)
            execute_run(d)
            runs[r.condition] = d
    return runs


def test_run_samples_the_trained_model(cli, tiny_runs, tmp_path):
    """Sampling a run reproduces the completions its own evaluation wrote: the fine-tuned
    run's from its checkpoint, the baseline's from the base model."""
    preds = {c: _lines(d / "predictions" / "add.jsonl")[:6] for c, d in tiny_runs.items()}
    questions = [p["prompt"].strip().rstrip("=") for p in preds["ft"]]  # "\n3+9=" -> "3+9"
    assert [p["prompt"] for p in preds["baseline"]] == [p["prompt"] for p in preds["ft"]]
    # the check has teeth: the four training steps changed what the model writes
    assert [p["completion"] for p in preds["ft"]] != [p["completion"] for p in preds["baseline"]]
    for cond, d in tiny_runs.items():
        out = tmp_path / f"{cond}.jsonl"
        args = [a for q in questions for a in ("--prompt", q)]
        # the run's format (compact) by default; an explicit --format is the same here
        fmt = ("--format", "compact") if cond == "baseline" else ()
        proc = cli("sample", "--run", d, *args, *fmt, "--max-tokens", "3", "--out", out)
        assert proc.returncode == 0, proc.stderr
        rows = _lines(out)
        assert [r["prompt_sent"] for r in rows] == [p["prompt"] for p in preds[cond]]
        assert rows[0]["settings"]["stop"] == ["\n"]  # a format stops where a study's eval does
        # greedy decoding is the same for the first 3 tokens (1 char each) whatever the budget
        got = [r["completion"] for r in rows]
        assert got == [p["completion"][:3] for p in preds[cond]], (cond, got)
        said = one_line(proc.stdout)
        assert ("format compact, the run's (--format sets another)" in said) is (cond == "ft")
        if cond == "ft":
            assert "the full fine-tune of scratch:gpt2 (4 steps)" in said
            assert str(d / "ckpt" / "final") in said.replace(" ", "")
        else:
            assert "is a baseline (no trained checkpoint): sampling its base model" in said
    # a prompt that is no arithmetic question is sent as it is, and the output says why
    proc = cli("sample", "--run", tiny_runs["ft"], "--prompt", "hello", "--max-tokens", "2")
    assert proc.returncode == 0, proc.stderr
    assert "prompts sent as they are: not all are arithmetic questions" in one_line(proc.stdout)
    # a run folder whose run has not finished is refused
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "spec.json").write_text((tiny_runs["ft"] / "spec.json").read_text())
    msg = assert_clean_error(cli("sample", "--run", unfinished, "--prompt", "1+1"), code=2)
    assert f"--run {unfinished} is not a finished run (no record.json)" in msg


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "No prompt given. Pass --prompt TEXT"),
        (("--prompts-file", "missing.txt"), "--prompts-file missing.txt does not exist"),
        (("--prompts-file", "{empty}"), "holds no prompt (it is empty or blank)"),
        (("--prompt", "x", "--temperature", "-0.5"), "--temperature -0.5 is negative"),
        (("--prompt", "x", "--top-p", "0"), "--top-p 0.0 is outside (0, 1]"),
        (("--prompt", "x", "--top-p", "1.5"), "--top-p 1.5 is outside (0, 1]"),
        (("--prompt", "x", "--n", "0"), "--n 0: ask for 1 sample per prompt or more"),
        (("--prompt", "x", "--run", "{tmp}"), "has no spec.json: it is not a study run folder"),
        (("--prompt", "hello", "--format", "compact"), "prompt 'hello' is not an arithmetic"),
        (("--prompt", "1+1", "--format", "nope"), "Unknown prompt format 'nope' in --format"),
    ],
)
def test_bad_input_is_one_clear_paragraph(cli, tmp_path, args, expected):
    (tmp_path / "empty.txt").write_text("\n  \n")
    args = tuple(
        a.format(empty=tmp_path / "empty.txt", tmp=tmp_path) if "{" in a else a for a in args
    )
    model = () if "--run" in args else ("--model", "scratch:gpt2")
    msg = assert_clean_error(cli("sample", *model, *args), code=2)
    assert expected in msg, msg


def test_model_or_run_is_required(cli, tmp_path):
    msg = assert_clean_error(cli("sample", "--prompt", "x"), code=2)
    assert "--model SOURCE" in msg and "--run RUN_DIR" in msg
    msg = assert_clean_error(
        cli("sample", "--model", "scratch:gpt2", "--run", tmp_path, "--prompt", "x"), code=2
    )
    assert "not both" in msg


def test_help_has_an_example(cli):
    proc = cli("sample", "--help")
    assert proc.returncode == 0
    assert "Example: smollab sample --model" in one_line(proc.stdout)
