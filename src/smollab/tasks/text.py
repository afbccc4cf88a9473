"""``text``: fine-tune and evaluate on your own question/answer data (a JSON Lines file).

Each line of ``path`` is one record, e.g. ``{"prompt": "Capital of France?", "answer": "Paris",
"topic": "geo"}``; ``prompt_field`` / ``answer_field`` name other fields, ``stratum_field`` one
that groups the items into strata (else every item is in the stratum ``"all"``). The test set
is ``test_path``'s items, or else ``n_test`` items per stratum held out of ``path``, seeded by
``data_seed`` (the same items for every condition); training samples the rest, never a test
item: an item whose prompt (surrounding whitespace aside) is a test item's prompt is left out of
training, whatever its answer, and counted (:meth:`TextTask.data_notes`,
``data/<task>_split.json``). An item is correct when the parsed prediction equals its answer
(surrounding whitespace aside): exact match, with no partial credit and no error taxonomy.

Prompt formats of the ``text`` family:

``text``       the prompt as given -> ``target_delimiter + answer`` (lm-evaluation-harness's
               convention: ``"Capital of France?"`` -> ``" Paris"``); the first line is the reply
``text_chat``  the prompt as the user message of the model's chat template -> the answer and
               the end-of-turn token

Generation stops at a newline, so answers are one line; an empty or multi-line answer is
refused with the file and line. A relative path is read from the directory smollab runs in.
The data files' sha256 is part of a run's hash: a run made from other data is not reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from smollab.errors import ConfigError, DataError
from smollab.io import file_sha256
from smollab.tasks.arithmetic import (
    DEFAULT_FORMATS,
    FAMILY_TASKS,
    PROMPT_FORMATS,
    PromptFormat,
    _chat_target,  # the answer, eos, newline: the same target in every chat format
)
from smollab.tasks.base import TASKS, Example, ItemScore, Task, TaskConfig
from smollab.tasks.data import read_records, read_text

#: the stratum of every item when the task has no ``stratum_field``
ALL = "all"
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.bz2")


class TextConfig(TaskConfig):
    """``[[tasks]]`` entry for ``text``: question/answer records from a JSON Lines file."""

    format_family: ClassVar[str | None] = "text"

    path: str = Field(
        min_length=1,
        description="JSON Lines file of records (.jsonl, .jsonl.gz or .jsonl.bz2); a relative "
        "path is read from the directory smollab runs in",
    )
    test_path: str | None = Field(
        None,
        min_length=1,
        description="a JSON Lines file of test records (default: n_test items of path per "
        "stratum are held out)",
    )
    prompt_field: str = Field("prompt", min_length=1, description="the field holding the prompt")
    answer_field: str = Field("answer", min_length=1, description="the field holding the answer")
    stratum_field: str | None = Field(
        None, min_length=1, description=f"the field naming an item's stratum (default: {ALL!r})"
    )
    strata: list[str] | None = Field(
        None, min_length=1, description="keep only the items of these strata (default: all)"
    )
    n_test: int = Field(
        200,
        ge=1,
        description="items per stratum held out of path for the test set (a stratum of at "
        "most 200 items holds out half of them when n_test is not given)",
    )
    data_seed: int = Field(1234, ge=0, description="seed of the held-out sample")
    target_delimiter: str = Field(" ", description="put between the prompt and the answer")

    @model_validator(mode="after")
    def _check(self) -> TextConfig:
        for field in ("path", "test_path"):
            p = getattr(self, field)
            if p is not None and not p.endswith(JSONL_SUFFIXES):
                raise ValueError(
                    f"{field} is {p!r}, not a JSON Lines file: name a .jsonl file (one JSON "
                    "record per line), optionally compressed as .jsonl.gz or .jsonl.bz2"
                )
        if self.test_path is not None and "n_test" in self.model_fields_set:
            raise ValueError(
                "n_test sets how many items of path are held out for testing, but test_path "
                "gives the test set; remove n_test (or test_path, to hold items out of path)"
            )
        if self.strata is not None and len(set(self.strata)) != len(self.strata):
            raise ValueError(f"strata must be distinct, got {self.strata}")
        if self.strata is not None and self.stratum_field is None and self.strata != [ALL]:
            raise ValueError(
                f"strata keeps strata {self.strata}, but without stratum_field every item is in "
                f"the one stratum {ALL!r}; set stratum_field to the field naming each item's "
                "stratum, or remove strata"
            )
        return self

    def data_files(self) -> list[Path]:
        return [Path(p) for p in (self.path, self.test_path) if p is not None]


#: (resolved path, mtime, size, fields) -> (items, sha256): a run's hash and every check build
#: the task, which would otherwise read and check the file each time
_CACHE: dict[tuple[Any, ...], tuple[list[Example], str]] = {}


class TextTask(Task):
    """Exact match on question/answer records read from JSON Lines files."""

    config: TextConfig
    item_metrics = ()
    error_types = ("correct", "wrong")
    #: strata are groups of the user's items (topics, sources), not a difficulty axis
    strata_by_difficulty = False

    def __init__(self, config: TextConfig) -> None:
        self.config = config
        self.name = config.id
        items, digest = self._load("path")
        self.data_sha256 = {"path": digest}
        if config.test_path is not None:
            test, test_digest = self._load("test_path")
            self.data_sha256["test_path"] = test_digest
        else:
            test = []
        wanted = config.strata
        found = list(dict.fromkeys(e.stratum for e in [*items, *test]))
        if wanted is not None:
            unknown = [s for s in wanted if s not in found]
            if unknown:
                raise ConfigError(
                    f"Task {self.name!r}: field 'strata' names {unknown}, which no item of "
                    f"{self._files()} has in field {config.stratum_field!r}; the strata there are "
                    f"{found}. Name some of those, or remove strata to keep every item."
                )
            items = [e for e in items if e.stratum in wanted]
            test = [e for e in test if e.stratum in wanted]
        self._strata = list(wanted) if wanted is not None else found
        if config.test_path is not None:
            train, self._test = items, test
            for s in self._strata:
                for what, pool, field in (("training", items, "path"), ("test", test, "test_path")):
                    if not any(e.stratum == s for e in pool):
                        raise ConfigError(
                            f"Task {self.name!r}: stratum {s!r} has no {what} item in "
                            f"{getattr(config, field)} (field {field!r}), so it could not be "
                            f"{'trained on' if what == 'training' else 'evaluated'}. Add items "
                            "of that stratum there, or leave it out with field 'strata'."
                        )
        else:
            train, self._test = self._split(items)
        self._train, self.removed = self._without_test_prompts(train)
        #: 2 where items were left out of training for having a test item's prompt (version 1
        #: trained on them); a file without such items trains on the items it always did, so
        #: its runs keep their hashes (version 1 is left out of the hash)
        self.version = 2 if self.removed else 1

    # ------------------------------------------------------------------ loading

    def _files(self) -> str:
        c = self.config
        return c.path if c.test_path is None else f"{c.path} and {c.test_path}"

    # how messages name the task, a data file's option and a field option: a study's
    # [[tasks]] fields here; `smollab eval --task text:PATH`'s flags in TextFileTask

    def _who(self, field: str | None = None) -> str:
        return f"Task {self.name!r}" + (f": field {field!r}" if field else "")

    def _set(self, option: str, what: str) -> str:
        return f"set {option} to {what}"

    def _id_prefix(self, field: str) -> str:
        return "line" if field == "path" else "test-line"

    def _load(self, field: str) -> tuple[list[Example], str]:
        c = self.config
        path = Path(getattr(c, field))
        if not path.is_file():
            where = "" if path.is_absolute() else f" (a relative path is read from {Path.cwd()})"
            raise ConfigError(
                f"{self._who(field)}: data file {path} does not exist{where}. Check the path, "
                f"or {self._set(field, 'the JSON Lines file holding the records')}."
            )
        st = path.stat()
        key = (
            type(self).__name__,
            str(path.resolve()),
            st.st_mtime_ns,
            st.st_size,
            c.prompt_field,
            c.answer_field,
            c.stratum_field,
            c.target_delimiter,
            self._id_prefix(field),
        )
        if key not in _CACHE:
            _CACHE[key] = (self._read(path, field), file_sha256(path))
        return _CACHE[key]

    def _records(self, path: Path, field: str) -> list[tuple[int, Any]]:
        """The file's records, each with its line number (blank lines skipped)."""
        try:
            rows = read_records(path, own=True)
        except DataError as e:
            raise ConfigError(f"{self._who(field)}: {e.message}") from None
        if not rows:
            raise ConfigError(
                f"{self._who(field)}: data file {path} holds no records; write one JSON record "
                "per line."
            )
        text = read_text(path, own=True)
        lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        return list(zip(lines, rows, strict=True))

    def _read(self, path: Path, field: str) -> list[Example]:
        return [self._example(path, line, r, field) for line, r in self._records(path, field)]

    def _example(self, path: Path, line: int, r: Any, field: str) -> Example:
        c = self.config
        fields = [("prompt_field", c.prompt_field), ("answer_field", c.answer_field)]
        if c.stratum_field is not None:
            fields.append(("stratum_field", c.stratum_field))
        at = f"{self._who()}: data file {path}, line {line}"
        if not isinstance(r, dict):
            raise ConfigError(
                f"{at}: the record is {json.dumps(r)[:60]}, not a JSON object. Each line "
                f'must be an object such as {{"{c.prompt_field}": "...", '
                f'"{c.answer_field}": "..."}}.'
            )
        for option, name in fields:
            v = r.get(name)
            if not isinstance(v, str):
                what = "is missing" if name not in r else f"is {json.dumps(v)[:60]}"
                raise ConfigError(
                    f"{at}: field {name!r} {what}, where a string is expected (the record "
                    f"has fields {sorted(r)}). Fix that line, or "
                    f"{self._set(option, 'the field that holds it')}."
                )
        answer = r[c.answer_field]
        _check_answer(at, c.answer_field, answer)
        return Example(
            id=f"{self._id_prefix(field)}{line:06d}",
            stratum=r[c.stratum_field] if c.stratum_field is not None else ALL,
            question={"prompt": r[c.prompt_field], "target_delimiter": c.target_delimiter},
            answer=answer,
        )

    def _split(self, items: list[Example]) -> tuple[list[Example], list[Example]]:
        """Hold out ``n_test`` items per stratum (half of a stratum of at most the default
        200 when n_test is not given, as arithmetic does); a seeded sample that depends on the
        stratum's items and the data seed only."""
        c = self.config
        explicit = "n_test" in c.model_fields_set
        default = TextConfig.model_fields["n_test"].default
        train: list[Example] = []
        test: list[Example] = []
        for s in self._strata:
            pool = [e for e in items if e.stratum == s]
            n = c.n_test if explicit or len(pool) > default else len(pool) // 2
            if n < 1 or n >= len(pool):
                given = f"n_test = {c.n_test}" if explicit else f"half of it ({n})"
                most = max(len(pool) - 1, 0)
                fix = (
                    f"set n_test to at most {most}" if most else "add items to that stratum"
                ) + ", or give the test set as test_path"
                raise ConfigError(
                    f"Task {self.name!r}: stratum {s!r} of {c.path} has {len(pool)} item(s), and "
                    f"holding out {given} for testing would leave "
                    f"{'none' if n >= len(pool) else 'no test item'}"
                    f"{' for training' if n >= len(pool) else ''}: a stratum needs at least one "
                    f"test and one training item. {fix[:1].upper()}{fix[1:]}."
                )
            rng = np.random.default_rng([c.data_seed, _stratum_seed(s), 7])
            chosen = set(int(i) for i in rng.choice(len(pool), size=n, replace=False))
            test += [e for i, e in enumerate(pool) if i in chosen]
            train += [e for i, e in enumerate(pool) if i not in chosen]
        return train, test

    def _without_test_prompts(self, train: list[Example]) -> tuple[list[Example], list[str]]:
        """The training items minus those whose prompt (surrounding whitespace aside) is a
        test item's prompt, whatever either answer: that is the test question, trained on. A
        prompt that occurs more than once in ``path`` can be held out once and kept for
        training again; ``test_path`` can repeat items of ``path``. Returns the kept items and
        the ids of those left out; a stratum left with no training item is a ConfigError."""
        c = self.config
        tested = {e.question["prompt"].strip() for e in self._test}
        kept: list[Example] = []
        removed: list[str] = []
        for e in train:
            if e.question["prompt"].strip() in tested:
                removed.append(e.id)
            else:
                kept.append(e)
        for s in self._strata:
            n = sum(e.stratum == s for e in train)
            if n and not any(e.stratum == s for e in kept):
                where = f"stratum {s!r} of {c.path}" if c.stratum_field else c.path
                test = c.test_path or "the items held out of it"
                fix = (
                    f"remove from {c.path} the items of {c.test_path}, or give test_path items "
                    f"that are not in {c.path}"
                    if c.test_path
                    else f"remove the repeated prompts from {c.path}, or give the test set as "
                    "test_path"
                )
                raise ConfigError(
                    f"Task {self.name!r}: every training item of {where} ({n}) has the prompt "
                    f"of a test item ({test}), so none is left to train on: an item with a test "
                    "item's prompt (surrounding whitespace aside, whatever its answer) is never "
                    f"trained on, so that the test set holds only questions not trained on. "
                    f"{fix[:1].upper()}{fix[1:]}."
                )
        return kept, removed

    def data_info(self) -> dict[str, Any] | None:
        """Where the items came from and how they were split (a study writes it to
        ``data/<task>_split.json``): each file and its sha256, the test and training item
        counts, and the training items left out for having a test item's prompt (their ids,
        ``line<N>`` for line N of ``path``)."""
        c = self.config
        return {
            "task": self.name,
            "files": {f: getattr(c, f) for f in self.data_sha256},
            "data_sha256": dict(self.data_sha256),
            "test_set": "test_path" if c.test_path else "held out of path",
            "n_test": {s: sum(e.stratum == s for e in self._test) for s in self._strata},
            "n_train": {s: sum(e.stratum == s for e in self._train) for s in self._strata},
            "n_train_removed": len(self.removed),
            "train_removed_ids": list(self.removed),
        }

    def data_notes(self) -> list[str]:
        if not self.removed:
            return []
        c = self.config
        test = f"a test item's ({c.test_path})" if c.test_path else "a held-out test item's"
        return [
            f"Task {self.name}: {len(self.removed)} training item(s) of {c.path} left out because "
            f"their prompt is {test} (surrounding whitespace aside, whatever the answer), so no "
            f"test question is trained on; {len(self._train)} training item(s) remain "
            f"(data/{self.name}_split.json lists them by line)."
        ]

    # ------------------------------------------------------------------ the Task interface

    @property
    def strata(self) -> list[str]:
        return list(self._strata)

    def test_set(self) -> list[Example]:
        return list(self._test)

    def train_examples(
        self, n: int, seed: int, weights: dict[str, float] | None = None
    ) -> list[Example]:
        """``n`` items drawn with replacement from the training items, each item's stratum
        drawn by ``weights`` (every stratum alike by default), as arithmetic samples them."""
        names, p = self.stratum_weights(n, weights)
        pools = {s: [e for e in self._train if e.stratum == s] for s in names}
        rng = np.random.default_rng([seed, 11])
        which = rng.choice(len(names), size=n, p=p)
        out = []
        for i, k in enumerate(which):
            pool = pools[names[int(k)]]
            e = pool[int(rng.integers(len(pool)))]
            out.append(Example(f"train-{i}", e.stratum, e.question, e.answer))
        return out

    def score(self, example: Example, prediction: str | None) -> ItemScore:
        if prediction is None or not prediction.strip():
            return ItemScore(False, prediction, {}, "wrong")
        ok = prediction.strip() == example.answer.strip()
        return ItemScore(ok, prediction, {}, "correct" if ok else "wrong")


