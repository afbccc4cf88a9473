"""``corpus``: pretrain on raw text and evaluate perplexity on held-out documents.

The corpus is ``path``: a ``.txt`` file, whose documents are separated by blank lines (one or
more lines holding only whitespace; each document's surrounding whitespace is dropped; a file
without blank lines is one document), or a JSON Lines file with one document per record in
``text_field`` (default ``"text"``); either optionally compressed (``.gz``, ``.bz2``). The test
documents are ``test_path``'s, or else a seeded sample of ``test_fraction`` of the documents of
``path`` (by ``data_seed``: the same documents for every condition), never trained on: a
training document whose text (surrounding whitespace aside) is a test document's is left out of
training and counted, as the ``text`` task leaves out an item with a test item's prompt
(:meth:`CorpusTask.data_notes`, ``data/<task>_split.json``). Empty documents are skipped: in a
.txt file a run of blank lines is one separator; a .jsonl record whose text is empty or only
whitespace is skipped and counted. A .jsonl file whose records are exactly ``{"id", "text"}``
(a study's ``data/<task>_test.jsonl``) keeps those ids, which must be distinct.

Training (:meth:`CorpusTask.train_sequences`) is the causal LM objective on every token: the
training documents, each tokenized and followed by the EOS token, are concatenated in an order
shuffled per epoch (seeded by the run's seed) and cut into ``seq_len``-token chunks.

Evaluation scores each test document whole through the LM interface's rolling loglikelihood
(lm-evaluation-harness's ``loglikelihood_rolling``, :func:`smollab.eval.lm.rolling_windows`)
and reports, as lm-eval's wikitext does, corpus-level ``word_perplexity``, ``byte_perplexity``
and ``bits_per_byte`` (words: ``len(re.split(r"\\s+", doc))``; bytes: UTF-8), plus
``token_perplexity`` (the model's own tokens), each weighted by its unit over all documents,
with a 95% bootstrap interval over documents (:func:`corpus_metrics`).

A relative path is read from the directory smollab runs in; the files' sha256 is part of a
run's hash (a run made from other data is not reused).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from smollab.errors import ConfigError, DataError
from smollab.io import file_sha256
from smollab.tasks.base import TASKS, Example, TaskConfig
from smollab.tasks.bench import BenchConfig, BenchTask
from smollab.tasks.data import read_records, read_text
from smollab.tasks.requests import Loglikelihood, RollingLoglikelihoodRequest

TXT_SUFFIXES = (".txt", ".txt.gz", ".txt.bz2")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.bz2")
CORPUS_SUFFIXES = TXT_SUFFIXES + JSONL_SUFFIXES
#: what the ``metrics`` of a corpus evaluation hold (all corpus-level, see corpus_metrics)
CORPUS_METRICS = ("token_perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte")
_SUFFIX_HINT = (
    "a .txt file (documents separated by blank lines) or a .jsonl file (one document per "
    "record), optionally compressed as .gz or .bz2"
)


class CorpusConfig(TaskConfig):
    """``[[tasks]]`` entry for ``corpus``: raw text to pretrain on, held-out documents to
    evaluate perplexity on."""

    path: str = Field(
        min_length=1, description=f"the corpus: {_SUFFIX_HINT}; relative to the working dir"
    )
    test_path: str | None = Field(
        None,
        min_length=1,
        description="a corpus file of test documents (default: test_fraction of path's "
        "documents are held out)",
    )
    text_field: str = Field("text", min_length=1, description="a .jsonl record's text field")
    test_fraction: float = Field(
        0.1,
        description="fraction of path's documents held out for testing, in (0, 1): "
        "fraction x documents, rounded to the nearest whole number (halves up)",
    )
    data_seed: int = Field(1234, ge=0, description="seed of the held-out sample")

    @model_validator(mode="after")
    def _check(self) -> CorpusConfig:
        for field in ("path", "test_path"):
            p = getattr(self, field)
            if p is not None and not p.endswith(CORPUS_SUFFIXES):
                raise ValueError(f"{field} is {p!r}, not a corpus file: name {_SUFFIX_HINT}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(
                f"test_fraction is {self.test_fraction}, outside (0, 1): it is the fraction of "
                "path's documents held out for testing; use e.g. 0.1"
            )
        if "text_field" in self.model_fields_set and not any(
            p.endswith(JSONL_SUFFIXES) for p in (self.path, self.test_path) if p
        ):
            raise ValueError(
                f"text_field is {self.text_field!r}, but path {self.path!r} is a .txt file "
                "(documents separated by blank lines), which has no fields: remove "
                "text_field, or give a .jsonl file"
            )
        if self.test_path is not None and "test_fraction" in self.model_fields_set:
            raise ValueError(
                "test_fraction sets how many documents of path are held out, but test_path "
                "gives the test documents; remove test_fraction (or test_path)"
            )
        return self

    def data_files(self) -> list[Path]:
        return [Path(p) for p in (self.path, self.test_path) if p is not None]


class CorpusEvalConfig(BenchConfig):
    """``smollab eval --task corpus:PATH``: every document of one corpus file."""

    path: str = Field(min_length=1, description="the corpus file (given as --task corpus:PATH)")
    text_field: str | None = Field(None, min_length=1, description="default 'text'")


#: (class, resolved path, mtime, size, text field) -> (documents, sha256, empty record ids)
_CACHE: dict[tuple[Any, ...], tuple[list[dict[str, str]], str, list[str]]] = {}


def word_count(text: str) -> int:
    """Words as lm-eval's wikitext counts them: ``len(re.split(r"\\s+", text))``."""
    return len(re.split(r"\s+", text))


