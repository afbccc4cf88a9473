"""What a task is: a dataset of :class:`Example` s, prompt formats, a scorer and strata.

A task produces a fixed, seeded test set (the same items for every condition, so paired tests
are possible) and, for training, examples disjoint from that test set. Scoring is per item; the
analysis layer aggregates items into metrics with intervals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from smollab.io import NAME_PATTERN
from smollab.registry import Registry


@dataclass(frozen=True)
class Example:
    """One item: ``question`` holds the task's structured input, ``answer`` the canonical answer."""

    id: str
    stratum: str
    question: dict[str, Any]
    answer: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls(id=d["id"], stratum=d["stratum"], question=d["question"], answer=d["answer"])


@dataclass
class ItemScore:
    """The score of one generated completion."""

    correct: bool
    prediction: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    error_type: str = "correct"


class TaskConfig(BaseModel):
    """Fields common to every task entry of a study spec (``[[tasks]]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(
        pattern=NAME_PATTERN,
        description="the task's name in the study (files are named after it): letters, digits, "
        "'_', '-', '.'",
    )
    task: str

    #: the prompt formats the task takes (``PromptFormat.family``): None for tasks that write
    #: their own prompts (benchmarks), which take any study format and ignore it
    format_family: ClassVar[str | None] = None

    def data_files(self) -> list[Path]:
        """The files the task's items are read from (their content enters the run hash; see
        :mod:`smollab.study.runspec`); none for tasks whose items are generated or built in."""
        return []


class Task(ABC):
    """A generative task. Subclasses define examples, formats and scoring."""

    name: str
    config: TaskConfig
    #: metric names reported per stratum, besides ``exact_match``
    item_metrics: tuple[str, ...] = ()
    #: those of them that are 0/1 per item (none here: digit accuracy is fractional)
    binary_metrics: tuple[str, ...] = ()
    #: error categories reported by the error taxonomy, in display order
    error_types: tuple[str, ...] = ()
    #: exact match under guessing, when it has a fixed value (see BenchTask.chance)
    chance: float | None = None
    #: the strata run from easiest to hardest (arithmetic's operand digits), so reports and
    #: checks may read them as a difficulty axis
    strata_by_difficulty: bool = True

    @property
    @abstractmethod
    def strata(self) -> list[str]: ...

    @abstractmethod
    def test_set(self) -> list[Example]:
        """The held-out items, deterministic given the task config."""

    @abstractmethod
    def train_examples(
        self, n: int, seed: int, weights: dict[str, float] | None = None
    ) -> list[Example]:
        """``n`` training items, deterministic given ``seed``, disjoint from the test set."""

    def stratum_weights(
        self, n: int, weights: dict[str, float] | None
    ) -> tuple[list[str], np.ndarray]:
        """For :meth:`train_examples`: the strata to draw ``n`` items from and their
        probabilities, from ``weights`` (every stratum alike by default), checked: ``n`` >= 0,
        weights >= 0, of this task's strata, not all zero."""
        from smollab.errors import ConfigError

        if n < 0:
            raise ConfigError(f"train_examples: n={n} is negative; ask for 0 or more examples.")
        weights = weights or {s: 1.0 for s in self.strata}
        negative = {s: w for s, w in weights.items() if w < 0}
        if negative:
            raise ConfigError(f"Training weights must be >= 0; got {negative}.")
        unknown = set(weights) - set(self.strata)
        if unknown:
            raise ConfigError(
                f"Training weights name strata {sorted(unknown)} that task {self.name!r} does "
                f"not have; its strata are {self.strata}."
            )
        names = [s for s in self.strata if weights.get(s, 0) > 0]
        if not names:
            raise ConfigError(f"Training weights for task {self.name!r} are all zero.")
        p = np.array([weights[s] for s in names], dtype=float)
        return names, p / p.sum()

    @abstractmethod
    def score(self, example: Example, prediction: str | None) -> ItemScore:
        """Score a parsed prediction against the example."""

    def data_info(self) -> dict[str, Any] | None:
        """For tasks whose items are read from files: where they came from and how they were
        split (a study writes it to ``data/<task>_split.json``); None for the others."""
        return None

    def data_notes(self) -> list[str]:
        """What a researcher should know about the task's data (e.g. training items left out
        for having a test item's prompt): added to a study's notes and printed after it."""
        return []


TaskFactory = Any
#: ``task`` name in a study spec -> (config class, Task constructor)
TASKS: Registry[TaskFactory] = Registry("task")