#: the fields of a record of a study's test set, ``data/<task>_test.jsonl`` (Example.to_dict)
_TEST_SET_FIELDS = {"id", "stratum", "question", "answer"}


class TextFileTask(TextTask):
    """Every record of one JSON Lines file as the test set, in file order, with nothing to
    train on: what ``smollab eval --task text:PATH`` evaluates
    (:class:`~smollab.eval.exact_match.TextEval`).

    The records are read as a study reads ``test_path`` (ids ``test-line<N>``, the same
    checks), so they are the test set of a study whose ``test_path`` is that file, read with
    the same fields. A study's own test set, ``data/<task>_test.jsonl`` (records ``{"id",
    "stratum", "question": {"prompt", "target_delimiter"}, "answer"}``), is read as the items
    it holds: their ids, strata and target delimiter. ``flags`` says how the user set each
    option, for the messages (``{"path": "--task text:qa.jsonl", "prompt_field":
    "--prompt-field", "answer_field": ..., "stratum_field": ...}``)."""

    def __init__(self, config: TextConfig, flags: dict[str, str]) -> None:
        self.config = config
        self.name = config.id
        self._flags = flags
        items, digest = self._load("path")
        self.data_sha256 = {"path": digest}
        self._strata = list(dict.fromkeys(e.stratum for e in items))
        self._test, self._train, self.removed = items, [], []
        self.version = 1

    def _who(self, field: str | None = None) -> str:
        return self._flags["path"]

    def _set(self, option: str, what: str) -> str:
        if option == "path":
            return f"give {what} as --task text:PATH"
        return f"give {what} with {self._flags[option]}"

    def _id_prefix(self, field: str) -> str:
        return "test-line"

    def _read(self, path: Path, field: str) -> list[Example]:
        records = self._records(path, field)
        first = records[0][1]
        if not (isinstance(first, dict) and set(first) == _TEST_SET_FIELDS):
            return [self._example(path, line, r, field) for line, r in records]
        options = ("prompt_field", "answer_field", "stratum_field")
        given = [self._flags[f] for f in options if f in self.config.model_fields_set]
        if given:
            raise ConfigError(
                f"{self._who()}: {path} is a study's test set (records with the fields id, "
                "stratum, question and answer, as in a session's data/<task>_test.jsonl), whose "
                f"items carry their own prompt, answer and stratum: {', '.join(given)} do not "
                "apply to it. Leave them out."
            )
        out = [self._test_set_example(path, line, r) for line, r in records]
        seen: dict[str, int] = {}
        for (line, _), e in zip(records, out, strict=True):
            if e.id in seen:
                raise ConfigError(
                    f"{self._who()}: data file {path}, lines {seen[e.id]} and {line} both hold "
                    f"item {e.id!r}; a study's test set names each item once. Use the file the "
                    "study wrote, or drop one of them."
                )
            seen[e.id] = line
        return out

    def _test_set_example(self, path: Path, line: int, r: Any) -> Example:
        at = f"{self._who()}: data file {path}, line {line}"
        q = r.get("question") if isinstance(r, dict) else None
        ok = (
            isinstance(r, dict)
            and set(r) == _TEST_SET_FIELDS
            and all(isinstance(r[k], str) for k in ("id", "stratum", "answer"))
            and isinstance(q, dict)
            and all(isinstance(q.get(k), str) for k in ("prompt", "target_delimiter"))
        )
        if not ok:
            raise ConfigError(
                f"{at}: the record is {json.dumps(r)[:80]}, but the file's first line is a "
                'record of a study\'s test set ({"id": ..., "stratum": ..., "question": '
                '{"prompt": ..., "target_delimiter": ...}, "answer": ...}, as a session\'s '
                "data/<task>_test.jsonl holds). Give every line in that form, or every line "
                "as a record with a prompt and an answer."
            )
        assert isinstance(r, dict) and isinstance(q, dict)
        _check_answer(at, "answer", r["answer"])
        question = {"prompt": q["prompt"], "target_delimiter": q["target_delimiter"]}
        return Example(r["id"], r["stratum"], question, r["answer"])

    def train_examples(
        self, n: int, seed: int, weights: dict[str, float] | None = None
    ) -> list[Example]:
        raise ConfigError(
            f"{self._who()}: every item of the file is a test item, so there is nothing to "
            "train on. Train with a study's text task, whose path gives the training items."
        )

    def data_info(self) -> dict[str, Any] | None:
        return None  # not a study's task: no data/ folder, no split


