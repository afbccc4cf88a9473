"""``smollab eval --task text:PATH`` in-process: every record of the user's file, read as a study
reads its test_path; a study's data/<task>_test.jsonl read as the exact items it holds; a study
run evaluated so gives its own completions item by item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError
from smollab.eval.exact_match import TextEval
from smollab.eval.harness import make_task, make_tasks, run_eval
from smollab.tasks.text import TextFileTask
from tests.conftest import TINY_CONFIG
from tests.tasks.test_text import qa_records, write_jsonl

SPEC = """\
[study]
name = "qa"
seeds = [0]

[[models]]
name = "tiny"
source = "scratch:gpt2"
tokenizer = "char"
config = {{ n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }}

[[tasks]]
id = "held"
task = "text"
path = "{train}"
stratum_field = "kind"
n_test = 4

[[tasks]]
id = "given"
task = "text"
path = "{train}"
test_path = "{test}"
stratum_field = "kind"

[[conditions]]
name = "ft"
[conditions.train]
steps = 4
lr = 1e-2
warmup_steps = 1
batch_size = 4
seq_len = 64
threads = 1

[eval]
batch_size = 16
"""


def _lines(p: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


@pytest.fixture
def qa(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "qa.jsonl", qa_records())


def build_held(qa: Path) -> Any:
    from smollab.tasks import build_task

    return build_task(
        {"id": "held", "task": "text", "path": str(qa), "stratum_field": "kind", "n_test": 4}
    )


def test_every_record_of_the_file_in_file_order(qa: Path) -> None:
    t = make_task(f"text:{qa}")
    assert isinstance(t, TextEval) and t.name == "text" and t.fmt.name == "text"
    rows = qa_records()
    # every record, ids as a study's test_path items, one stratum without --stratum-field
    assert [d["id"] for d in t.docs()] == [f"test-line{i:06d}" for i in range(1, 61)]
    assert [e.question["prompt"] for e in t.examples()] == [r["prompt"] for r in rows]
    assert t.strata == ["all"] and t.data_files == (str(qa.resolve()),)
    # --limit N: the first N of each stratum; --stratum-field: results per stratum
    by_kind = make_task(f"text:{qa}", stratum_field="kind", limit=3)
    assert by_kind.strata == ["capital", "reverse"]
    assert [d["id"] for d in by_kind.docs()] == [f"test-line{i:06d}" for i in range(1, 7)]
    # the samples key: the file's content and where it is, the fields; not the limit
    cfg = by_kind.samples_config()
    assert isinstance(by_kind.task, TextFileTask)
    assert cfg["data_sha256"] == by_kind.task.data_sha256["path"]
    assert cfg["task_config"] == {
        "path": str(qa.resolve()),
        "prompt_field": "prompt",
        "answer_field": "answer",
        "stratum_field": "kind",
        "target_delimiter": " ",
    }
    assert (
        "limit" not in cfg and cfg == make_task(f"text:{qa}", stratum_field="kind").samples_config()
    )
    write_jsonl(qa, qa_records()[:10])
    assert make_task(f"text:{qa}", stratum_field="kind").samples_config() != cfg
    # other field names; the chat format
    other = write_jsonl(qa.parent / "o.jsonl", [{"q": "2+2?", "a": "4"}])
    t = make_task(f"text:{other}", prompt_field="q", answer_field="a", format="text_chat")
    assert t.examples()[0].question["prompt"] == "2+2?" and t.fmt.name == "text_chat"


def test_a_study_test_set_file_is_read_as_its_items(qa: Path, tmp_path: Path) -> None:
    study = build_held(qa)
    data = write_jsonl(tmp_path / "held_test.jsonl", [e.to_dict() for e in study.test_set()])
    t = make_task(f"text:{data}")
    assert t.examples() == study.test_set() and t.strata == ["capital", "reverse"]
    with pytest.raises(ConfigError) as e:
        make_task(f"text:{data}", stratum_field="kind")
    assert "is a study's test set" in e.value.message and "--stratum-field do not apply" in (
        e.value.message
    )
    rows = [e.to_dict() for e in study.test_set()]
    write_jsonl(data, [*rows, {"prompt": "q", "answer": "a"}])
    with pytest.raises(ConfigError, match="line 9: the record is .* but the file's first line"):
        make_task(f"text:{data}")
    write_jsonl(data, [rows[0], rows[0]])
    with pytest.raises(ConfigError, match="lines 1 and 2 both hold item"):
        make_task(f"text:{data}")


def test_the_file_is_evaluated_only(qa: Path) -> None:
    t = make_task(f"text:{qa}")
    with pytest.raises(ConfigError, match="every item of the file is a test item, so there is"):
        t.task.train_examples(4, seed=0)


def test_make_tasks_passes_the_field_options_to_the_text_task(qa: Path) -> None:
    other = write_jsonl(qa.parent / "o.jsonl", [{"q": "2+2?", "a": "4", "k": "sum"}])
    opts = {"prompt_field": "q", "answer_field": "a", "stratum_field": "k", "limit": None}
    [t] = make_tasks([f"text:{other}"], opts)
    assert t.strata == ["sum"]
    with pytest.raises(ConfigError, match="given more than once .* Evaluate one file per call"):
        make_tasks([f"text:{qa}", f"text:{write_jsonl(qa.parent / 'b.jsonl', qa_records())}"], {})


def test_a_study_run_gives_its_own_completions_item_by_item(qa: Path, tmp_path: Path) -> None:
    """A fine-tuned run of a study with a held-out test set (evaluated on the session's
    data/held_test.jsonl) and one with test_path (evaluated on that file): each item's prompt,
    completion and correctness are those of the run's own predictions."""
    from smollab.models import load_model
    from smollab.study.executor import InlineExecutor
    from smollab.study.runspec import expand
    from smollab.study.session import run_study
    from smollab.study.spec import loads_spec

    rows = qa_records()
    test = write_jsonl(tmp_path / "test.jsonl", rows[50:])
    text = SPEC.format(train=qa, test=test)
    res: Any = run_study(
        loads_spec(text),
        text,
        out_root=tmp_path / "out",
        executor=InlineExecutor(),
        pdf=False,
        report=False,
        notes=False,
    )
    [run] = expand(loads_spec(text))
    run_dir = res.session_dir / "runs" / run.hash
    model = load_model(run_dir)
    tasks = {
        # the session's exact test set, held out of path: its items carry their strata
        "held": make_task(f"text:{res.session_dir / 'data' / 'held_test.jsonl'}"),
        # test_path's records, read with the study's fields
        "given": make_task(f"text:{test}", stratum_field="kind"),
    }
    for name, n in (("held", 8), ("given", 10)):
        run_eval(model, [tasks[name]], tmp_path / name, use_cache=False)
        got = _lines(tmp_path / name / "samples_text.jsonl")
        own = _lines(run_dir / "predictions" / f"{name}.jsonl")
        assert len(got) == len(own) == n
        for s, p in zip(got, own, strict=True):
            keys = ("id", "stratum", "prompt", "completion", "correct")
            assert {k: s[k] for k in keys} == {k: p[k] for k in keys}
    # teeth: the fine-tune changed the completions (the base model's differ)
    base = load_model("scratch:gpt2", tokenizer="char", config=dict(TINY_CONFIG), seed=0)
    task = make_task(f"text:{test}", stratum_field="kind")
    run_eval(base, [task], tmp_path / "base", use_cache=False)
    base_said = [r["completion"] for r in _lines(tmp_path / "base" / "samples_text.jsonl")]
    assert base_said != [r["completion"] for r in _lines(tmp_path / "given" / "samples_text.jsonl")]
