"""``arith_probe``: arithmetic in the lm-evaluation-harness style (GPT-3's arithmetic tasks).

Context ``"Question: What is 98 plus 45?\\nAnswer:"``, continuation ``" 143"``; an item is
correct (``acc``) when every token of the continuation is the model's greedy choice. No
generation and no parsing: the probe asks whether the model would produce the answer, which is
what lm-eval's ``arithmetic_2da`` etc. report, beside the exact-match ``arith.*`` tasks.

Strata are ``"{digits}d{op}"`` as in lm-eval (``2da`` = two-digit addition, ``3ds``, ``2dm``):
operands drawn uniformly from ``[0, 10**digits)`` with a seeded generator (GPT-3's recipe; the
items themselves are ours, not EleutherAI/arithmetic's files).

Each stratum stands for one lm-eval task (``arithmetic_2da``, ...), and lm-eval's ``--limit N``
takes the first N documents of each task; so does ``limit`` here: the first N items of every
stratum (the same items as ``n_per_stratum = N``), not the first N items overall, which would
be the first stratum's alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from smollab.tasks.base import TASKS
from smollab.tasks.bench import BenchConfig, BenchTask
from smollab.tasks.requests import Loglikelihood, LoglikelihoodRequest

OPS = {"a": ("plus", lambda a, b: a + b), "s": ("minus", lambda a, b: a - b),
       "m": ("times", lambda a, b: a * b)}  # fmt: skip


class ArithProbeConfig(BenchConfig):
    """``[[tasks]]`` entry for ``arith_probe``."""

    strata: list[str] = Field(
        default_factory=lambda: ["2da", "2ds", "2dm", "3da", "3ds"],
        min_length=1,
        description="'{digits}d{op}' with op a (plus), s (minus), m (times)",
    )
    n_per_stratum: int = Field(200, ge=1)
    seed: int = 1234
    limit: int | None = Field(
        None,
        ge=1,
        description="evaluate only the first N items of each stratum (lm-eval's --limit, which "
        "applies per arithmetic_* task), i.e. N x len(strata) items; not the first N overall",
    )

    @field_validator("strata")
    @classmethod
    def _valid_strata(cls, v: list[str]) -> list[str]:
        for s in v:
            _parse(s)
        return v


class ArithProbeTask(BenchTask):
    """Greedy-continuation accuracy on ``What is A op B?`` (see module docstring)."""

    request_type = "loglikelihood"
    metrics = ("acc",)
    config: ArithProbeConfig
    #: 2: ``limit`` applies per stratum (version 1 took the first N items overall, i.e. only
    #: the first strata); the items of a given id are unchanged
    version = 2

    def docs(self) -> list[dict[str, Any]]:
        """The evaluated items: the first ``limit`` items of each stratum (see module
        docstring), in stratum order."""
        if self._docs is None:
            n = self.config.n_per_stratum
            self._docs = self._items(min(self.config.limit or n, n))
        return self._docs

    def load_docs(self) -> list[dict[str, Any]]:
        return self._items(self.config.n_per_stratum)

    def _items(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` items of each stratum (a stratum's items do not depend on ``n``)."""
        docs = []
        for s in self.config.strata:
            digits, op = _parse(s)
            word, fn = OPS[op]
            rng = random.Random(f"{self.config.seed}:{s}")
            for j in range(n):
                a, b = rng.randrange(10**digits), rng.randrange(10**digits)
                docs.append(
                    {
                        "id": f"{s}-{j}",
                        "stratum": s,
                        "context": f"Question: What is {a} {word} {b}?\nAnswer:",
                        "answer": str(fn(a, b)),
                    }
                )
        return docs

    def requests(self, doc: dict[str, Any]) -> list[LoglikelihoodRequest]:
        return [LoglikelihoodRequest(doc["context"], " " + doc["answer"])]

    def score(self, doc: dict[str, Any], responses: Sequence[Loglikelihood]) -> dict[str, Any]:
        r = responses[0]
        return {
            "id": doc["id"],
            "stratum": doc["stratum"],
            "answer": doc["answer"],
            "logprob": r.logprob,
            "acc": float(r.is_greedy),
        }


def _parse(stratum: str) -> tuple[int, str]:
    from smollab.errors import ConfigError

    head, sep, op = stratum.partition("d")
    if not (sep and head.isdigit() and 1 <= int(head) <= 9 and op in OPS):
        raise ConfigError(
            f"arith_probe stratum {stratum!r} is not '{{digits}}d{{op}}' with digits 1-9 and op "
            "one of a (plus), s (minus), m (times); e.g. '2da', '3ds', '2dm'."
        )
    return int(head), op


TASKS.register("arith_probe")((ArithProbeConfig, ArithProbeTask))