def _check_answer(at: str, field: str, answer: str) -> None:
    if not answer.strip() or "\n" in answer.strip() or "\r" in answer.strip():
        what = "is empty" if not answer.strip() else "has more than one line"
        raise ConfigError(
            f"{at}: field {field!r} {what} ({json.dumps(answer)[:60]}). Answers must be one "
            "non-empty line: generation stops at the first newline, so a longer answer could "
            "never be matched. Fix or drop that line."
        )


def _stratum_seed(s: str) -> int:
    """A stable integer of a stratum name (Python's hash() of a str changes per process)."""
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "little")


# ---------------------------------------------------------------- prompt formats


def _first_line(text: str) -> str | None:
    line = text.split("\n", 1)[0].strip()
    return line or None


def _chat_prompt(q: dict[str, Any], tok: Any, shots: list[Example]) -> str:
    if tok is None or getattr(tok, "chat_template", None) is None:
        raise ConfigError(
            "Prompt format 'text_chat' needs a model whose tokenizer has a chat template; this "
            "model has none. Use format = 'text' instead."
        )
    msgs = [{"role": "user", "content": q["prompt"]}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


PROMPT_FORMATS.register("text")(
    PromptFormat(
        "text",
        lambda q, t, s: q["prompt"],
        lambda q, a, t: f"{q['target_delimiter']}{a}\n",
        _first_line,
        family="text",
    )
)
PROMPT_FORMATS.register("text_chat")(
    PromptFormat(
        "text_chat", _chat_prompt, _chat_target, _first_line, uses_chat_template=True, family="text"
    )
)
DEFAULT_FORMATS["text"] = "text"
FAMILY_TASKS["text"] = "text tasks (text)"

TASKS.register("text")((TextConfig, TextTask))
