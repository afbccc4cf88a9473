"""Arithmetic tasks: ``arith.mul`` and ``arith.add`` with difficulty strata by operand digits.

A stratum ``"AxB"`` pairs an A-digit first operand with a B-digit second operand (1-digit
operands are 0..9, d-digit operands are 10**(d-1)..10**d-1). The test set of each stratum is a
seeded sample of operand pairs; training examples never use a test pair, nor, the operations
being commutative, the swap (b, a) of a test pair: of the same stratum where the stratum is big
enough to afford that (square strata but 1x1), and always of the transposed stratum (the swap of
a ``1x2`` test item is a ``2x1`` pair; see :meth:`ArithmeticTask.excluded_pairs`).

Prompt formats (``PROMPT_FORMATS``) decide how an example becomes text:

``plain``        ``Q: What is 7 * 8? A:`` -> `` 56``
``fewshot``      three solved ``plain`` training examples, then the question
``compact``      ``\n7*8=`` -> ``56``
``compact_rev``  ``\n23*47=`` -> ``1801`` (the answer's digits reversed, least significant first)
``compact_pp``   ``\n23*47=`` -> ``161+920=1081`` (partial products, then the answer; a scratchpad)
``chat``         the model's chat template around ``What is 7 * 8?``; the reply's last integer
                 on its first line is the answer
``chat_answer``  the same, asking "Reply with the number only."

The compact formats open with a newline so that the first operand digit is not the sequence's
first token: models without a BOS token (SmolLM2) treat position 0 as an attention sink, and
fine-tuning without the newline learnt far less (1x1 exact match 50% vs 96-100% after the same
training; see BENCHMARKS.md).

Every target ends with a newline (the chat format: the end-of-turn token); generation stops there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from smollab.errors import ConfigError
from smollab.registry import Registry
from smollab.tasks.base import TASKS, Example, ItemScore, Task, TaskConfig

OPS: dict[str, tuple[str, str, Callable[[int, int], int]]] = {
    # name: (symbol, word, function)
    "mul": ("*", "times", lambda a, b: a * b),
    "add": ("+", "plus", lambda a, b: a + b),
}
#: ops with f(a, b) == f(b, a): the swap of a test pair is the same item to a model, so training
#: must not use it (see :meth:`ArithmeticTask.excluded_pairs`)
COMMUTATIVE = frozenset({"mul", "add"})

_STRATUM = re.compile(r"^(-?\d+)x(-?\d+)$")
MAX_DIGITS = 9


def parse_stratum(s: str) -> tuple[int, int]:
    m = _STRATUM.match(s.strip())
    if not m:
        raise ConfigError(
            f"Stratum {s!r} is not of the form 'AxB' (operand digit counts), e.g. '2x2' or '1x3'."
        )
    a, b = int(m.group(1)), int(m.group(2))
    for d in (a, b):
        if d < 1 or d > MAX_DIGITS:
            raise ConfigError(
                f"Stratum {s!r} has an operand with {d} digits; digit counts must be between 1 and "
                f"{MAX_DIGITS}. Use e.g. '1x1', '2x3' or '4x4'."
            )
    return a, b


def operand_range(d: int) -> tuple[int, int]:
    """Inclusive range of d-digit operands (0..9 for d=1)."""
    return (0, 9) if d == 1 else (10 ** (d - 1), 10**d - 1)


def stratum_size(s: str) -> int:
    da, db = parse_stratum(s)
    (la, ha), (lb, hb) = operand_range(da), operand_range(db)
    return (ha - la + 1) * (hb - lb + 1)


def sample_test_pairs(stratum: str, n: int, data_seed: int) -> list[tuple[int, int]]:
    """The ``n`` test operand pairs of ``stratum``: a seeded sample that depends on the data seed
    and the stratum only, not on the other strata."""
    da, db = parse_stratum(stratum)
    (la, ha), (lb, hb) = operand_range(da), operand_range(db)
    n_b = hb - lb + 1
    size = (ha - la + 1) * n_b
    rng = np.random.default_rng([data_seed, da, db, 7])
    flat = rng.choice(size, size=n, replace=False)
    return [(la + int(i) // n_b, lb + int(i) % n_b) for i in flat]


def transposed_stratum(s: str, strata: list[str]) -> str | None:
    """The stratum of ``strata`` holding the swaps of ``s``'s pairs (``"2x1"`` for ``"1x2"``), for
    a non-square ``s``; None for a square one or when there is none."""
    da, db = parse_stratum(s)
    if da == db:
        return None
    return next((t for t in strata if parse_stratum(t) == (db, da)), None)


class ArithmeticConfig(TaskConfig):
    """``[[tasks]]`` entry for ``arith.mul`` / ``arith.add``."""

    format_family: ClassVar[str | None] = "arith"
    strata: list[str] = Field(default_factory=lambda: ["1x1", "1x2", "2x2", "3x3"], min_length=1)
    n_test: int = Field(200, description="held-out items per stratum")
    n_test_per_stratum: dict[str, int] = Field(
        default_factory=dict, description="per-stratum overrides of n_test"
    )
    data_seed: int = Field(
        1234, ge=0, description="seed of the test-set sample (shared by conditions)"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_small_strata(cls, raw: Any) -> Any:
        """With ``n_test`` left at its default, a stratum too small for it (1x1: 100 pairs)
        holds out half its pairs (50), as the reference studies set it, unless
        ``n_test_per_stratum`` names it: a table that gives only ``task`` is valid. Only
        tables refused before change (an explicit ``n_test`` too large stays an error)."""
        if not isinstance(raw, dict) or "n_test" in raw:
            return raw
        strata = raw.get(
            "strata", cls.model_fields["strata"].get_default(call_default_factory=True)
        )
        given = raw.get("n_test_per_stratum", {})
        default = cls.model_fields["n_test"].default
        if not isinstance(strata, list) or not isinstance(given, dict):
            return raw  # the field validators say what is wrong
        small = {}
        for s in strata:
            try:
                a, b = parse_stratum(str(s))
            except ConfigError:
                return raw
            canon = f"{a}x{b}"
            size = stratum_size(canon)
            if size <= default and s not in given and canon not in given:
                small[canon] = size // 2
        return {**raw, "n_test_per_stratum": {**given, **small}} if small else raw

    @field_validator("strata")
    @classmethod
    def _valid_strata(cls, v: list[str]) -> list[str]:
        canon = []
        for s in v:
            try:
                a, b = parse_stratum(s)
            except ConfigError as e:  # a ValueError, so the error names the file and field
                raise ValueError(e.message) from None
            canon.append(f"{a}x{b}")  # " 2x2" and "02x2" are the stratum "2x2"
        if len(set(canon)) != len(canon):
            raise ValueError(f"strata must be distinct; as operand digits they are {canon}")
        return canon

    @model_validator(mode="after")
    def _sizes(self) -> ArithmeticConfig:
        for s in self.n_test_per_stratum:
            if s not in self.strata:
                raise ValueError(
                    f"n_test_per_stratum names stratum {s!r}, which is not in strata {self.strata}"
                )
        for s in self.strata:
            n = self.n_test_for(s)
            if n < 1:
                raise ValueError(f"n_test for stratum {s!r} must be at least 1, got {n}")
            size = stratum_size(s)
            if n >= size:
                raise ValueError(
                    f"n_test for stratum {s!r} is {n}, but that stratum has only {size} operand "
                    f"pairs and training needs pairs disjoint from the test set; use at most "
                    f'{size // 2} (e.g. n_test_per_stratum = {{ "{s}" = {size // 2} }})'
                )
        if self.task.removeprefix("arith.") in COMMUTATIVE:
            self._check_training_left()
        return self

    def _check_training_left(self) -> None:
        """A stratum whose transposed stratum is in the task loses the swaps of that stratum's
        test pairs too; refuse test sets that together leave it no training pair."""
        for s in self.strata:
            t = transposed_stratum(s, self.strata)
            if t is None:
                continue
            size, n_s, n_t = stratum_size(s), self.n_test_for(s), self.n_test_for(t)
            if n_s + n_t < size:  # cannot cover the stratum: no need to draw the samples
                continue
            own = set(sample_test_pairs(s, n_s, self.data_seed))
            swaps = {(b, a) for a, b in sample_test_pairs(t, n_t, self.data_seed)}
            if len(own | swaps) >= size:
                raise ValueError(training_exhausted(s, t, size, n_s, n_t))

    def n_test_for(self, s: str) -> int:
        return self.n_test_per_stratum.get(s, self.n_test)


def training_exhausted(s: str, t: str, size: int, n_s: int, n_t: int) -> str:
    return (
        f"Stratum {s!r} has no operand pair left for training: its {size} pairs are all either "
        f"one of its {n_s} test pairs or the swap (b, a) of one of the {n_t} test pairs of "
        f"stratum {t!r} (a swapped test item is the same problem, so training excludes it). "
        "Hold out fewer items, e.g. n_test_per_stratum = "
        f'{{ "{s}" = {size // 4}, "{t}" = {size // 4} }}'
    )


class ArithmeticTask(Task):
    """Exact-match arithmetic with per-digit accuracy and an error taxonomy.

    ``version`` (in the run hash when not 1) is 2 for tasks that have a stratum and its
    transposition ("1x2" and "2x1"): their training data changed when the swaps of the other
    stratum's test pairs were excluded from training (see :meth:`excluded_pairs`).
    """

    config: ArithmeticConfig
    item_metrics = ("digit_accuracy",)
    error_types = (
        "correct",
        "no_answer",
        "wrong_length",
        "carry_error",
        "one_wrong_digit",
        "multi_digit",
    )

    def __init__(self, op: str, config: ArithmeticConfig) -> None:
        self.op = op
        self.symbol, self.word, self.fn = OPS[op]
        self.config = config
        self.name = config.id
        self._test: list[Example] | None = None
        #: part of the run hash when not 1 (:mod:`smollab.study.runspec`), bumped for the
        #: configurations whose items changed, so that their finished runs are not reused.
        #: 2: training (and the few-shot examples drawn from it) excludes the swaps of the test
        #: pairs of the transposed stratum, e.g. of a "2x1" test item in "1x2"; before, a task
        #: with both trained on them. Tasks without such a pair of strata (the default
        #: 1x1/1x2/2x2/3x3) have the same data as before and stay at version 1.
        self.version = 2 if self._has_transposed_strata() else 1

    @property
    def strata(self) -> list[str]:
        return list(self.config.strata)

    def _example(self, a: int, b: int, stratum: str, idx: str) -> Example:
        return Example(
            id=idx,
            stratum=stratum,
            question={"a": a, "b": b, "op": self.op},
            answer=str(self.fn(a, b)),
        )

    def _has_transposed_strata(self) -> bool:
        return self.op in COMMUTATIVE and any(
            transposed_stratum(s, self.strata) is not None for s in self.strata
        )

    def _test_pairs(self, stratum: str) -> list[tuple[int, int]]:
        return sample_test_pairs(stratum, self.config.n_test_for(stratum), self.config.data_seed)

    def excluded_pairs(self, stratum: str) -> set[tuple[int, int]]:
        """Operand pairs training must not use: the test pairs and, for the commutative ops,
        the swaps (b, a) of test pairs. Within a square stratum the swap exclusion is skipped
        where it would leave less than half the stratum for training, i.e. for 1x1, whose whole
        space is 100 pairs (a 1x1 training item may be the swap of a 1x1 test item). The swaps
        of the transposed stratum's test pairs (a "2x1" test item swapped is a "1x2" pair) are
        always excluded; the config refuses test sets that would leave no pair."""
        pairs = set(self._test_pairs(stratum))
        da, db = parse_stratum(stratum)
        if da == db:
            with_swaps = pairs | {(b, a) for a, b in pairs}
            if len(with_swaps) <= stratum_size(stratum) // 2:
                return with_swaps
        elif self.op in COMMUTATIVE:
            t = transposed_stratum(stratum, self.strata)
            if t is not None:
                pairs |= {(b, a) for a, b in self._test_pairs(t)}
        return pairs

    def test_set(self) -> list[Example]:
        if self._test is None:
            out = []
            for s in self.strata:
                for j, (a, b) in enumerate(self._test_pairs(s)):
                    out.append(self._example(a, b, s, f"{s}-{j:04d}"))
            self._test = out
        return self._test

    def train_examples(
        self, n: int, seed: int, weights: dict[str, float] | None = None
    ) -> list[Example]:
        names, p = self.stratum_weights(n, weights)
        test = {s: self.excluded_pairs(s) for s in names}
        for s in names:  # the config refuses this; the guard keeps the sampler from spinning
            if len(test[s]) >= stratum_size(s):
                t = transposed_stratum(s, self.strata) or s
                n_s, n_t = self.config.n_test_for(s), self.config.n_test_for(t)
                raise ConfigError(training_exhausted(s, t, stratum_size(s), n_s, n_t))
        rng = np.random.default_rng([seed, 11])
        which = rng.choice(len(names), size=n, p=p)
        out: list[Example] = []
        for i, k in enumerate(which):
            s = names[int(k)]
            (la, ha), (lb, hb) = (operand_range(d) for d in parse_stratum(s))
            while True:
                a = int(rng.integers(la, ha + 1))
                b = int(rng.integers(lb, hb + 1))
                if (a, b) not in test[s]:
                    break
            out.append(self._example(a, b, s, f"train-{i}"))
        return out

    def score(self, example: Example, prediction: str | None) -> ItemScore:
        truth = example.answer
        if prediction is None or prediction == "":
            return ItemScore(False, prediction, {"digit_accuracy": 0.0}, "no_answer")
        return ItemScore(
            prediction == truth,
            prediction,
            {"digit_accuracy": digit_accuracy(prediction, truth)},
            classify_error(prediction, truth),
        )


def digit_accuracy(pred: str, truth: str) -> float:
    """Fraction of the true answer's digits that the prediction has right, aligned at the units.

    Extra predicted digits count against it: the denominator is the longer length.
    """
    n = max(len(pred), len(truth))
    p, t = pred.rjust(n, " "), truth.rjust(n, " ")
    return sum(1 for x, y in zip(p, t, strict=True) if x == y and x != " ") / n


def classify_error(pred: str, truth: str) -> str:
    """Error taxonomy of a parsed numeric prediction.

    ``correct``; ``wrong_length`` (digit count differs); ``carry_error`` (same length, every wrong
    digit is off by exactly one, the signature of a dropped or extra carry); ``one_wrong_digit``
    (exactly one digit wrong, by more than one); ``multi_digit`` (anything else, including a
    prediction whose sign differs from the truth's, such as ``-449`` for ``1449``).
    """
    if pred == truth:
        return "correct"
    if pred.startswith("-") != truth.startswith("-"):
        return "multi_digit"
    if len(pred) != len(truth):
        return "wrong_length"
    diffs = [(int(a), int(b)) for a, b in zip(pred, truth, strict=True) if a != b]
    if all(abs(a - b) in (1, 9) for a, b in diffs):
        return "carry_error"
    if len(diffs) == 1:
        return "one_wrong_digit"
    return "multi_digit"


# ---------------------------------------------------------------- prompt formats

_INT = re.compile(r"-?\d+")


@dataclass(frozen=True)
class PromptFormat:
    """How an example becomes prompt and target text, and how output is parsed.

    ``family`` names the questions the format can write: ``"arith"`` formats read an arithmetic
    question's operands, ``"text"`` formats a text task's prompt. A task takes the formats of
    one family (its config's ``format_family``); :func:`check_format_fits` refuses the others.
    """

    name: str
    build_prompt: Callable[[dict[str, Any], Any, list[Example]], str]
    build_target: Callable[[dict[str, Any], str, Any], str]
    parse: Callable[[str], str | None]
    uses_chat_template: bool = False
    n_shots: int = 0
    #: bumped when the prompt text, target or parsing changes: part of the run hash of every
    #: study run that uses the format (version 1 is left out, so old hashes stay valid)
    version: int = 1
    family: str = "arith"

    def prompt(self, ex: Example, tokenizer: Any = None, shots: list[Example] | None = None) -> str:
        return self.build_prompt(ex.question, tokenizer, shots or [])

    def target(self, ex: Example, tokenizer: Any = None) -> str:
        return self.build_target(ex.question, ex.answer, tokenizer)


PROMPT_FORMATS: Registry[PromptFormat] = Registry("prompt format")
#: the format a study condition that names none uses, per format family (the tasks' family)
DEFAULT_FORMATS: dict[str, str] = {"arith": "plain"}
#: how messages call a family's tasks
FAMILY_TASKS: dict[str, str] = {"arith": "arithmetic tasks (arith.*)"}


def formats_of(family: str) -> list[str]:
    """The registered prompt formats of ``family``."""
    return [n for n in PROMPT_FORMATS.names() if PROMPT_FORMATS.get(n).family == family]


def check_format_fits(fmt: PromptFormat, config: TaskConfig, where: str, fix: str) -> None:
    """Refuse a prompt format that cannot write the task's questions (an arithmetic format on
    a text task reads operands it has not got); ``fix`` is how to name another format there
    (e.g. ``"set conditions[0].format to"``). Tasks that take no prompt format (benchmarks,
    which write their own prompts) take any."""
    family = type(config).format_family
    if family is None or fmt.family == family:
        return
    fits = formats_of(family)
    raise ConfigError(
        f"{where}: prompt format {fmt.name!r} is for {FAMILY_TASKS.get(fmt.family, fmt.family)}, "
        f"so it does not fit task {config.id!r} ({config.task}), one of the "
        f"{FAMILY_TASKS.get(family, family)}; the formats that fit it are {', '.join(fits)}. "
        f"{fix[:1].upper()}{fix[1:]} one of them."
    )


def _sym(q: dict[str, Any]) -> str:
    return OPS[q["op"]][0]


def _first_int(text: str) -> str | None:
    m = _INT.search(text)
    return m.group(0).lstrip("+") if m else None


def _plain_prompt(q: dict[str, Any]) -> str:
    return f"Q: What is {q['a']} {_sym(q)} {q['b']}? A:"


def _leading_int(text: str) -> str | None:
    m = re.match(r"\s*(-?\d+)", text)
    return m.group(1) if m else None


def _reverse_parse(text: str) -> str | None:
    m = re.match(r"\s*(\d+)", text)
    if not m:
        return None
    digits = m.group(1)[::-1].lstrip("0")
    return digits or "0"


def _partial_products_target(q: dict[str, Any], ans: str, tok: Any) -> str:
    """``23*47=`` -> ``161+920=1081``: one partial product per digit of the second operand (least
    significant first, shifted), their sum last. A one-digit second operand, or addition, gets
    the plain answer."""
    b = str(q["b"])
    if q["op"] != "mul" or len(b) < 2 or int(q["a"]) < 0 or int(q["b"]) < 0:
        return f"{ans}\n"
    parts = [int(q["a"]) * int(d) * 10**i for i, d in enumerate(reversed(b))]
    return "+".join(str(x) for x in parts) + f"={ans}\n"


def _partial_products_parse(text: str) -> str | None:
    """The number after the last ``=`` of the first line, or its leading number when it has none."""
    line = text.split("\n", 1)[0]
    if "=" in line:
        return _leading_int(line.rsplit("=", 1)[1])
    return _leading_int(line)


def _chat_prompt(q: dict[str, Any], tok: Any, shots: list[Example]) -> str:
    if tok is None or getattr(tok, "chat_template", None) is None:
        raise ConfigError(
            "Prompt format 'chat' needs a model whose tokenizer has a chat template; this model "
            "has none. Use format = 'plain' or 'fewshot' instead."
        )
    msgs = [{"role": "user", "content": f"What is {q['a']} {_sym(q)} {q['b']}?"}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def _chat_target(q: dict[str, Any], ans: str, tok: Any) -> str:
    eos = getattr(tok, "eos_token", None) or ""
    return f"{ans}{eos}\n"


def _chat_answer_prompt(q: dict[str, Any], tok: Any, shots: list[Example]) -> str:
    if tok is None or getattr(tok, "chat_template", None) is None:
        raise ConfigError(
            "Prompt format 'chat_answer' needs a model whose tokenizer has a chat template (or "
            "an API model); this model has none. Use format = 'plain' or 'fewshot' instead."
        )
    question = f"What is {q['a']} {_sym(q)} {q['b']}? Reply with the number only."
    msgs = [{"role": "user", "content": question}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def _last_int(text: str) -> str | None:
    """The last integer of the first line: "56", "The answer is 56." and "7 * 8 = 56" all give
    56 (a reply that restates the question puts the answer last)."""
    found = _INT.findall(text.split("\n", 1)[0])
    return found[-1].lstrip("+") if found else None


def _fewshot_prompt(q: dict[str, Any], tok: Any, shots: list[Example]) -> str:
    lines = [f"{_plain_prompt(s.question)} {s.answer}" for s in shots]
    return "\n".join([*lines, _plain_prompt(q)])


PROMPT_FORMATS.register("plain")(
    PromptFormat("plain", lambda q, t, s: _plain_prompt(q), lambda q, a, t: f" {a}\n", _leading_int)
)
PROMPT_FORMATS.register("fewshot")(
    PromptFormat("fewshot", _fewshot_prompt, lambda q, a, t: f" {a}\n", _leading_int, n_shots=3)
)
PROMPT_FORMATS.register("compact")(
    PromptFormat(
        "compact",
        lambda q, t, s: f"\n{q['a']}{_sym(q)}{q['b']}=",
        lambda q, a, t: f"{a}\n",
        _leading_int,
    )
)
PROMPT_FORMATS.register("compact_rev")(
    PromptFormat(
        "compact_rev",
        lambda q, t, s: f"\n{q['a']}{_sym(q)}{q['b']}=",
        lambda q, a, t: f"{a[::-1]}\n",
        _reverse_parse,
    )
)
PROMPT_FORMATS.register("compact_pp")(
    PromptFormat(
        "compact_pp",
        lambda q, t, s: f"\n{q['a']}{_sym(q)}{q['b']}=",
        _partial_products_target,
        _partial_products_parse,
    )
)
# version 2: the reply's last integer (an untrained SmolLM2 restates the question first:
# "3 * 3 = 9" was read as 3, "In mathematics, 0 * 2 is undefined" as 0) and, on local
# models, a budget of at least API_MAX_NEW_TOKENS (the answer's length + 2 cut the reply
# before the answer)
PROMPT_FORMATS.register("chat")(
    PromptFormat("chat", _chat_prompt, _chat_target, _last_int, uses_chat_template=True, version=2)
)
PROMPT_FORMATS.register("chat_answer")(
    PromptFormat(
        "chat_answer",
        _chat_answer_prompt,
        _chat_target,
        _last_int,
        uses_chat_template=True,
        version=2,
    )
)


def _register(op: str) -> None:
    def factory(config: ArithmeticConfig) -> ArithmeticTask:
        return ArithmeticTask(op, config)

    TASKS.register(f"arith.{op}")((ArithmeticConfig, factory))


for _op in OPS:
    _register(_op)
