"""Arithmetic tasks: strata, test/train disjointness, prompt formats, scoring."""

from __future__ import annotations

import pytest

from smollab.errors import ConfigError
from smollab.models import char_tokenizer
from smollab.tasks import PROMPT_FORMATS, Example, build_task, validate_task_config
from smollab.tasks.arithmetic import (
    classify_error,
    digit_accuracy,
    operand_range,
    parse_stratum,
    stratum_size,
)


def make_task(op: str = "mul", **kw):
    return build_task(validate_task_config({"id": op, "task": f"arith.{op}", **kw}))


def ex(a: int, b: int, op: str = "mul") -> Example:
    ans = a * b if op == "mul" else a + b
    return Example(id="x", stratum="?", question={"a": a, "b": b, "op": op}, answer=str(ans))


# ---------------------------------------------------------------- strata


@pytest.mark.parametrize(
    ("s", "expected"), [("1x1", (1, 1)), ("2x3", (2, 3)), (" 4x4 ", (4, 4)), ("9x1", (9, 1))]
)
def test_parse_stratum_valid(s: str, expected: tuple[int, int]) -> None:
    assert parse_stratum(s) == expected


@pytest.mark.parametrize("s", ["0x1", "1x0", "-1x2", "2x-3", "10x1"])
def test_parse_stratum_bad_digit_count_names_the_value(s: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_stratum(s)
    msg = str(e.value)
    assert repr(s) in msg
    assert "between 1 and 9" in msg


@pytest.mark.parametrize("s", ["2*2", "x", "axb", "2x", ""])
def test_parse_stratum_bad_shape(s: str) -> None:
    with pytest.raises(ConfigError, match="AxB"):
        parse_stratum(s)


def test_bad_stratum_in_task_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'0x2'"):
        validate_task_config({"id": "m", "task": "arith.mul", "strata": ["0x2"]})


def test_strata_spelled_differently_are_one_stratum() -> None:
    """ " 2x2" and "02x2" name the operands of "2x2": refused as repeats, and a lone one is
    stored as "2x2" (it was a second stratum with the very same test items)."""
    for spelling in (" 2x2", "02x2", "2x2 "):
        with pytest.raises(ConfigError, match=r"strata must be distinct.*\['2x2', '2x2'\]"):
            make_task(strata=["2x2", spelling])
    assert make_task(strata=["1x2", " 2x2"]).strata == ["1x2", "2x2"]


def test_operand_ranges_and_sizes() -> None:
    assert operand_range(1) == (0, 9)
    assert operand_range(3) == (100, 999)
    assert stratum_size("1x1") == 100
    assert stratum_size("2x2") == 90 * 90
    assert stratum_size("1x3") == 10 * 900


# ---------------------------------------------------------------- test / train sets


def test_test_set_deterministic_and_in_stratum() -> None:
    kw = {"strata": ["1x1", "2x2", "3x1"], "n_test": 30, "n_test_per_stratum": {"1x1": 20}}
    a, b = make_task(**kw).test_set(), make_task(**kw).test_set()
    assert [e.to_dict() for e in a] == [e.to_dict() for e in b]
    counts = {s: sum(e.stratum == s for e in a) for s in kw["strata"]}
    assert counts == {"1x1": 20, "2x2": 30, "3x1": 30}
    for e in a:
        da, db = parse_stratum(e.stratum)
        lo_a, hi_a = operand_range(da)
        lo_b, hi_b = operand_range(db)
        assert lo_a <= e.question["a"] <= hi_a and lo_b <= e.question["b"] <= hi_b
        assert int(e.answer) == e.question["a"] * e.question["b"]
    # no duplicate pairs within a stratum
    pairs = [(e.stratum, e.question["a"], e.question["b"]) for e in a]
    assert len(set(pairs)) == len(pairs)


def test_test_set_of_a_stratum_does_not_depend_on_other_strata() -> None:
    one = make_task(strata=["2x2"], n_test=25).test_set()
    two = make_task(strata=["1x1", "2x2"], n_test=25).test_set()
    q = lambda es: [(e.question["a"], e.question["b"]) for e in es if e.stratum == "2x2"]  # noqa: E731
    assert q(one) == q(two)


def test_data_seed_changes_test_set() -> None:
    a = make_task(strata=["2x2"], n_test=25, data_seed=1).test_set()
    b = make_task(strata=["2x2"], n_test=25, data_seed=2).test_set()
    assert [e.question for e in a] != [e.question for e in b]


@pytest.mark.parametrize("op", ["mul", "add"])
def test_train_pairs_never_in_test_set(op: str) -> None:
    # 1x1 has only 100 pairs; 40 of them are held out, so collisions would be frequent.
    task = make_task(op, strata=["1x1", "1x2"], n_test_per_stratum={"1x1": 40}, n_test=50)
    test = {(e.stratum, e.question["a"], e.question["b"]) for e in task.test_set()}
    train = task.train_examples(5000, seed=3)
    assert len(train) == 5000
    seen = {(e.stratum, e.question["a"], e.question["b"]) for e in train}
    assert not seen & test
    # training really covers the rest of the 1x1 space (the sampler isn't just avoiding it)
    assert len({p for p in seen if p[0] == "1x1"}) == 100 - 40
    assert {e.stratum for e in train} == {"1x1", "1x2"}


def test_train_examples_deterministic_per_seed_and_weights() -> None:
    task = make_task(strata=["1x1", "2x2"], n_test=20)
    a = task.train_examples(200, seed=5)
    b = task.train_examples(200, seed=5)
    c = task.train_examples(200, seed=6)
    assert [e.question for e in a] == [e.question for e in b]
    assert [e.question for e in a] != [e.question for e in c]
    only = task.train_examples(100, seed=5, weights={"2x2": 1.0})
    assert {e.stratum for e in only} == {"2x2"}


def test_train_weights_unknown_or_zero_stratum() -> None:
    task = make_task(strata=["1x1", "2x2"], n_test=20)
    with pytest.raises(ConfigError, match="3x3"):
        task.train_examples(10, seed=0, weights={"3x3": 1.0})
    with pytest.raises(ConfigError, match="all zero"):
        task.train_examples(10, seed=0, weights={"1x1": 0.0, "2x2": 0.0})


@pytest.mark.parametrize(("stratum", "size"), [("1x1", 100), ("1x2", 900)])
def test_n_test_too_large_names_stratum_and_max(stratum: str, size: int) -> None:
    with pytest.raises(ConfigError) as e:
        validate_task_config({"id": "m", "task": "arith.mul", "strata": [stratum], "n_test": size})
    msg = str(e.value)
    assert repr(stratum) in msg
    assert f"only {size} operand pairs" in msg
    assert f"at most {size // 2}" in msg


def test_n_test_per_stratum_unknown_stratum() -> None:
    with pytest.raises(ConfigError, match="'3x3'"):
        validate_task_config(
            {"id": "m", "task": "arith.mul", "strata": ["1x1"], "n_test_per_stratum": {"3x3": 5}}
        )


# ---------------------------------------------------------------- prompt formats


def test_plain_format_round_trip() -> None:
    fmt = PROMPT_FORMATS.get("plain")
    e = ex(7, 8)
    assert fmt.prompt(e) == "Q: What is 7 * 8? A:"
    assert fmt.target(e) == " 56\n"
    assert fmt.parse(fmt.target(e)) == "56"
    assert fmt.parse(" 56\n") == "56"
    assert fmt.parse(" 56 is the answer") == "56"
    assert fmt.parse(" I don't know") is None


def test_fewshot_format_has_solved_shots_then_question() -> None:
    fmt = PROMPT_FORMATS.get("fewshot")
    shots = [ex(1, 2), ex(3, 4), ex(5, 6)]
    p = fmt.prompt(ex(7, 8), None, shots)
    assert fmt.n_shots == 3
    assert p.splitlines() == [
        "Q: What is 1 * 2? A: 2",
        "Q: What is 3 * 4? A: 12",
        "Q: What is 5 * 6? A: 30",
        "Q: What is 7 * 8? A:",
    ]
    assert fmt.parse(fmt.target(ex(7, 8))) == "56"


def test_compact_format_round_trip() -> None:
    fmt = PROMPT_FORMATS.get("compact")
    e = ex(23, 47, "add")
    assert fmt.prompt(e) == "\n23+47="
    assert fmt.target(e) == "70\n"
    assert fmt.parse(fmt.target(e)) == "70"


def test_compact_rev_reverses_digits() -> None:
    fmt = PROMPT_FORMATS.get("compact_rev")
    e = ex(23, 47)
    assert e.answer == "1081"
    assert fmt.prompt(e) == "\n23*47="
    assert fmt.target(e) == "1801\n"
    assert fmt.parse("1801\n") == "1081"
    # a trailing zero of the answer is a leading zero of the reversed text
    e10 = ex(2, 5)
    assert fmt.target(e10) == "01\n"
    assert fmt.parse(fmt.target(e10)) == "10"
    assert fmt.parse("0\n") == "0"
    assert fmt.parse("abc") is None


def test_compact_pp_writes_partial_products_then_the_answer() -> None:
    fmt = PROMPT_FORMATS.get("compact_pp")
    assert fmt.prompt(ex(23, 47)) == "\n23*47="
    assert fmt.target(ex(23, 47)) == "161+920=1081\n"
    assert fmt.target(ex(7, 23)) == "21+140=161\n"
    assert fmt.target(ex(123, 456)) == "738+6150+49200=56088\n"
    assert fmt.target(ex(45, 10)) == "0+450=450\n"
    # a one-digit second operand, and addition, have nothing to decompose
    assert fmt.target(ex(23, 7)) == "161\n"
    assert fmt.target(ex(23, 47, "add")) == "70\n"
    # the answer is the number after the last '=' of the first line
    assert fmt.parse("161+920=1081\n12") == "1081"
    assert fmt.parse("161+920=1071") == "1071"
    assert fmt.parse("56\n") == "56"
    assert fmt.parse("161+920=\n") is None
    assert fmt.parse("x") is None


@pytest.mark.parametrize("name", ["plain", "fewshot", "compact", "compact_rev", "compact_pp"])
@pytest.mark.parametrize(("a", "b"), [(0, 0), (7, 8), (99, 1), (123, 456)])
def test_every_format_parses_its_own_target(name: str, a: int, b: int) -> None:
    fmt = PROMPT_FORMATS.get(name)
    for op in ("mul", "add"):
        e = ex(a, b, op)
        assert fmt.target(e).endswith("\n")
        assert fmt.parse(fmt.target(e)) == e.answer


def test_chat_format_without_template_is_config_error() -> None:
    fmt = PROMPT_FORMATS.get("chat")
    tok = char_tokenizer()
    assert tok.chat_template is None
    with pytest.raises(ConfigError, match="chat template"):
        fmt.prompt(ex(7, 8), tok)
    with pytest.raises(ConfigError, match="chat template"):
        fmt.prompt(ex(7, 8), None)


def test_chat_format_with_template() -> None:
    fmt = PROMPT_FORMATS.get("chat")
    tok = char_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    e = ex(7, 8)
    assert fmt.prompt(e, tok) == "<user>What is 7 * 8?\n<assistant>"
    assert fmt.target(e, tok) == "56<eos>\n"
    assert fmt.parse("The answer is 56.") == "56"
    # the last integer of the first line: an untrained model restates the question first
    assert fmt.parse("7 * 8 = 56") == "56" and fmt.parse("56<eos>") == "56"
    assert fmt.parse("In mathematics, 0 * 2 is undefined") == "2"
    assert fmt.version == 2


def test_chat_answer_format_asks_for_the_number_and_reads_the_last_one() -> None:
    fmt = PROMPT_FORMATS.get("chat_answer")
    tok = char_tokenizer()
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    e = ex(7, 8)
    assert fmt.prompt(e, tok) == "<user>What is 7 * 8? Reply with the number only."
    for reply in ("56", "The answer is 56.", "7 * 8 = 56", "7 * 8 = 56\nSo 6 is wrong."):
        assert fmt.parse(reply) == "56", reply
    assert fmt.parse("-3 - 4 = -7") == "-7" and fmt.parse("I cannot say.") is None
    assert fmt.parse(fmt.target(e, tok)) == e.answer
    with pytest.raises(ConfigError, match="chat template"):
        fmt.prompt(e, None)


def test_unknown_prompt_format_lists_valid() -> None:
    with pytest.raises(ConfigError) as e:
        PROMPT_FORMATS.get("fancy")
    assert "'fancy'" in str(e.value) and "compact_rev" in str(e.value)


# ---------------------------------------------------------------- scoring


def test_digit_accuracy_hand_cases() -> None:
    assert digit_accuracy("56", "56") == 1.0
    assert digit_accuracy("57", "56") == 0.5
    assert digit_accuracy("156", "56") == pytest.approx(2 / 3)  # extra digit counts against
    assert digit_accuracy("6", "56") == 0.5  # aligned at the units
    assert digit_accuracy("1000", "1081") == 0.5
    assert digit_accuracy("2000", "1081") == 0.25
    assert digit_accuracy("", "12") == 0.0


@pytest.mark.parametrize(
    ("pred", "truth", "kind"),
    [
        ("1081", "1081", "correct"),
        ("1071", "1081", "carry_error"),  # one digit off by one
        ("1171", "1081", "carry_error"),  # 0->1 and 8->7: every wrong digit off by one
        ("1089", "1080", "carry_error"),  # 0 -> 9 wraps: a borrow, still off by one mod 10
        ("1051", "1081", "one_wrong_digit"),
        ("2051", "1081", "multi_digit"),
        ("5555", "1081", "multi_digit"),
        ("108", "1081", "wrong_length"),
        ("10810", "1081", "wrong_length"),
        # a negative prediction as long as the truth crashed int("-") (QA)
        ("-449", "1449", "multi_digit"),
        ("-44", "1449", "multi_digit"),
    ],
)
def test_classify_error_hand_cases(pred: str, truth: str, kind: str) -> None:
    assert classify_error(pred, truth) == kind


def test_a_negative_prediction_is_scored_not_a_crash() -> None:
    from smollab.tasks import build_task, validate_task_config

    task = build_task(validate_task_config({"id": "m", "task": "arith.mul", "strata": ["2x2"]}))
    item = task.test_set()[0]
    pred = "-" + item.answer[1:]
    score = task.score(item, pred)
    assert score.correct is False and score.error_type == "multi_digit"


def test_score_item() -> None:
    task = make_task(strata=["2x2"], n_test=5)
    e = ex(23, 47)
    ok = task.score(e, "1081")
    assert ok.correct and ok.error_type == "correct" and ok.metrics["digit_accuracy"] == 1.0
    bad = task.score(e, "1071")
    assert not bad.correct and bad.error_type == "carry_error"
    assert bad.metrics["digit_accuracy"] == 0.75
    for none in (None, ""):
        s = task.score(e, none)
        assert not s.correct and s.error_type == "no_answer" and s.metrics["digit_accuracy"] == 0.0
    assert set(task.error_types) >= {"correct", "no_answer", "carry_error", "wrong_length"}


def test_training_excludes_swapped_test_pairs_in_square_strata() -> None:
    from smollab.tasks import build_task, validate_task_config

    task = build_task(
        validate_task_config(
            {"id": "mul", "task": "arith.mul", "strata": ["1x1", "2x2"], "n_test": 50}
        )
    )
    test_22 = {(e.question["a"], e.question["b"]) for e in task.test_set() if e.stratum == "2x2"}
    swaps = {(b, a) for a, b in test_22}
    train = task.train_examples(5000, seed=3, weights={"2x2": 1.0})
    pairs = {(e.question["a"], e.question["b"]) for e in train}
    assert not pairs & (test_22 | swaps)
    # 1x1 is too small to afford the swap exclusion: only the test pairs themselves are excluded
    assert task.excluded_pairs("1x1") == {
        (e.question["a"], e.question["b"]) for e in task.test_set() if e.stratum == "1x1"
    }


def _pairs(examples: list[Example]) -> set[tuple[int, int]]:
    return {(e.question["a"], e.question["b"]) for e in examples}


@pytest.mark.parametrize("op", ["mul", "add"])
def test_training_excludes_swaps_of_the_transposed_strata_test_pairs(op: str) -> None:
    # the swap of a 1x2 test item is a 2x1 pair (and the same problem): it used to be trained
    # on, 1082 of 5000 examples here
    task = make_task(op, strata=["1x2", "2x1"], n_test=200)
    test = _pairs(task.test_set())
    train = task.train_examples(5000, seed=0)
    assert {e.stratum for e in train} == {"1x2", "2x1"}
    assert not _pairs(train) & test
    assert not {(b, a) for a, b in _pairs(train)} & test
    by = {s: _pairs([e for e in task.test_set() if e.stratum == s]) for s in ("1x2", "2x1")}
    assert task.excluded_pairs("1x2") == by["1x2"] | {(b, a) for a, b in by["2x1"]}
    assert task.excluded_pairs("2x1") == by["2x1"] | {(b, a) for a, b in by["1x2"]}
    # 1x3 has no 3x1 here: nothing of another stratum to exclude
    alone = make_task(op, strata=["1x3", "2x1"], n_test=50)
    assert alone.excluded_pairs("1x3") == _pairs(
        [e for e in alone.test_set() if e.stratum == "1x3"]
    )


def test_version_is_bumped_only_where_the_training_data_changed() -> None:
    from smollab.study.runspec import _with_version

    moved = {"id": "m", "task": "arith.mul", "strata": ["1x2", "2x1", "2x2"], "n_test": 50}
    same = {"id": "m", "task": "arith.mul", "strata": ["1x1", "1x2", "2x2", "3x3"], "n_test": 50}
    assert make_task(**{k: v for k, v in moved.items() if k not in ("id", "task")}).version == 2
    assert _with_version(moved)["version"] == 2
    assert _with_version(same) == same  # hashes of runs whose data did not change stay


# sha256 (first 16 hex) of the 5000 training examples (seed 0) as they were before the swaps of
# other strata's test pairs were excluded: strata without a transposed pair must not change
DEFAULT = {"strata": ["1x1", "1x2", "2x2", "3x3"], "n_test": 200, "n_test_per_stratum": {"1x1": 50}}
STUDY_WEIGHTS = {"1x1": 1.0, "1x2": 2.0, "2x2": 5.0, "3x3": 1.0}  # studies/multiplication.toml


@pytest.mark.parametrize(
    ("op", "kw", "weights", "digest"),
    [
        ("mul", DEFAULT, STUDY_WEIGHTS, "e1492c8a8112c2f6"),
        ("mul", DEFAULT, None, "d3c83a5e754edf35"),
        ("add", DEFAULT, STUDY_WEIGHTS, "1b3c4fd5e2b1ab75"),
        ("mul", {"strata": ["1x1", "2x2"], "n_test": 50}, None, "b431a96984901f30"),
    ],
)
def test_training_data_of_strata_without_a_transposed_pair_is_unchanged(
    op: str, kw: dict, weights: dict[str, float] | None, digest: str
) -> None:
    import hashlib
    import json

    task = make_task(op, **kw)
    train = task.train_examples(5000, seed=0, weights=weights)
    blob = json.dumps([e.to_dict() for e in train], sort_keys=True).encode()
    assert hashlib.sha256(blob).hexdigest()[:16] == digest
    assert task.version == 1


def test_default_training_data_first_examples() -> None:
    train = make_task("mul", **DEFAULT).train_examples(5000, seed=0, weights=STUDY_WEIGHTS)
    got = [(e.stratum, e.question["a"], e.question["b"]) for e in train[:4]]
    # as generated before the fix (studies/multiplication.toml's task and weights)
    assert got == [("2x2", 12, 17), ("1x2", 0, 58), ("2x2", 65, 81), ("1x2", 2, 50)]


def test_strata_whose_test_sets_leave_no_training_pair_are_refused() -> None:
    # 1x2 and 2x1 have 900 pairs each; 899 test pairs in each leave every 1x2 pair either a test
    # pair or the swap of a 2x1 test pair
    with pytest.raises(ConfigError) as e:
        validate_task_config(
            {"id": "m", "task": "arith.mul", "strata": ["1x2", "2x1"], "n_test": 899}
        )
    msg = str(e.value)
    assert "'1x2' has no operand pair left for training" in msg and "'2x1'" in msg
    assert 'n_test_per_stratum = { "1x2" = 225, "2x1" = 225 }' in msg
    # the suggested sizes train
    task = make_task(strata=["1x2", "2x1"], n_test_per_stratum={"1x2": 225, "2x1": 225})
    assert len(task.train_examples(50, seed=0)) == 50
    # a stratum left with a single pair still trains (on that pair)
    one = make_task(strata=["1x2", "2x1"], n_test=10, n_test_per_stratum={"1x2": 899})
    train = one.train_examples(200, seed=0, weights={"1x2": 1.0})
    assert len(_pairs(train)) == 1 and not _pairs(train) & _pairs(one.test_set())


def test_train_examples_refuses_a_negative_count_or_weight() -> None:
    from smollab.tasks import build_task, validate_task_config

    cfg = {"id": "m", "task": "arith.mul", "strata": ["1x1"], "n_test": 20}
    task = build_task(validate_task_config(cfg))
    with pytest.raises(ConfigError, match="n=-1 is negative"):
        task.train_examples(-1, seed=0)
    with pytest.raises(ConfigError, match=r"must be >= 0; got \{'1x1': -1\}"):
        task.train_examples(4, seed=0, weights={"1x1": -1})
    assert task.train_examples(0, seed=0) == []


def test_a_table_with_only_the_task_holds_out_half_of_1x1() -> None:
    """A [[tasks]] table giving only task (and `smollab eval --task arith.mul`) is valid: 1x1
    (100 pairs) holds out 50, as the reference studies set it; an explicit n_test too large for
    it is still refused."""
    cfg = validate_task_config({"id": "mul", "task": "arith.mul"})
    assert cfg.n_test == 200 and cfg.n_test_per_stratum == {"1x1": 50}
    assert cfg == validate_task_config(
        {"id": "mul", "task": "arith.mul", "n_test": 200, "n_test_per_stratum": {"1x1": 50}}
    )
    cfg = validate_task_config({"id": "m", "task": "arith.mul", "n_test_per_stratum": {"1x1": 9}})
    assert cfg.n_test_per_stratum == {"1x1": 9}
    with pytest.raises(ConfigError, match="use at most 50"):
        validate_task_config({"id": "m", "task": "arith.mul", "n_test": 200})
