"""Grokking tasks: binary operations on a finite set, every pair enumerated.

``grok.x_plus_y``, ``grok.x_minus_y``, ``grok.x_div_y`` (mod a prime ``p``, default 97; division
is ``x * y^(p-2) mod p`` with ``y != 0``) and ``grok.permutation`` (composition in S5, 120
elements). Each pair ``(x, y)`` is the 4-token sequence ``x op y =`` and its answer is one of the
``n_classes`` elements, read at the last position.

The train/validation split is a seeded permutation of all pairs (``numpy`` PCG64, never Python's
unseeded ``random``); :meth:`ModularTask.split` returns it and the trainer saves it with the run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from smollab.errors import ConfigError
from smollab.tasks.base import TASKS, TaskConfig

OPERATIONS = ("x_plus_y", "x_minus_y", "x_div_y", "permutation")
#: the grokking task family: runs of the ``grok`` study kind accept only these tasks
FAMILY = "grok"


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


class ModularTaskConfig(TaskConfig):
    """``[[tasks]]`` entry for a grokking task."""

    task: Literal["grok.x_plus_y", "grok.x_minus_y", "grok.x_div_y", "grok.permutation"]
    p: int = Field(97, ge=2, le=1000, description="modulus (ignored by permutation)")
    train_fraction: float = Field(
        0.5, gt=0, lt=1, description="share of all pairs used for training, in (0, 1)"
    )
    k: int = Field(5, ge=2, le=6, description="permutation: the group is S_k (default S5)")

    @field_validator("p")
    @classmethod
    def _prime_for_division(cls, p: int, info: Any) -> int:
        if info.data.get("task") == "grok.x_div_y" and not is_prime(p):
            raise ValueError(
                f"grok.x_div_y (division mod p) needs a prime p (y^(p-2) is the inverse of y "
                f"only then); "
                f"{p} is not prime. Use a prime such as 97, 113 or 59"
            )
        return p


@dataclass(frozen=True)
class Split:
    """Indices into :attr:`ModularTask.pairs` (both sorted), and the seed that drew them."""

    seed: int
    train: np.ndarray
    val: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "train": self.train.tolist(), "val": self.val.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Split:
        return cls(int(d["seed"]), np.asarray(d["train"], np.int64), np.asarray(d["val"], np.int64))


class ModularTask:
    """All pairs of one operation as token arrays; the family's only task class."""

    family = FAMILY

    def __init__(self, config: ModularTaskConfig) -> None:
        self.config = config
        self.name = config.id
        self.operation = config.task.split(".", 1)[1]

    # ----------------------------------------------------------------- elements and vocabulary
    @cached_property
    def _perms(self) -> list[tuple[int, ...]]:
        return list(itertools.permutations(range(self.config.k)))

    @property
    def n_classes(self) -> int:
        """Number of elements: answers are class ids ``0 .. n_classes-1``."""
        return len(self._perms) if self.operation == "permutation" else self.config.p

    @property
    def op_token(self) -> int:
        return self.n_classes

    @property
    def eq_token(self) -> int:
        return self.n_classes + 1

    @property
    def vocab_size(self) -> int:
        return self.n_classes + 2

    seq_len = 4

    # ----------------------------------------------------------------- data
    @cached_property
    def pairs(self) -> np.ndarray:
        """``(n, 3)`` int64 rows ``x, y, answer`` in a fixed order."""
        p = self.config.p
        if self.operation == "permutation":
            perms = self._perms
            index = {q: i for i, q in enumerate(perms)}
            rows = [
                (i, j, index[tuple(a[b[t]] for t in range(len(b)))])
                for i, a in enumerate(perms)
                for j, b in enumerate(perms)
            ]
            return np.asarray(rows, np.int64)
        gx, gy = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
        x, y = gx.ravel(), gy.ravel()
        if self.operation == "x_plus_y":
            ans = (x + y) % p
        elif self.operation == "x_minus_y":
            ans = (x - y) % p
        else:
            keep = y != 0
            x, y = x[keep], y[keep]
            ans = np.array([(a * pow(int(b), p - 2, p)) % p for a, b in zip(x, y, strict=True)])
        return np.stack([x, y, ans], axis=1).astype(np.int64)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def tokens(self) -> np.ndarray:
        """``(n, 4)`` int64 input sequences ``x op y =``."""
        x, y = self.pairs[:, 0], self.pairs[:, 1]
        n = len(x)
        return np.stack(
            [x, np.full(n, self.op_token), y, np.full(n, self.eq_token)], axis=1
        ).astype(np.int64)

    def labels(self) -> np.ndarray:
        return self.pairs[:, 2].copy()

    def split(self, seed: int) -> Split:
        """The seeded train/validation split: deterministic in (task config, seed)."""
        rng = np.random.Generator(np.random.PCG64(seed))
        order = rng.permutation(self.n_pairs)
        n_train = int(round(self.config.train_fraction * self.n_pairs))
        if not 0 < n_train < self.n_pairs:
            raise ConfigError(
                f"Task {self.name!r}: train_fraction={self.config.train_fraction} leaves "
                f"{n_train} of {self.n_pairs} pairs for training; both sides need at least one "
                "pair. Choose a fraction further from 0 and 1."
            )
        return Split(seed, np.sort(order[:n_train]), np.sort(order[n_train:]))


def _factory(config: ModularTaskConfig) -> ModularTask:
    return ModularTask(config)


for _op in OPERATIONS:
    TASKS.register(f"grok.{_op}")((ModularTaskConfig, _factory))
