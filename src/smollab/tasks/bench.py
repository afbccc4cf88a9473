"""Benchmark tasks: fixed datasets scored through the LM interface (:mod:`smollab.eval.lm`).

A :class:`BenchTask` is registered in the same ``TASKS`` registry as the arithmetic family, as a
``(config class, factory)`` pair; it differs from a generative :class:`~smollab.tasks.base.Task`
in one way: instead of a prompt format and a parser, it turns each document into LM requests
(``loglikelihood`` or ``generate``) and scores the responses, as lm-evaluation-harness does.

    docs()                      -> the items, each a dict with a unique "id"
    requests(doc)               -> the requests for one item (all of one kind)
    score_many(docs, responses) -> one record per item: {"id", metric: value, ...}

Records hold per-item metric values; ``metrics`` names those the summary aggregates (mean with
an interval, see :mod:`smollab.eval.runner`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from smollab.tasks.base import Example, TaskConfig
from smollab.tasks.requests import (
    GenerateRequest,
    LoglikelihoodRequest,
    RollingLoglikelihoodRequest,
)

Request = LoglikelihoodRequest | GenerateRequest | RollingLoglikelihoodRequest


class BenchConfig(TaskConfig):
    """``[[tasks]]`` entry (or ``smollab eval --task``) for a benchmark task."""

    limit: int | None = Field(None, ge=1, description="evaluate only the first N items")
    data_dir: str | None = Field(None, description="data dir (default: $SMOLLAB_DATA_DIR)")


class BenchTask(ABC):
    """A benchmark: documents -> LM requests -> per-item scores (see module docstring)."""

    name: str
    #: which LM method serves this task's requests ("loglikelihood_rolling": whole texts,
    #: perplexity)
    request_type: Literal["loglikelihood", "generate", "loglikelihood_rolling"]
    #: per-item metrics the summary reports
    metrics: tuple[str, ...]

    @property
    def binary_metrics(self) -> tuple[str, ...]:
        """The metrics that are 0/1 per item (Wilson intervals; the rest are bootstrapped)."""
        return self.metrics

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.name = config.id
        self._docs: list[dict[str, Any]] | None = None

    def docs(self) -> list[dict[str, Any]]:
        """The evaluated items, in dataset order, cut to ``config.limit``."""
        if self._docs is None:
            docs = self.load_docs()
            self._docs = docs[: self.config.limit] if self.config.limit else docs
        return self._docs

    #: the files (or hub datasets) :meth:`load_docs` read, as absolute paths; written into the
    #: results beside the config, whose ``data_dir`` is only what the user passed
    data_files: tuple[str, ...] = ()

    @abstractmethod
    def load_docs(self) -> list[dict[str, Any]]:
        """All items of the evaluated split; each a dict with a unique ``id``. Tasks that read
        files set :attr:`data_files`."""

    @abstractmethod
    def requests(self, doc: dict[str, Any]) -> Sequence[Request]:
        """The LM requests for one item."""

    def score(self, doc: dict[str, Any], responses: Sequence[Any]) -> dict[str, Any]:
        """One record for one item (override this or :meth:`score_many`)."""
        raise TypeError(f"{type(self).__name__} overrides neither score() nor score_many()")

    def score_many(
        self, docs: Sequence[dict[str, Any]], responses: Sequence[Sequence[Any]]
    ) -> list[dict[str, Any]]:
        """Records for a chunk of items (code tasks override it to run tests in parallel)."""
        return [self.score(d, r) for d, r in zip(docs, responses, strict=True)]

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Task-level results beyond per-item means (e.g. pass@k); none by default."""
        return {}

    # -------------------------------------------------------------- in a study
    # A study evaluates a benchmark like a generative task: its analysis reads the test set's
    # ids and strata and, per item, "correct" (the primary metric, the first of ``metrics``).

    #: per-item metrics besides the primary one that a study reports per stratum, each with an
    #: interval (hellaswag's acc_norm); no error taxonomy beyond correct / wrong
    item_metrics: tuple[str, ...] = ()
    error_types: tuple[str, ...] = ("correct", "wrong")
    #: the primary metric's value for uniform guessing (1/4 for four endings), marked on figures
    #: and checked against; None where guessing has no fixed score
    chance: float | None = None
    #: a benchmark's strata are categories (code problems' kinds), not steps of difficulty
    strata_by_difficulty: bool = False

    def stratum_of(self, doc: dict[str, Any]) -> str:
        """An item's stratum: its ``stratum`` field, ``"all"`` for tasks without strata."""
        return str(doc.get("stratum", "all"))

    @property
    def strata(self) -> list[str]:
        """The items' strata in order of appearance."""
        return list(dict.fromkeys(self.stratum_of(d) for d in self.docs()))

    def test_set(self) -> list[Example]:
        """The evaluated items as :class:`Example` s (ids and strata; the text lives in docs)."""
        return [Example(d["id"], self.stratum_of(d), {}, "") for d in self.docs()]

    def study_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A per-item record for the study analysis: ``correct`` is the primary metric == 1."""
        correct = float(record[self.metrics[0]]) >= 1.0
        return {
            **record,
            "stratum": record.get("stratum", "all"),
            "correct": correct,
            "error_type": "correct" if correct else "wrong",
        }

    #: bumped when a task's prompts or scoring change; part of :meth:`describe`, hence of the
    #: key under which ``smollab eval`` resumes samples (version 1 is left out, so the keys of
    #: tasks never bumped stay what they were)
    version: int = 1

    def describe(self) -> dict[str, Any]:
        """The resolved configuration, written into the results file."""
        d = self.config.model_dump(mode="json")
        if self.version != 1:
            d["version"] = self.version
        return d

    #: :meth:`describe` fields that only choose which items run or what is reported from them:
    #: left out of :meth:`samples_config`, so a run with more items reuses those computed
    selection_fields: tuple[str, ...] = ("limit",)

    def samples_config(self) -> dict[str, Any]:
        """What this task's samples depend on (with the model, the key under which ``smollab
        eval`` resumes them): :meth:`describe` minus :attr:`selection_fields`."""
        return {k: v for k, v in self.describe().items() if k not in self.selection_fields}