class CorpusTask(BenchTask):
    """Held-out documents scored by rolling loglikelihood; the rest trained on (see the
    module docstring). ``flags`` names how the user set each option, for messages (a study's
    ``[[tasks]]`` fields by default)."""

    request_type = "loglikelihood_rolling"
    #: per-document values; the reported metrics are corpus-level (:meth:`aggregate`)
    metrics = ()
    config: Any

    def __init__(self, config: CorpusConfig, flags: dict[str, str] | None = None) -> None:
        self.config = config
        self.name = config.id
        self._flags = flags
        self._docs = None
        docs, digest, empty = self._load("path", config.path)
        self.data_sha256 = {"path": digest}
        #: per file field, the ids (``line<N>``) of the .jsonl records skipped as empty
        self.empty: dict[str, list[str]] = {"path": empty} if empty else {}
        if config.test_path is not None:
            test, test_digest, test_empty = self._load("test_path", config.test_path)
            self.data_sha256["test_path"] = test_digest
            if test_empty:
                self.empty["test_path"] = test_empty
            train, self._test = docs, test
        else:
            train, self._test = self._split(docs)
        self._train, self.removed = self._without_test_documents(train)
        #: 2 where training documents were left out for being test documents (version 1
        #: trained on them); a corpus without such documents trains on what it always did, so
        #: its runs keep their hashes (version 1 is left out of the hash)
        self.version = 2 if self.removed else 1
        self._tokens: dict[int, list[list[int]]] = {}

    # ------------------------------------------------------------------ messages

    def _where(self, field: str) -> str:
        if self._flags is None:
            return f"Task {self.name!r}: field {field!r}"
        return self._flags.get(field, field)

    def _set(self, field: str) -> str:
        if self._flags is None:
            return f"set field {field!r}"
        return f"give another with {self._flags.get(field, field)}"

    # ------------------------------------------------------------------ loading

    def _load(self, field: str, name: str) -> tuple[list[dict[str, str]], str, list[str]]:
        """The file's documents, its sha256 and the ids of the .jsonl records skipped for
        holding no text."""
        path = Path(name)
        if not path.is_file():
            where = "" if path.is_absolute() else f" (a relative path is read from {Path.cwd()})"
            raise ConfigError(
                f"{self._where(field)}: corpus file {path} does not exist{where}. Check the "
                f"path, or {self._set(field)} ({_SUFFIX_HINT})."
            )
        st = path.stat()
        text_field = self._text_field()
        key = (type(self).__name__, str(path.resolve()), st.st_mtime_ns, st.st_size, text_field)
        if key not in _CACHE:
            prefix = "test-" if field == "test_path" else ""
            docs, empty = self._read(path, field, text_field, prefix)
            _CACHE[key] = (docs, file_sha256(path), empty)
        return _CACHE[key]

    def _text_field(self) -> str:
        return getattr(self.config, "text_field", None) or "text"

    def _read(
        self, path: Path, field: str, text_field: str, prefix: str
    ) -> tuple[list[dict[str, str]], list[str]]:
        who = self._where(field)
        empty: list[str] = []
        try:
            if path.name.endswith(JSONL_SUFFIXES):
                docs, empty = self._jsonl_docs(path, text_field, prefix)
            else:
                text = read_text(path, own=True).replace("\r\n", "\n")
                parts = [p.strip() for p in re.split(r"\n[ \t]*\n", text)]
                docs = [
                    {"id": f"{prefix}doc{i:06d}", "text": p}
                    for i, p in enumerate((p for p in parts if p), 1)
                ]
        except DataError as e:
            raise ConfigError(f"{who}: {e.message}") from None
        if not docs:
            what = (
                f"its {len(empty)} record(s) have an empty {text_field!r}"
                if empty
                else "it is empty or only whitespace"
            )
            raise ConfigError(
                f"{who}: corpus file {path} holds no text ({what}). Write the documents into "
                f"it ({_SUFFIX_HINT})."
            )
        return docs, empty

    def _jsonl_docs(
        self, path: Path, text_field: str, prefix: str
    ) -> tuple[list[dict[str, str]], list[str]]:
        """The records' documents, and the ids of the records skipped because their text is
        empty or only whitespace (a document with no text has nothing to train on or score). A
        text field that is not a string is an error naming the file and line; so are two
        records with one id in a file whose ids are kept."""
        rows = read_records(path, own=True)
        text = read_text(path, own=True)
        lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        # a study's held-out documents (data/<task>_test.jsonl) keep their ids
        own_ids = text_field == "text" and all(
            isinstance(r, dict) and set(r) == {"id", "text"} and isinstance(r["id"], str)
            for r in rows
        )
        where = self._where("path" if not prefix else "test_path")
        docs = []
        empty: list[str] = []
        seen: dict[str, int] = {}
        for line, r in zip(lines, rows, strict=True):
            v = r.get(text_field) if isinstance(r, dict) else None
            if not isinstance(v, str):
                has = sorted(r) if isinstance(r, dict) else f"a JSON {type(r).__name__}"
                what = (
                    "is missing"
                    if not isinstance(r, dict) or text_field not in r
                    else f"is {json.dumps(v)[:60]}, not a string"
                )
                raise ConfigError(
                    f"{where}: corpus file {path}, line {line}: field {text_field!r} {what} "
                    f"(the record has {has}). Fix or drop that line, or name the field that "
                    f"holds the text ({self._set('text_field')})."
                )
            doc_id = r["id"] if own_ids else f"{prefix}line{line:06d}"
            if doc_id in seen:  # only kept ids can repeat
                raise ConfigError(
                    f"{where}: corpus file {path}, lines {seen[doc_id]} and {line} both hold "
                    f'document {doc_id!r}: a file of {{"id", "text"}} records (as a '
                    "study's data/<task>_test.jsonl) names each document once. Drop or rename "
                    "one of them."
                )
            seen[doc_id] = line
            if not v.strip():
                empty.append(doc_id)
                continue
            docs.append({"id": doc_id, "text": v})
        return docs, empty

    def _without_test_documents(
        self, train: list[dict[str, str]]
    ) -> tuple[list[dict[str, str]], list[str]]:
        """The training documents minus those whose text (surrounding whitespace aside) is a
        test document's: that text is scored as held out, so it must not be trained on (as the
        text task leaves out an item with a test item's prompt). A document repeated in path
        can be held out once and would be trained on again; test_path can repeat documents of
        path. Returns the kept documents and the ids of those left out; none left to train on
        is a ConfigError naming the file."""
        c = self.config
        tested = {d["text"].strip() for d in self._test}
        kept = [d for d in train if d["text"].strip() not in tested]
        removed = [d["id"] for d in train if d["text"].strip() in tested]
        if train and not kept:
            test = c.test_path or "the documents held out of it"
            fix = (
                f"remove from {c.path} the documents of {c.test_path}, or give a test_path "
                f"whose documents are not in {c.path}"
                if c.test_path
                else f"remove the repeated documents from {c.path}, or give the test documents "
                "as test_path"
            )
            raise ConfigError(
                f"Task {self.name!r}: every training document of {c.path} ({len(train)}) is "
                f"also a test document ({test}; the same text, surrounding whitespace aside), "
                "so none is left to train on: a document that is scored as held out is never "
                f"trained on. {fix[:1].upper()}{fix[1:]}."
            )
        return kept, removed

    def _split(
        self, docs: list[dict[str, str]]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """Hold out :func:`held_out_count` documents, a seeded sample (data_seed) kept in file
        order; at least one must be held out and one left to train on."""
        c = self.config
        n = len(docs)
        n_test = held_out_count(c.test_fraction, n)
        if n_test < 1 or n_test >= n:
            raise ConfigError(self._split_error(n, n_test))
        rng = np.random.default_rng([c.data_seed, 13])
        chosen = {int(i) for i in rng.choice(n, size=n_test, replace=False)}
        test = [d for i, d in enumerate(docs) if i in chosen]
        train = [d for i, d in enumerate(docs) if i not in chosen]
        return train, test

    def _split_error(self, n: int, n_test: int) -> str:
        c = self.config
        need = "a corpus task needs at least one test and one training document"
        where = f"Task {self.name!r}: corpus file {c.path}"
        if n < 2:
            return (
                f"{where} has {n} document: {need}. Add documents (separate them by blank "
                "lines in a .txt file), or give the test documents as test_path."
            )
        left = "no test document" if n_test < 1 else "none to train on"
        # the bounds rounded inwards, so that every value in the range stated is right
        low, high = _sig3(0.5 / n, up=True), _sig3((n - 0.5) / n, up=False)
        k = min(max(n_test, 1), n - 1)
        example = next(
            f for d in range(3, 12) if held_out_count(f := float(f"{k / n:.{d}g}"), n) == k
        )
        return (
            f"{where} has {n} documents, and test_fraction = {c.test_fraction} of them "
            f"({c.test_fraction * n:.4g}) rounds to {n_test} held out, leaving {left}: {need}. "
            f"The number held out is test_fraction x {n} rounded to the nearest whole number "
            f"(halves up), so with {n} documents test_fraction must be at least {low:g} and "
            f"below {high:g}: set e.g. test_fraction = {example:g} (holds out {k}), or give "
            "the test documents as test_path."
        )

    # ------------------------------------------------------------------ evaluation

    def load_docs(self) -> list[dict[str, Any]]:
        return list(self._test)

    def docs(self) -> list[dict[str, Any]]:
        """The test documents in file order (``--limit N``: the first N); as for any benchmark
        task, kept in ``_docs``, which a ``--procs`` worker narrows to its share."""
        if self._docs is None:
            limit = getattr(self.config, "limit", None)
            self._docs = self.load_docs()[:limit] if limit else self.load_docs()
        return self._docs

    @property
    def data_files(self) -> tuple[str, ...]:  # type: ignore[override]
        c = self.config
        return tuple(str(Path(p).resolve()) for p in (c.path, getattr(c, "test_path", None)) if p)

    def requests(self, doc: dict[str, Any]) -> Sequence[RollingLoglikelihoodRequest]:
        return [RollingLoglikelihoodRequest(doc["text"])]

    def score(self, doc: dict[str, Any], responses: Sequence[Any]) -> dict[str, Any]:
        (ll,) = responses
        assert isinstance(ll, Loglikelihood)
        text = doc["text"]
        return {
            "id": doc["id"],
            "logprob": ll.logprob,
            "tokens": ll.n_tokens,
            "words": word_count(text),
            "bytes": len(text.encode("utf-8")),
        }

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {"metrics": corpus_metrics(records)} if records else {}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["data_sha256"] = dict(self.data_sha256)
        return d

    # ------------------------------------------------------------------ training

    def train_documents(self) -> list[dict[str, str]]:
        return list(self._train)

    def train_sequences(
        self, tokenizer: Any, seq_len: int, n_sequences: int, seed: int
    ) -> tuple[list[list[int]], list[Example]]:
        """``n_sequences`` chunks of ``seq_len`` tokens: the training documents, each followed
        by EOS, concatenated in an order shuffled per epoch by ``seed`` and cut into chunks
        (the tail of one epoch runs into the next). Returns the chunks and the documents in
        the order their tokens were used (one Example per use, ``question["epoch"]``)."""
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ConfigError(
                f"Task {self.name!r}: the tokenizer has no EOS token, which separates the "
                "documents of a corpus when they are joined for training. Use a tokenizer with "
                "one (the char tokenizer and GPT-2's have one)."
            )
        key = id(tokenizer)
        self.tokens_per_epoch(tokenizer)
        toks = self._tokens[key]
        chunks: list[list[int]] = []
        used: list[Example] = []
        buf: list[int] = []
        epoch = 0
        while len(chunks) < n_sequences:
            order = np.random.default_rng([seed, 17, epoch]).permutation(len(toks))
            for k in order:
                doc = self._train[int(k)]
                used.append(Example(doc["id"], "all", {"epoch": epoch}, ""))
                buf += toks[int(k)]
                # chunks are cut at a moving offset and the used tokens dropped once per
                # document: cutting ``buf = buf[seq_len:]`` per chunk copied the rest of a long
                # document every time (quadratic in its length)
                pos = 0
                while len(buf) - pos >= seq_len and len(chunks) < n_sequences:
                    chunks.append(buf[pos : pos + seq_len])
                    pos += seq_len
                del buf[:pos]
                if len(chunks) >= n_sequences:
                    break
            epoch += 1
        return chunks, used

    def tokens_per_epoch(self, tokenizer: Any) -> int:
        """How many tokens one pass over the training documents is (each with its EOS), as
        :meth:`train_sequences` joins them."""
        eos = tokenizer.eos_token_id
        key = id(tokenizer)
        if key not in self._tokens:
            enc = tokenizer([d["text"] for d in self._train], add_special_tokens=False)
            self._tokens[key] = [list(ids) + [eos] for ids in enc.input_ids]
        return sum(len(t) for t in self._tokens[key])

    def data_info(self) -> dict[str, Any] | None:
        """Where the documents came from and how they were split (a session's
        ``data/<task>_split.json``): the files and their sha256, the test document ids, the
        training documents left out for being test documents (``train_removed_ids``) and the
        .jsonl records skipped as empty (``empty_ids``, per file field)."""
        c = self.config
        return {
            "task": self.name,
            "files": {f: getattr(c, f) for f in self.data_sha256},
            "data_sha256": dict(self.data_sha256),
            "test_set": "test_path" if getattr(c, "test_path", None) else "held out of path",
            "test_fraction": None if getattr(c, "test_path", None) else c.test_fraction,
            "data_seed": getattr(c, "data_seed", None),
            "n_test": len(self._test),
            "n_train": len(self._train),
            "test_ids": [d["id"] for d in self._test],
            "n_train_removed": len(self.removed),
            "train_removed_ids": list(self.removed),
            "n_empty": sum(len(v) for v in self.empty.values()),
            "empty_ids": {f: list(v) for f, v in self.empty.items()},
        }

    def data_notes(self) -> list[str]:
        """The training documents left out for being test documents, and the empty records
        skipped: printed after a study's results and added to its notes."""
        c = self.config
        notes = []
        split = f"data/{self.name}_split.json"
        if self.removed:
            test = (
                f"a document of test_path ({c.test_path})"
                if c.test_path
                else "a held-out test document"
            )
            n = len(self.removed)
            notes.append(
                f"Task {self.name}: {n} training document{'s' if n != 1 else ''} of {c.path} "
                f"left out because {'its' if n == 1 else 'their'} text is {test} (surrounding "
                f"whitespace aside), so no test document is trained on; {len(self._train)} "
                f"training document{'s' if len(self._train) != 1 else ''} remain ({split} "
                "lists them under train_removed_ids)."
            )
        for field, ids in self.empty.items():
            n = len(ids)
            notes.append(
                f"Task {self.name}: {n} record{'s' if n != 1 else ''} of {getattr(c, field)} "
                f"skipped because {'its' if n == 1 else 'their'} {self._text_field()!r} is empty "
                f"or only whitespace ({split} lists them under empty_ids)."
            )
        return notes

    def test_set(self) -> list[Example]:
        return [Example(d["id"], "all", {}, "") for d in self._test]


class CorpusFileTask(CorpusTask):
    """Every document of one corpus file, in file order, as the test set: what ``smollab eval
    --task corpus:PATH`` evaluates. A session's ``data/<task>_test.jsonl`` is read as the
    documents it holds, their ids kept."""

    def __init__(self, config: CorpusEvalConfig) -> None:
        if not config.path.endswith(CORPUS_SUFFIXES):
            raise ConfigError(
                f"--task corpus:{config.path}: {config.path} is not a corpus file; give "
                f"{_SUFFIX_HINT}, e.g. --task corpus:wiki.txt."
            )
        if config.text_field is not None and not config.path.endswith(JSONL_SUFFIXES):
            raise ConfigError(
                f"--text-field {config.text_field} names a field of a .jsonl file's records, "
                f"but {config.path} is a .txt file (documents separated by blank lines), which "
                "has no fields: drop --text-field, or give a .jsonl file."
            )
        flags = {"path": f"--task corpus:{config.path}", "text_field": "--text-field"}
        BenchTask.__init__(self, config)
        self._flags = flags
        docs, digest, empty = self._load("path", config.path)
        self.data_sha256 = {"path": digest}
        self.empty = {"path": empty} if empty else {}
        self._train, self._test, self.removed = [], docs, []
        self._tokens = {}
        if empty:  # said with the results (smollab eval prints a task's note)
            n = len(empty)
            self.note = (
                f"{n} record{'s' if n != 1 else ''} of {config.path} skipped because "
                f"{'its' if n == 1 else 'their'} {self._text_field()!r} is empty or only "
                f"whitespace ({', '.join(empty[:5])}{', ...' if n > 5 else ''})"
            )

    def data_info(self) -> dict[str, Any] | None:
        return None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["path"] = str(Path(self.config.path).resolve())
        return d


def held_out_count(fraction: float, n: int) -> int:
    """How many of ``n`` documents a ``test_fraction`` of ``fraction`` holds out: ``fraction *
    n`` rounded to the nearest whole number, halves up (0.1 of 25 documents holds out 3, 0.1
    of 5 holds out 1), taken as the decimal written (0.1 x 15 is 1.5, not 1.5000000000000002)."""
    return math.floor(round(fraction * n, 9) + 0.5)


def _sig3(x: float, *, up: bool) -> float:
    """``x`` (> 0) rounded up or down to 3 significant digits."""
    step = 10.0 ** (math.floor(math.log10(x)) - 2)
    return float(f"{(math.ceil if up else math.floor)(round(x / step, 9)) * step:.3g}")


def corpus_metrics(records: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Corpus-level perplexities of per-document records (``logprob``, ``tokens``, ``words``,
    ``bytes``), each with a 95% percentile bootstrap interval over documents
    (:func:`~smollab.analysis.stats.ratio_bootstrap_interval`): ``token_perplexity`` =
    exp(-sum logprob / sum tokens), likewise per word and per byte, and ``bits_per_byte`` =
    -sum logprob / sum bytes / ln 2 (lm-eval's ``weighted_perplexity`` and ``bits_per_byte``).
    Each entry: estimate, low, high, level, method, n (documents), ``scale: "number"``."""
    from smollab.analysis.stats import ratio_bootstrap_interval

    nll = [-float(r["logprob"]) for r in records]
    out: dict[str, Any] = {}
    for name, unit, transform in (
        ("token_perplexity", "tokens", np.exp),
        ("word_perplexity", "words", np.exp),
        ("byte_perplexity", "bytes", np.exp),
        ("bits_per_byte", "bytes", lambda x: x / math.log(2)),
    ):
        iv = ratio_bootstrap_interval(
            nll, [float(r[unit]) for r in records], seed=seed, transform=transform
        )
        out[name] = {**iv.to_dict(), "n": len(records), "scale": "number"}
    return out


TASKS.register("corpus")((CorpusConfig, CorpusTask))
__all__ = [
    "CORPUS_METRICS",
    "CorpusConfig",
    "CorpusEvalConfig",
    "CorpusFileTask",
    "CorpusTask",
    "corpus_metrics",
    "held_out_count",
    "word_count",
]
