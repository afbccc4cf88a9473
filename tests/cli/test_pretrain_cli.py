"""smollab train / eval with a corpus (--task corpus:PATH): perplexity results, clear refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError
from smollab.io import read_json
from smollab.study.spec import loads_spec
from tests.conftest import one_line

TINY = ["--set", "model.n_layer=1", "--set", "model.n_embd=32", "--set", "model.n_head=2"]


def corpus(tmp_path: Path) -> Path:
    p = tmp_path / "wiki.txt"
    p.write_text("\n\n".join(f"doc {i}: the cat sat on the mat." for i in range(10)) + "\n")
    return p


def test_train_on_a_corpus_reports_held_out_perplexity(tmp_path: Path, cli: Any) -> None:
    p = corpus(tmp_path)
    out = tmp_path / "out"
    r = cli("train", "--task", f"corpus:{p}", "--model", "scratch:gpt2", *TINY, "--steps", "3",
            "--seq-len", "32", "--batch-size", "2", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    session = out / "train-wiki-scratch-gpt2"
    res = read_json(session / "results" / "results.json")
    assert res["kind"] == "pretrain" and res["data"]["n_test"] == 1
    (run,) = res["conditions"]["train"]["runs"]
    m = run["metrics"]
    assert m["token_perplexity"]["low"] <= m["token_perplexity"]["estimate"]
    assert run["train_steps"] == 3
    assert "token perplexity" in one_line(r.stdout)
    # the end-of-command hint says what `smollab report` makes of a pretraining session
    assert (
        "Learning curves and bits-per-byte figure (figures/), report.md/.html with the "
        "perplexity table (and, with several conditions, their comparisons), paper/paper.tex "
        f"(+ paper.pdf with TeX): smollab report {session}"
    ) in one_line(r.stdout)
    rep = cli("report", session, "--no-pdf")
    assert rep.returncode == 0, rep.stderr + rep.stdout
    assert (session / "figures" / "pretrain_curves.png").is_file()
    assert (session / "figures" / "pretrain_bits_per_byte.pdf").is_file()
    assert "figures/pretrain_curves.png" in (session / "report.md").read_text()
    assert (session / "paper" / "paper.tex").is_file()
    assert not (session / "paper" / "paper.pdf").exists()
    test = session / "data" / "wiki_test.jsonl"
    assert test.is_file()
    # the trained run is a model smollab eval loads; its held-out documents score the same
    ev = cli("eval", "--model", session / "runs" / run["hash"], "--task", f"corpus:{test}",
             "--out", tmp_path / "ev")  # fmt: skip
    assert ev.returncode == 0, ev.stderr + ev.stdout
    got = read_json(tmp_path / "ev" / "results.json")["tasks"]["corpus"]["metrics"]
    assert got["token_perplexity"]["estimate"] == pytest.approx(m["token_perplexity"]["estimate"])
    # and smollab sample --run continues text with it, calling it a pretraining run
    sa = cli("sample", "--run", session / "runs" / run["hash"], "--prompt", "doc 1:",
             "--max-tokens", "5")  # fmt: skip
    assert sa.returncode == 0, sa.stderr + sa.stdout
    assert "the full pretraining of scratch:gpt2 (3 steps)" in one_line(sa.stdout)
    # its text goes as it is: no word of an arithmetic format it was never trained in,
    # not even for a prompt that looks like an arithmetic question
    assert "prompts sent as they are (a pretraining run continues raw text)" in sa.stdout
    assert "format plain" not in one_line(sa.stdout)
    from smollab.cli.sample import _run_format

    assert _run_format(session / "runs" / run["hash"], ["23*47"]) == (
        None,
        "prompts sent as they are (a pretraining run continues raw text)",
    )


@pytest.mark.parametrize(
    "content, extra, expect",
    [
        (None, [], "does not exist"),
        ("\n\n", [], "holds no text"),
        ("x", ["--set", "task.test_fraction=1.5"], "test_fraction is 1.5, outside (0, 1)"),
        ("a\n\nb", ["--set", "task.test_fraction=0.1"], "0 held out, leaving no test document"),
        ("a\n\nb", ["--seq-len", "128", "--set", "task.test_fraction=0.5"], "longer than model"),
    ],
)
def test_train_refuses_bad_input_without_traceback(
    tmp_path: Path, cli: Any, content: str | None, extra: list[str], expect: str
) -> None:
    p = tmp_path / "c.txt"
    if content is not None:
        p.write_text(content)
    r = cli("train", "--task", f"corpus:{p}", "--model", "scratch:gpt2", *TINY,
            "--set", "model.block_size=64", *extra, "--out", tmp_path / "out")  # fmt: skip
    assert r.returncode != 0
    text = one_line(r.stdout + r.stderr)
    assert expect in text and "Traceback" not in text


def test_eval_refuses_a_jsonl_line_without_the_text_field(tmp_path: Path, cli: Any) -> None:
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "a"}\n{"body": "b"}\n')
    r = cli("eval", "--model", "scratch:gpt2", "--task", f"corpus:{p}", "--out", tmp_path / "o")
    assert r.returncode != 0
    text = one_line(r.stdout + r.stderr)
    assert f"{p}, line 2: field 'text' is missing" in text and "--text-field" in text
    assert "Traceback" not in text


def test_a_language_model_study_refuses_a_corpus_task(tmp_path: Path) -> None:
    p = corpus(tmp_path)
    spec = f"""
