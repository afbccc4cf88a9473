"""The ``text`` task in a study: spec checks, run hashes over the data file, a whole session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smollab.cli.study import _print_lm_summary
from smollab.errors import ConfigError
from smollab.io import read_json, read_jsonl
from smollab.study.executor import InlineExecutor
from smollab.study.runspec import expand
from smollab.study.session import run_study
from smollab.study.spec import loads_spec
from smollab.tasks import build_task
from tests.conftest import TINY_SPEC, ensure_report
from tests.tasks.test_text import qa_records, write_jsonl

SPEC = """\
[study]
name = "qa"
seeds = [0]

[[models]]
name = "tiny-gpt2"
source = "scratch:gpt2"
tokenizer = "char"
config = {{ n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }}

[[tasks]]
id = "qa"
task = "text"
path = "{path}"
stratum_field = "kind"
n_test = 6

[[conditions]]
name = "baseline"
{fmt}
[[conditions]]
name = "ft"
{fmt}
[conditions.train]
steps = 4
lr = 1e-3
warmup_steps = 1
batch_size = 4
seq_len = 64
eval_every = 2
eval_items = 4
threads = 1

[eval]
batch_size = 16
"""


def spec_text(path: Path, fmt: str = "") -> str:
    return SPEC.format(path=path, fmt=fmt)


@pytest.fixture
def qa(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "qa.jsonl", qa_records())


def test_a_condition_without_format_uses_the_text_format(qa: Path) -> None:
    spec = loads_spec(spec_text(qa))
    assert [c.format for c in spec.conditions] == ["text", "text"]
    assert {r.format for r in expand(spec)} == {"text"}
    chat = loads_spec(spec_text(qa, 'format = "text_chat"'))
    assert [c.format for c in chat.conditions] == ["text_chat", "text_chat"]


def test_an_arithmetic_format_on_a_text_task_is_refused(qa: Path) -> None:
    with pytest.raises(ConfigError) as e:
        loads_spec(spec_text(qa, 'format = "plain"'), "qa.toml")
    msg = e.value.message
    assert msg.startswith("qa.toml: field 'conditions[0].format' ('baseline') is 'plain'")
    assert "does not fit task 'qa' (text)" in msg
    assert "the formats that fit it are text, text_chat" in msg
    assert "Set conditions[0].format to one of them." in msg


def test_a_text_format_on_an_arithmetic_task_is_refused() -> None:
    text = TINY_SPEC.replace('format = "compact"', 'format = "text"')
    with pytest.raises(ConfigError, match="'conditions\\[0\\].format' \\('baseline'\\) is 'text'"):
        loads_spec(text, "tiny.toml")
    # an arithmetic study's default format is what it was
    default = loads_spec(TINY_SPEC.replace('format = "compact"\n', ""))
    assert [c.format for c in default.conditions] == ["plain", "plain"]


def test_arithmetic_and_text_tasks_in_one_study_are_refused(qa: Path) -> None:
    text = spec_text(qa).replace(
        '[[conditions]]\nname = "baseline"',
        '[[tasks]]\nid = "add"\ntask = "arith.add"\n\n[[conditions]]\nname = "baseline"',
        1,
    )
    with pytest.raises(ConfigError, match="take prompt formats of different families"):
        loads_spec(text, "mixed.toml")


def test_data_errors_are_refused_when_the_spec_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^qa.toml: tasks\\[0\\]: Task 'qa': field 'path'"):
        loads_spec(spec_text(tmp_path / "missing.jsonl"), "qa.toml")
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [*qa_records(), {"prompt": "q", "answer": "", "kind": "capital"}]
    )
    with pytest.raises(ConfigError, match="^qa.toml: tasks\\[0\\]: .*line 61: field 'answer'"):
        loads_spec(spec_text(bad), "qa.toml")
    # a broken line of the user's own file: fix or drop it (it has no source to copy again)
    broken = tmp_path / "broken.jsonl"
    lines = write_jsonl(broken, qa_records()).read_text().splitlines(keepends=True)
    broken.write_text("".join([*lines[:5], '{"prompt": broken\n', *lines[5:]]))
    with pytest.raises(ConfigError) as e:
        loads_spec(spec_text(broken), "qa.toml")
    msg = e.value.message
    assert msg.startswith("qa.toml: tasks[0]: Task 'qa': field 'path': Data file ")
    assert "broken.jsonl, line 6: not valid JSON (Expecting value)." in msg
    assert msg.endswith("must be one JSON record; fix or drop that line.")
    assert "PROVENANCE" not in msg and "copy" not in msg


def test_run_hash_follows_the_data_file(qa: Path) -> None:
    """A run's hash covers the file's content, not only its name: a changed data file is not
    silently served by the runs made from the old one."""
    before = [r.hash for r in expand(loads_spec(spec_text(qa)))]
    assert before == [r.hash for r in expand(loads_spec(spec_text(qa)))]
    content = expand(loads_spec(spec_text(qa)))[0].content()
    assert set(content["tasks"][0]["data_sha256"]) == {"path"}
    rows = qa_records()
    rows[0]["answer"] = "Lutetia"
    write_jsonl(qa, rows)
    after = [r.hash for r in expand(loads_spec(spec_text(qa)))]
    assert not set(before) & set(after)


def test_a_file_whose_training_items_change_gets_new_run_hashes(qa: Path) -> None:
    """Runs made before test prompts were left out of training trained on them: a file with
    such items hashes its runs with task version 2, so they are not reused; a file without
    trains on the items it always did and keeps its hashes (no version in the hash)."""
    assert "version" not in expand(loads_spec(spec_text(qa)))[0].content()["tasks"][0]
    rows = qa_records()
    write_jsonl(qa, rows + [{**r, "answer": r["answer"].upper()} for r in rows[::2]])
    assert expand(loads_spec(spec_text(qa)))[0].content()["tasks"][0]["version"] == 2


def test_arithmetic_run_hashes_are_unchanged() -> None:
    """The text task's data hashing and format families leave other runs' hashes as they were
    (values from before the text task existed)."""
    assert [r.hash for r in expand(loads_spec(TINY_SPEC))] == [
        "443c3a3b4289f0be",
        "1206be6e6ddb4a54",
        "801dc61593725475",
        "fd9ee306dff99869",
    ]
    assert [r.hash for r in expand(loads_spec(TINY_SPEC.replace('format = "compact"\n', "")))] == [
        "5e50afc3f4e8d185",
        "dd3eb95ca1209705",
        "9a9d6d7b37c062c3",
        "4dd52dc14dfa325e",
    ]
    assert "data_sha256" not in str(expand(loads_spec(TINY_SPEC))[0].content())


def test_a_text_study_runs_end_to_end(
    qa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_report(monkeypatch)
    # each capital's prompt twice (another answer): a held-out prompt's other copy is the test
    # question, left out of training
    rows = qa_records()
    write_jsonl(qa, rows + [{**r, "answer": r["answer"].upper()} for r in rows[::2]])
    text = spec_text(qa)
    res: Any = run_study(
        loads_spec(text), text, out_root=tmp_path / "out", executor=InlineExecutor(), pdf=False
    )
    d = res.session_dir
    # data/: the exact test set, and the training items drawn from the rest
    test = read_jsonl(d / "data" / "qa_test.jsonl")
    want = build_task({"id": "qa", "task": "text", "path": str(qa), "stratum_field": "kind",
                       "n_test": 6}).test_set()  # fmt: skip
    assert test == [e.to_dict() for e in want] and len(test) == 12
    train = read_jsonl(d / "data" / "qa_train_ft_seed0.jsonl")
    assert train and not {e["question"]["prompt"] for e in train} & {
        e["question"]["prompt"] for e in test
    }
    split = read_json(d / "data" / "qa_split.json")
    held_out = {e["question"]["prompt"] for e in test if e["stratum"] == "capital"}
    assert split["n_train_removed"] == len(held_out) and split["n_test"] == {
        "capital": 6,
        "reverse": 6,
    }
    assert split["n_train"] == {"capital": 60 - 6 - len(held_out), "reverse": 24}
    results = read_json(d / "results" / "results.json")
    assert set(results["conditions"]) == {"baseline", "ft"}
    for cond in ("baseline", "ft"):
        strata = results["conditions"][cond]["tasks"]["qa"]["strata"]
        assert set(strata) == {"capital", "reverse"}
        assert strata["capital"]["n_items"] == 6
    assert results["tasks"]["qa"]["strata_by_difficulty"] is False
    [note] = results["tasks"]["qa"]["data_notes"]
    assert note.startswith(f"Task qa: {len(held_out)} training item(s) of {qa} left out")
    assert note in results["notes"] and note in (d / "critiques.txt").read_text()
    capsys.readouterr()
    _print_lm_summary(results)  # and after the study's results table
    # rich wraps at the console width and may break the long tmp path inside a word
    assert "".join(note.split()) in "".join(capsys.readouterr().out.split())
    run = next(r for r in expand(loads_spec(text)) if r.train is not None)
    preds = read_jsonl(d / "runs" / run.hash / "predictions" / "qa.jsonl")
    assert [p["id"] for p in preds] == [e["id"] for e in test]
    assert preds[0]["prompt"] == test[0]["question"]["prompt"]
    assert (d / "report.md").is_file() and (d / "report.html").is_file()
