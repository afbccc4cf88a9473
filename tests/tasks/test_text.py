"""The ``text`` task: question/answer records from the user's JSON Lines file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError
from smollab.tasks import PROMPT_FORMATS, build_task, check_format_fits, validate_task_config
from smollab.tasks.text import TextTask
from tests.conftest import one_line

CAPITALS = [
    ("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"),
    ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Greece", "Athens"), ("Norway", "Oslo"),
    ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Ireland", "Dublin"), ("Peru", "Lima"),
    ("Chile", "Santiago"), ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Cuba", "Havana"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Mali", "Bamako"),
    ("Nepal", "Kathmandu"), ("Laos", "Vientiane"), ("Fiji", "Suva"), ("Oman", "Muscat"),
    ("Qatar", "Doha"), ("Chad", "Ndjamena"), ("Togo", "Lome"), ("Benin", "Porto-Novo"),
    ("Malta", "Valletta"), ("Latvia", "Riga"),
]  # fmt: skip
WORDS = [c.lower() for c, _ in CAPITALS]


def qa_records() -> list[dict[str, Any]]:
    """60 items in two strata of 30: capitals and word reversals."""
    caps = [{"prompt": f"Capital of {c}?", "answer": a, "kind": "capital"} for c, a in CAPITALS]
    rev = [{"prompt": f"Reverse {w}:", "answer": w[::-1], "kind": "reverse"} for w in WORDS]
    return [r for pair in zip(caps, rev, strict=True) for r in pair]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def qa(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "qa.jsonl", qa_records())


def task(path: Path | str, **kw: Any) -> TextTask:
    t = build_task({"id": "qa", "task": "text", "path": str(path), **kw})
    assert isinstance(t, TextTask)
    return t


# ---------------------------------------------------------------- items and the split


def test_items_strata_and_held_out_split(qa: Path) -> None:
    t = task(qa, stratum_field="kind")
    assert t.strata == ["capital", "reverse"] and not t.strata_by_difficulty
    test = t.test_set()
    # n_test left at its default: a stratum of at most 200 items holds out half (as arithmetic)
    assert [sum(e.stratum == s for e in test) for s in t.strata] == [15, 15]
    ex = next(e for e in test if e.stratum == "capital")
    assert ex.question["prompt"].startswith("Capital of ") and ex.answer in dict(CAPITALS).values()
    # disjoint from training, and together they are every item
    train = t.train_examples(500, seed=0)
    test_prompts = {e.question["prompt"] for e in test}
    assert not {e.question["prompt"] for e in train} & test_prompts
    assert len({e.question["prompt"] for e in train} | test_prompts) == 60
    # deterministic given the config; the data seed draws another sample
    assert task(qa, stratum_field="kind").test_set() == test
    assert task(qa, stratum_field="kind", data_seed=7).test_set() != test


def test_explicit_n_test_is_per_stratum_and_one_stratum_without_a_field(qa: Path) -> None:
    t = task(qa, stratum_field="kind", n_test=4)
    assert [sum(e.stratum == s for e in t.test_set()) for s in t.strata] == [4, 4]
    one = task(qa, n_test=10)
    assert one.strata == ["all"] and len(one.test_set()) == 10
    assert {e.stratum for e in one.train_examples(20, seed=1)} == {"all"}


def test_train_examples_seeded_weighted_and_with_replacement(qa: Path) -> None:
    t = task(qa, stratum_field="kind")
    a = t.train_examples(100, seed=3)  # more than the 30 training items: drawn with replacement
    assert len(a) == 100 and a == t.train_examples(100, seed=3)
    assert a != t.train_examples(100, seed=4)
    assert {e.stratum for e in a} == {"capital", "reverse"}
    only = t.train_examples(40, seed=3, weights={"capital": 1.0, "reverse": 0.0})
    assert {e.stratum for e in only} == {"capital"}
    with pytest.raises(ConfigError, match="strata \\['geo'\\] that task 'qa' does not have"):
        t.train_examples(4, seed=0, weights={"geo": 1.0})


def test_strata_keeps_only_those(qa: Path) -> None:
    t = task(qa, stratum_field="kind", strata=["reverse"], n_test=5)
    assert t.strata == ["reverse"]
    assert {e.stratum for e in t.test_set()} == {"reverse"} and len(t.test_set()) == 5
    assert {e.stratum for e in t.train_examples(30, seed=0)} == {"reverse"}


def test_test_path_gives_the_test_set(tmp_path: Path) -> None:
    rows = qa_records()
    train = write_jsonl(tmp_path / "train.jsonl", rows[:50])
    test = write_jsonl(tmp_path / "test.jsonl", rows[50:])
    t = task(train, test_path=str(test))
    assert [e.answer for e in t.test_set()] == [r["answer"] for r in rows[50:]]
    assert {e.question["prompt"] for e in t.train_examples(200, seed=0)} <= {
        r["prompt"] for r in rows[:50]
    }
    assert set(t.data_sha256) == {"path", "test_path"}


def test_training_never_holds_a_test_prompt_given_by_test_path(tmp_path: Path) -> None:
    """An item of path whose prompt is a test item's prompt (surrounding whitespace aside,
    whatever its answer) is the test question: it is left out of training and counted."""
    rows = qa_records()
    test = write_jsonl(tmp_path / "test.jsonl", rows[50:])
    again = [
        {**rows[50], "prompt": f"  {rows[50]['prompt']}\n"},  # the same after stripping
        {**rows[51], "answer": "something else"},  # another answer: still the test question
        {**rows[52], "prompt": rows[52]["prompt"].upper()},  # another prompt: kept
    ]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:50] + again)
    t = task(train, test_path=str(test), stratum_field="kind")
    assert t.removed == ["line000051", "line000052"] and t.version == 2
    drawn = {e.question["prompt"].strip() for e in t.train_examples(2000, seed=0)}
    assert not drawn & {r["prompt"] for r in rows[50:]}
    assert rows[52]["prompt"].upper() in drawn
    info = t.data_info()
    assert info["test_set"] == "test_path" and info["n_train_removed"] == 2
    assert info["n_train"] == {"capital": 26, "reverse": 25} and sum(info["n_test"].values()) == 10
    assert info["train_removed_ids"] == ["line000051", "line000052"]
    assert set(info["files"]) == set(info["data_sha256"]) == {"path", "test_path"}
    [note] = t.data_notes()
    assert f"Task qa: 2 training item(s) of {train} left out" in note
    assert f"a test item's ({test})" in note and "51 training item(s) remain" in note


def test_a_prompt_repeated_in_path_is_not_trained_on_once_held_out(tmp_path: Path) -> None:
    rows = qa_records()
    twice = rows + [{**r, "answer": r["answer"].lower()} for r in rows]  # each prompt twice
    t = task(write_jsonl(tmp_path / "qa.jsonl", twice), stratum_field="kind", n_test=10)
    test_prompts = {e.question["prompt"] for e in t.test_set()}
    assert len(t.test_set()) == 20  # the test set is the held-out sample, as before
    assert not {e.question["prompt"] for e in t.train_examples(3000, seed=0)} & test_prompts
    # every training copy of a held-out prompt is left out (unless both copies are held out)
    n_both = 20 - len(test_prompts)
    assert len(t.removed) == len(test_prompts) - n_both and t.version == 2
    assert t.data_info()["n_train_removed"] == len(t.removed)
    assert "a held-out test item's" in t.data_notes()[0]


def test_files_without_repeated_prompts_keep_version_1(qa: Path, tmp_path: Path) -> None:
    """Their training items are those trained on before: the run hashes stay what they were."""
    t = task(qa, stratum_field="kind")
    assert t.removed == [] and t.version == 1 and t.data_notes() == []
    assert t.data_info()["n_train"] == {"capital": 15, "reverse": 15}
    rows = qa_records()
    test = write_jsonl(tmp_path / "test.jsonl", rows[50:])
    assert task(write_jsonl(tmp_path / "tr.jsonl", rows[:50]), test_path=str(test)).version == 1


def test_nothing_left_to_train_on_names_the_file(tmp_path: Path) -> None:
    rows = qa_records()  # capital and reverse items alternate
    test = write_jsonl(tmp_path / "test.jsonl", rows[:10])
    # path's capital items are all test items: that stratum has nothing to train on
    train = write_jsonl(tmp_path / "train.jsonl", rows[:10:2] + rows[11::2])
    with pytest.raises(ConfigError) as e:
        task(train, test_path=str(test), stratum_field="kind")
    msg = one_line(e.value.message)
    assert f"every training item of stratum 'capital' of {train} (5) has the prompt of a" in msg
    assert f"test item ({test})" in msg and "never trained on" in msg
    assert f"Remove from {train} the items of {test}" in msg
    # one prompt, repeated: whatever is held out, its other copies are the test question
    same = write_jsonl(
        tmp_path / "same.jsonl", [{"prompt": "Q?", "answer": str(i)} for i in range(6)]
    )
    with pytest.raises(ConfigError) as e:
        task(same, n_test=2)
    msg = one_line(e.value.message)
    assert f"every training item of {same} (4) has the prompt of a test item (the items" in msg
    assert f"Remove the repeated prompts from {same}, or give the test set as test_path" in msg


def test_compressed_file_and_other_field_names(tmp_path: Path) -> None:
    rows = [{"q": f"{i} squared?", "a": str(i * i)} for i in range(10)]
    path = tmp_path / "sq.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    t = task(path, prompt_field="q", answer_field="a", n_test=3)
    assert len(t.test_set()) == 3
    assert all(e.answer == str(int(e.question["prompt"].split()[0]) ** 2) for e in t.test_set())


def test_relative_path_is_read_from_the_working_directory(
    qa: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(qa.parent)
    assert len(task("qa.jsonl").test_set()) == 30


# ---------------------------------------------------------------- formats and scoring


def test_text_format_lm_eval_convention(qa: Path) -> None:
    ex = task(qa, n_test=2).test_set()[0]
    fmt = PROMPT_FORMATS.get("text")
    assert fmt.family == "text" and fmt.prompt(ex) == ex.question["prompt"]
    assert fmt.target(ex) == f" {ex.answer}\n"
    assert fmt.parse("  Paris \nQ: next") == "Paris" and fmt.parse("\n") is None
    other = task(qa, n_test=2, target_delimiter="\nA: ").test_set()[0]
    assert fmt.target(other) == f"\nA: {other.answer}\n"


def test_text_chat_format(qa: Path) -> None:
    ex = task(qa, n_test=2).test_set()[0]
    fmt = PROMPT_FORMATS.get("text_chat")

    class ChatTok:
        chat_template = "x"
        eos_token = "<eos>"

        def apply_chat_template(self, msgs: list[dict[str, str]], **_: Any) -> str:
            return f"<user>{msgs[0]['content']}<assistant>"

    assert fmt.prompt(ex, ChatTok()) == f"<user>{ex.question['prompt']}<assistant>"
    assert fmt.target(ex, ChatTok()) == f"{ex.answer}<eos>\n"

    class PlainTok:
        chat_template = None

    with pytest.raises(ConfigError, match="'text_chat' needs a model whose tokenizer has a chat"):
        fmt.prompt(ex, PlainTok())


def test_score_is_exact_match_after_stripping(qa: Path) -> None:
    t = task(qa, n_test=2)
    ex = t.test_set()[0]
    assert t.score(ex, f" {ex.answer} ").correct
    assert t.score(ex, ex.answer.upper() + "x").error_type == "wrong"
    miss = t.score(ex, None)
    assert not miss.correct and miss.metrics == {} and t.item_metrics == ()


def test_formats_fit_only_their_family(qa: Path) -> None:
    text_cfg = validate_task_config({"id": "qa", "task": "text", "path": str(qa)})
    arith_cfg = validate_task_config({"id": "add", "task": "arith.add"})
    check_format_fits(PROMPT_FORMATS.get("text"), text_cfg, "here", "use")
    check_format_fits(PROMPT_FORMATS.get("plain"), arith_cfg, "here", "use")
    with pytest.raises(ConfigError, match="the formats that fit it are text, text_chat"):
        check_format_fits(PROMPT_FORMATS.get("plain"), text_cfg, "here", "use")
    with pytest.raises(
        ConfigError,
        match="fit it are chat, chat_answer, compact, compact_pp, compact_rev, fewshot, plain",
    ):
        check_format_fits(PROMPT_FORMATS.get("text"), arith_cfg, "here", "use")


def test_eval_refuses_a_text_format_on_an_arithmetic_task() -> None:
    from smollab.eval.exact_match import ExactMatchConfig, ExactMatchEval, is_exact_match

    cfg = ExactMatchConfig(id="arith.add", task="arith.add", format="text")
    with pytest.raises(
        ConfigError, match="--format text \\(task arith.add\\).*Pass --format with one of them"
    ):
        ExactMatchEval(cfg)
    # it needs a path: smollab eval takes it as --task text:PATH (tests/eval/test_text_eval.py)
    assert not is_exact_match("text")


def test_sample_refuses_a_text_format() -> None:
    from smollab.cli.sample import parse_questions

    with pytest.raises(ConfigError, match="--format text writes a text task's prompt"):
        parse_questions(["7+8"], "text")


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        task(tmp_path / "nope.jsonl")
    assert "field 'path': data file" in e.value.message and "does not exist" in e.value.message


def test_not_a_jsonl_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="path is 'qa.csv', not a JSON Lines file"):
        task("qa.csv")


def test_line_that_is_not_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "a", "answer": "b"}\n\n{"prompt": "c", answer: "d"}\n{}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl, line 3: not valid JSON"):
        task(p)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"answer": "x"}, "line 2: field 'prompt' is missing, where a string is expected"),
        ({"prompt": "q", "answer": 3}, "line 2: field 'answer' is 3, where a string is expected"),
        ({"prompt": "q", "answer": "  "}, "line 2: field 'answer' is empty"),
        ({"prompt": "q", "answer": "a\nb"}, "line 2: field 'answer' has more than one line"),
        (["q", "a"], 'line 2: the record is \\["q", "a"\\], not a JSON object'),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path: Path, record: Any, message: str) -> None:
    p = write_jsonl(tmp_path / "qa.jsonl", [{"prompt": "q", "answer": "a"}, record])
    with pytest.raises(ConfigError, match=message) as e:
        task(p)
    assert str(p) in e.value.message


def test_missing_stratum_field(qa: Path) -> None:
    with pytest.raises(ConfigError, match="field 'topic' is missing.*set stratum_field"):
        task(qa, stratum_field="topic")


def test_n_test_larger_than_the_items(qa: Path) -> None:
    with pytest.raises(ConfigError) as e:
        task(qa, stratum_field="kind", n_test=30)
    msg = e.value.message
    assert "stratum 'capital'" in msg and "has 30 item(s)" in msg
    assert "n_test = 30" in msg and "Set n_test to at most 29" in msg


def test_unknown_strata(qa: Path) -> None:
    with pytest.raises(ConfigError, match="'strata' names \\['geo'\\].*are \\['capital', 'rev"):
        task(qa, stratum_field="kind", strata=["capital", "geo"])
    with pytest.raises(ConfigError, match="without stratum_field every item is in"):
        task(qa, strata=["capital"])


def test_n_test_with_test_path_is_refused(qa: Path) -> None:
    with pytest.raises(ConfigError, match="test_path gives the test set; remove n_test"):
        task(qa, test_path=str(qa), n_test=5)


def test_config_is_strict(qa: Path) -> None:
    with pytest.raises(ConfigError, match="n_tests"):
        task(qa, n_tests=5)
    with pytest.raises(ConfigError, match="n_test"):
        task(qa, n_test="5")