[study]
name = "s"
[[models]]
name = "m"
source = "scratch:gpt2"
[[tasks]]
id = "c"
task = "corpus"
path = "{p}"
[[conditions]]
name = "train"
[conditions.train]
steps = 2
"""
    with pytest.raises(ConfigError, match=r"kind = 'pretrain'"):
        loads_spec(spec)
    study = loads_spec(spec.replace('name = "s"', 'name = "s"\nkind = "pretrain"'))
    assert study.study.kind == "pretrain"


def test_report_on_a_pretraining_session_without_its_results(tmp_path: Path, cli: Any) -> None:
    """No results.json, or one written before curves and comparisons: one paragraph naming
    the file and the command that writes it, no traceback."""
    session = tmp_path / "out" / "s"
    (session / "results").mkdir(parents=True)
    (session / "study.toml").write_text('[study]\nname = "s"\nkind = "pretrain"\n')
    r = cli("report", session, "--no-pdf")
    assert r.returncode != 0
    text = one_line(r.stdout + r.stderr)
    assert f"{session} has no results/results.json" in text and "Traceback" not in text
    assert f"smollab study {session / 'study.toml'} --out {session.parent}" in text
    (session / "results" / "results.json").write_text(
        '{"schema": "smollab.pretrain/1", "kind": "pretrain", "conditions": {}}'
    )
    r = cli("report", session, "--no-pdf")
    assert r.returncode != 0
    text = one_line(r.stdout + r.stderr)
    assert f"{session / 'results' / 'results.json'} has schema 'smollab.pretrain/1'" in text
    assert "reads 'smollab.pretrain/2'" in text and "Traceback" not in text
    assert f"smollab study {session / 'study.toml'} --out {session.parent}" in text


def test_train_says_a_corpus_refusal_in_its_flags(tmp_path: Path) -> None:
    """smollab train's user wrote flags, not a spec: the corpus task's fixes come as the
    flags that make them (--task corpus:PATH, --set task.FIELD=...), not as spec fields."""
    from smollab.cli.train import _in_flags, build_spec
    from smollab.study.spec import dumps_spec

    def refusal(path: Path) -> str:
        spec = build_spec(model="scratch:gpt2", tasks=[f"corpus:{path}"], fmt=None,
                          train_flags={}, sets=[], seeds=[0], baseline=False, name="t",
                          tokenizer=None)  # fmt: skip
        with pytest.raises(ConfigError) as e:
            loads_spec(dumps_spec(spec), "study.toml")
        return one_line(_in_flags(e.value.message))

    three = tmp_path / "three.txt"
    three.write_text("a\n\nb\n\nc\n")
    msg = refusal(three)
    assert "test_fraction must be at least 0.167 and below 0.833: e.g. --set " in msg
    assert "task.test_fraction=0.333 (holds out 1), or give the test documents as --set " in msg
    assert "task.test_path=FILE." in msg and "set e.g. test_fraction" not in msg
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"text": "a"}\n{"body": "b"}\n')
    msg = refusal(bad)
    assert "name the field that holds the text (set it with --set task.text_field=...)" in msg
    assert msg.endswith("(In smollab train's flags: --task corpus:PATH)")
    msg = refusal(tmp_path / "nope.txt")
    assert "Check the path, or give another with --task corpus:PATH (a .txt file" in msg


def test_duplicates_epochs_tokenizer_and_trained_on_documents_are_said(
    tmp_path: Path, cli: Any
) -> None:
    """A path document also in test_path is left out of training and noted; a run that passes
    over its 12 training tokens ~256 times, with seq_len above them, is warned of with its
    epochs; the report names the tokenizer; smollab eval of the corpus the run trained on says
    how many of its documents were trained on."""
    train = tmp_path / "train.txt"
    train.write_text("aa bb\n\ncc dd\n\nee ff\n")
    test = tmp_path / "test.txt"
    test.write_text("aa bb\n\ngg hh\n")
    out = tmp_path / "out"
    r = cli("train", "--task", f"corpus:{train}", "--set", f"task.test_path={test}",
            "--model", "scratch:gpt2", *TINY, "--steps", "3", "--seq-len", "256",
            "--batch-size", "4", "--out", out, "--session-name", "s")  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    text = one_line(r.stdout)
    session = out / "s"
    res = read_json(session / "results" / "results.json")
    (run,) = res["conditions"]["train"]["runs"]
    # "cc dd" and "ee ff", each with its EOS: 12 characters; 3 x 4 x 256 tokens trained on
    assert run["tokens_per_epoch"] == 12 and run["epochs"] == pytest.approx(3 * 4 * 256 / 12)
    assert "256 epochs of 12 training tokens" in text  # the run's summary lines
    assert "(2 documents;" in text
    split = read_json(session / "data" / "train_split.json")
    assert split["n_train"] == 2 and split["train_removed_ids"] == ["doc000001"]
    notes = res["notes"]
    assert any(f"1 training document of {train} left out" in n for n in notes)
    assert any("trained 256 epochs over its 12 training tokens (more than 10)" in n for n in notes)
    assert any("seq_len 256 exceeds the 12 tokens of the training documents" in n for n in notes)
    for n in notes:
        assert one_line(n) in text  # printed after the results
    assert res["models"]["scratch-gpt2"]["tokenizer"] == "char"
    rep = cli("report", session, "--no-pdf")
    assert rep.returncode == 0, rep.stderr + rep.stdout
    md = (session / "report.md").read_text()
    vocab = res["models"]["scratch-gpt2"]["vocab_size"]
    assert isinstance(vocab, int) and f"tokenizer char, vocabulary {vocab}" in md
    assert "2 test documents from test_path, 2 for training (1 left out of training" in md
    assert "Note: Condition train trained 256 epochs" in one_line(md)
    ev = cli("eval", "--model", session / "runs" / run["hash"], "--task", f"corpus:{train}",
             "--out", tmp_path / "ev")  # fmt: skip
    assert ev.returncode == 0, ev.stderr + ev.stdout
    note = read_json(tmp_path / "ev" / "results.json")["tasks"]["corpus"]["note"]
    assert f"WARNING: 2 of the 3 documents of {train}, the corpus of task 'train'" in note
    assert f"--task corpus:{session / 'data' / 'train_test.jsonl'}" in note
    assert "WARNING: 2 of the 3 documents" in one_line(ev.stdout)
    held = cli("eval", "--model", session / "runs" / run["hash"], "--task", f"corpus:{test}",
               "--out", tmp_path / "ev2")  # fmt: skip
    assert held.returncode == 0, held.stderr + held.stdout
    assert "note" not in read_json(tmp_path / "ev2" / "results.json")["tasks"]["corpus"]
