"""Study kinds: the extension point between the study engine and what a run does.

``[study] kind`` names a :class:`RunKind` in ``RUN_KINDS``. The engine (spec validation, run
expansion, the worker, the session) calls the kind for everything that depends on what is being
studied; the rest (content hashes, run folders, executors, the store, resumption) is shared.

* ``"lm"`` (the default): language models evaluated on generative tasks, optionally fine-tuned
  (``[conditions.train]``); results in ``smollab.results/1`` and the foundation's report.
* ``"grok"``: small models trained from scratch on the grokking tasks, one run per condition x
  task x seed (``[conditions.config]``, see :class:`smollab.train.grokking.GrokTrainSpec`).
* ``"pretrain"``: language models pretrained on a raw-text corpus (task ``corpus``), evaluated
  by held-out perplexity (:mod:`smollab.study.pretrain_kind`).

A new kind subclasses :class:`RunKind` and registers an instance:
``RUN_KINDS.register(name)(MyKind())``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smollab.registry import Registry

if TYPE_CHECKING:
    from smollab.study.runspec import RunSpec
    from smollab.study.spec import StudySpec

Progress = Callable[[dict[str, Any]], None]


class RunKind(ABC):
    """What a study kind defines. Every method is called by the engine, never by users."""

    name: str

    @abstractmethod
    def check_spec(self, spec: StudySpec, source: str) -> None:
        """Validate the parts of a parsed spec that only this kind understands (ConfigError)."""

    @abstractmethod
    def expand(self, spec: StudySpec) -> list[RunSpec]:
        """All runs of the study (their order is the execution order)."""

    @abstractmethod
    def execute(self, run_dir: Path, spec: RunSpec, emit: Progress) -> dict[str, Any]:
        """Run (or finish) one run in ``run_dir``; write and return its ``record.json``."""

    def preflight(self, spec: StudySpec, session_dir: Path) -> None:
        """Check what the spec's checks cannot without loading or calling anything (model
        sources in the hub cache, API keys, LoRA targets), before the session folder is
        touched: a failure leaves an existing session as it was (default: nothing to check)."""
        return None

    @abstractmethod
    def prepare_session(self, spec: StudySpec, session_dir: Path) -> list[str]:
        """Check sources and write ``data/``; returns the task names for the plan."""

    def api_bounds(self, runs: list[tuple[Path, RunSpec]]) -> list[Any]:
        """For the runs still to do (run folder, which need not exist yet, and spec), the worst
        case of their API-model calls, one :class:`~smollab.eval.provider_lm.ApiBound` per API
        model (default: none)."""
        return []

    def link_data(self, session_dir: Path, spec: StudySpec, runs: list[RunSpec]) -> None:
        """Expose each run's exact data in ``data/`` after the runs (default: nothing)."""
        return None

    @abstractmethod
    def aggregate(
        self,
        spec: StudySpec,
        records: list[dict[str, Any]],
        run_dirs: dict[str, Path],
        session: str,
    ) -> dict[str, Any]:
        """The session's ``results/results.json`` from the finished runs."""

    def result_files(self, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Extra files for ``results/`` besides ``results.json`` (name -> content)."""
        return {}

    @abstractmethod
    def critique(self, results: dict[str, Any]) -> str:
        """``critiques.txt``: the automated reviewer's checks."""

    @abstractmethod
    def report(self, session_dir: Path, *, pdf: bool) -> tuple[Path | None, Path | None]:
        """Figures, ``report.md``/``.html`` and the paper; returns (paper.tex, paper.pdf)."""


#: ``[study] kind`` -> RunKind instance
RUN_KINDS: Registry[RunKind] = Registry("study kind")


def get_kind(name: str, where: str = "") -> RunKind:
    _register_builtin()
    return RUN_KINDS.get(name, where=where)


_registered = False


def _register_builtin() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    from smollab.study import grok_kind, lm_kind, pretrain_kind  # noqa: F401  (register on import)
