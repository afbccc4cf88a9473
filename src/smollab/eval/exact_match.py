"""Exact-match tasks (``arith.add``, ``arith.mul``, ...) in ``smollab eval``.

A study evaluates a generative exact-match task (a :class:`~smollab.tasks.Task`) with
:func:`~smollab.eval.evaluate_items`. :class:`ExactMatchEval` puts such a task into the
benchmark harness (:func:`~smollab.eval.harness.run_eval`: ``samples_<task>.jsonl`` written as
items finish and resumed, results with 95% intervals, ``summary.md``) without a second
evaluator: its items are computed by :func:`~smollab.eval.evaluate_items`, on the task as a
study builds it from a ``[[tasks]]`` table that gives only ``task`` (every default: strata,
items per stratum, data seed), in the prompt format a study condition uses by default
(``plain``, no few-shot examples), with the token budget a study gives that task's whole test
set (:func:`~smollab.eval.evaluator.generation_budget`). So each item's prompt, completion and
correctness are those of a study run of the same model and format.

What only chooses items is kept out of the samples key: ``limit`` (the first N items of each
stratum) and the strata selected with ``--task arith.mul:2x2``, so a later run with more items
or more strata reuses the items already computed.

:class:`TextEval` is ``smollab eval --task text:PATH``: every record of the user's JSON Lines
file, in file order (:class:`~smollab.tasks.text.TextFileTask`), read as a study's ``text``
task reads its ``test_path``, in the ``text`` format by default: so a study run whose
``test_path`` is that file (read with the same fields, the default ``target_delimiter``) gets
its own completions item by item, and so does any text run evaluated on its session's
``data/<task>_test.jsonl``, the exact test set the study wrote.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from smollab.errors import ConfigError
from smollab.io import append_jsonl
from smollab.tasks import (
    DEFAULT_FORMATS,
    PROMPT_FORMATS,
    TASKS,
    PromptFormat,
    Task,
    build_task,
    check_format_fits,
)
from smollab.tasks.base import Example
from smollab.tasks.bench import BenchConfig, BenchTask
from smollab.tasks.corpus import CorpusEvalConfig, CorpusFileTask
from smollab.tasks.requests import GenerateRequest
from smollab.tasks.text import JSONL_SUFFIXES, TextConfig, TextFileTask

#: the prompt format of a study condition that names none (``ConditionSpec.format``)
DEFAULT_FORMAT = "plain"


def exact_match_task_names() -> list[str]:
    """The registered exact-match task families (their tasks are :class:`Task` s, evaluated by
    :func:`~smollab.eval.evaluate_items`)."""
    return [n for n in TASKS.names() if is_exact_match(n)]


def is_exact_match(name: str) -> bool:
    if name not in TASKS:
        return False
    cfg_cls, _ = TASKS.get(name)
    if issubclass(cfg_cls, BenchConfig):
        return False
    try:
        task = build_task({"id": name, "task": name})
    except ConfigError:  # a family that needs more than its name
        return False
    return isinstance(task, Task)


class ExactMatchConfig(BenchConfig):
    """``smollab eval --task NAME[:STRATUM,...]`` for an exact-match task (not a ``[[tasks]]``
    table: a study lists the task's own config)."""

    strata: list[str] | None = Field(None, description="the strata evaluated (default: all)")
    limit: int | None = Field(
        None, ge=1, description="evaluate only the first N items of each stratum"
    )
    format: str | None = Field(None, description=f"prompt format (default {DEFAULT_FORMAT!r})")
    num_fewshot: int | None = Field(
        None, ge=0, description="solved examples before the question (formats that take them)"
    )
    task_options: dict[str, Any] | None = Field(
        None,
        description="the task's options as a [[tasks]] table gives them (n_test, data_seed, "
        "strata, ...; default: none, the table that gives only the task): a study run's own, "
        "so that its held-out items are evaluated",
    )


def resolve_format(
    name: str | None, num_fewshot: int | None, default: str = DEFAULT_FORMAT
) -> PromptFormat:
    """The prompt format for ``--format`` / ``--num-fewshot``: ``default`` (``plain``) by
    default, ``fewshot`` with N examples for ``--num-fewshot N`` (N > 0); a format that takes
    no examples refuses ``--num-fewshot N > 0``."""
    if name is None:
        name = "fewshot" if num_fewshot else default
    fmt = PROMPT_FORMATS.get(name, where="--format")
    if num_fewshot is None or num_fewshot == fmt.n_shots:
        return fmt
    if fmt.n_shots == 0:
        takes = [n for n in PROMPT_FORMATS.names() if PROMPT_FORMATS.get(n).n_shots]
        raise ConfigError(
            f"--num-fewshot {num_fewshot}: the prompt format {name!r} puts no solved examples "
            f"before the question. Use a format that does ({', '.join(takes)}: e.g. --format "
            f"fewshot --num-fewshot {num_fewshot}), or leave --num-fewshot out."
        )
    return dataclasses.replace(fmt, n_shots=num_fewshot)


class ExactMatchEval(BenchTask):
    """An exact-match task in the harness (see the module docstring)."""

    request_type = "generate"
    #: describe() fields that only choose which items run (left out of the samples key)
    selection_fields = ("limit", "strata")

    def __init__(self, config: ExactMatchConfig) -> None:
        super().__init__(config)
        # named after the task whatever the table's id, so that a table with every default
        # keys its samples as the bare task does
        options = {k: v for k, v in (config.task_options or {}).items() if k not in ("id", "task")}
        task = build_task({**options, "id": config.task, "task": config.task})
        assert isinstance(task, Task)
        #: what results.json says of where the items come from (None: the task's defaults)
        self.note: str | None = None
        self._use(task, resolve_format(config.format, config.num_fewshot))
        valid = task.strata
        chosen = list(valid) if config.strata is None else [s.strip() for s in config.strata]
        bad = [s for s in chosen if s not in valid]
        if bad or not chosen:
            example = valid[min(2, len(valid) - 1)]
            named = ", ".join(map(repr, bad)) if bad else "''"
            which = (
                "those of the run's own [[tasks]] table"
                if options
                else f"those a study evaluates when its [[tasks]] table gives only task = "
                f"{config.task!r}"
            )
            raise ConfigError(
                f"Task {config.task!r} has no stratum {named} (in "
                f"--task {config.task}:{','.join(config.strata or [])}). Its strata, {which}, "
                f"are: {', '.join(valid)}. Name one or more of them, comma-separated, e.g. "
                f"--task {config.task}:{example} or --task {config.task}:{','.join(valid[:2])}; "
                f"or give --task {config.task} for all."
            )
        self.selected = [s for s in valid if s in chosen]  # the task's order

    def _use(self, task: Task, fmt: PromptFormat) -> None:
        """Evaluate ``task``'s test set (every stratum) in ``fmt``, which must fit it."""
        self.task = task
        self.fmt = fmt
        check_format_fits(
            fmt, task.config, f"--format {fmt.name} (task {self.config.task})", "pass --format with"
        )
        self.selected = list(task.strata)
        self.metrics = ("exact_match", *task.item_metrics)
        #: the token budget of the last run (None for an API model: its default reply length)
        self.max_new_tokens: int | None = None
        self._examples: list[Example] | None = None

    @property
    def binary_metrics(self) -> tuple[str, ...]:
        return ("exact_match",)

    @property
    def strata(self) -> list[str]:
        return list(self.selected)

    def examples(self) -> list[Example]:
        """The evaluated items: the first ``limit`` test items of each selected stratum."""
        if self._examples is None:
            seen: dict[str, int] = {}
            out = []
            for ex in self.task.test_set():
                if ex.stratum not in self.selected:
                    continue
                seen[ex.stratum] = seen.get(ex.stratum, 0) + 1
                if self.config.limit is None or seen[ex.stratum] <= self.config.limit:
                    out.append(ex)
            self._examples = out
        return self._examples

    def docs(self) -> list[dict[str, Any]]:
        if self._docs is None:
            self._docs = [
                {"id": ex.id, "stratum": ex.stratum, "answer": ex.answer} for ex in self.examples()
            ]
        return self._docs

    def load_docs(self) -> list[dict[str, Any]]:
        return self.docs()

    def test_set(self) -> list[Example]:
        return self.examples()

    def requests(self, doc: dict[str, Any]) -> list[GenerateRequest]:
        """An API model's call for one item (what bounds its cost before any call is made)."""
        from smollab.eval.evaluator import api_requests

        ex = next(e for e in self.examples() if e.id == doc["id"])
        return api_requests(self.task, self.fmt, [ex])

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.config.task,
            "task_config": self.task.config.model_dump(mode="json"),
            "task_version": getattr(self.task, "version", 1),
            "strata": self.strata,
            "limit": self.config.limit,
            "limit_applies": "per stratum",
            "format": self.fmt.name,
            "format_version": self.fmt.version,
            "num_fewshot": self.fmt.n_shots,
        }

    def run(
        self,
        lm: Any,
        out_dir: Path,
        *,
        progress: Callable[[int], None] | None = None,
        chunk: int | None = None,
    ) -> tuple[list[dict[str, Any]], float]:
        """All records in item order, and the seconds spent computing new ones: the items not
        yet in ``samples_<task>.jsonl`` go through :func:`~smollab.eval.evaluate_items`
        ``chunk`` at a time (default two batches), each chunk appended as it finishes.
        ``lm`` is the harness's :class:`~smollab.eval.lm.HFLM` (its model, tokenizer and batch
        size are used) or an API model."""
        from smollab.eval.evaluator import evaluate_items, generation_budget
        from smollab.eval.provider_lm import ProviderLM
        from smollab.eval.runner import _chunk, _resume, samples_key

        samples = out_dir / f"samples_{self.name}.jsonl"
        done = _resume(samples, samples_key(lm.model_key, self))
        items = self.examples()
        todo = [ex for ex in items if ex.id not in done]
        if progress and len(todo) < len(items):
            progress(len(items) - len(todo))
        api = isinstance(lm, ProviderLM)
        model, tokenizer = (lm, None) if api else (lm.model, lm.tokenizer)
        # the budget a study gives this task: from its whole test set, whatever is selected
        self.max_new_tokens = (
            None if api else generation_budget(tokenizer, self.fmt, self.task.test_set())
        )
        chunk = chunk or _chunk(self, lm)
        t0 = time.perf_counter()
        for start in range(0, len(todo), chunk):
            records = evaluate_items(
                model,
                tokenizer,
                self.task,
                self.fmt,
                todo[start : start + chunk],
                batch_size=lm.batch_size,
                max_new_tokens=self.max_new_tokens,
                progress=progress,
            )
            for rec in records:
                rec["exact_match"] = float(rec["correct"])
                append_jsonl(samples, rec)
                done[rec["id"]] = rec
        return [done[ex.id] for ex in items], time.perf_counter() - t0


class TextEvalConfig(BenchConfig):
    """``smollab eval --task text:PATH``: every record of the user's JSON Lines file."""

    path: str = Field(
        min_length=1,
        description="the JSON Lines file (.jsonl, .jsonl.gz or .jsonl.bz2); a relative path is "
        "read from the directory smollab runs in",
    )
    limit: int | None = Field(
        None, ge=1, description="evaluate only the first N items of each stratum"
    )
    format: str | None = Field(None, description="prompt format (default 'text')")
    prompt_field: str | None = Field(None, min_length=1, description="default 'prompt'")
    answer_field: str | None = Field(None, min_length=1, description="default 'answer'")
    stratum_field: str | None = Field(None, min_length=1, description="default: none ('all')")


#: how a user sets each TextConfig field in ``smollab eval`` (path: the ``--task`` argument)
TEXT_FLAGS = {
    "prompt_field": "--prompt-field",
    "answer_field": "--answer-field",
    "stratum_field": "--stratum-field",
}


class TextEval(ExactMatchEval):
    """``smollab eval --task text:PATH`` (see the module docstring): a
    :class:`~smollab.tasks.text.TextFileTask` through the study's evaluator."""

    def __init__(self, config: TextEvalConfig) -> None:
        BenchTask.__init__(self, config)
        if not config.path.endswith(JSONL_SUFFIXES):
            raise ConfigError(
                f"--task text:{config.path}: {config.path} is not a JSON Lines file. Give a "
                ".jsonl file, one JSON record per line (optionally compressed as .jsonl.gz or "
                ".jsonl.bz2), e.g. --task text:qa.jsonl."
            )
        fields = {k: getattr(config, k) for k in TEXT_FLAGS if getattr(config, k) is not None}
        text = TextConfig(id=config.id, task="text", path=config.path, **fields)
        task = TextFileTask(text, {"path": f"--task text:{config.path}", **TEXT_FLAGS})
        self._use(task, resolve_format(config.format, None, DEFAULT_FORMATS["text"]))
        self.path = str(Path(config.path).resolve())
        self.data_files = (self.path,)
        self.data_sha256 = task.data_sha256["path"]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        # how the records were read; the file by where it is and what it holds (so in the
        # samples key: a changed file's samples are set aside, not read back)
        keep = ("path", *TEXT_FLAGS, "target_delimiter")
        d["task_config"] = {k: v for k, v in d["task_config"].items() if k in keep}
        d["task_config"]["path"] = self.path
        d["data_sha256"] = self.data_sha256
        return d


#: tasks that evaluate the user's file, named after a colon (``--task text:PATH``): their
#: ``smollab eval`` config class and task class
FILE_TASKS: dict[str, tuple[type[BenchConfig], Callable[[Any], BenchTask]]] = {
    "text": (TextEvalConfig, TextEval),
    # perplexity of every document of a raw-text corpus (smollab.tasks.corpus)
    "corpus": (CorpusEvalConfig, CorpusFileTask),
}


def parse_task_arg(arg: str) -> tuple[str, list[str] | None]:
    """``"arith.mul:2x2,1x2"`` -> ``("arith.mul", ["2x2", "1x2"])``; no suffix: None."""
    name, sep, rest = arg.partition(":")
    if not sep:
        return name, None
    return name, [s.strip() for s in rest.split(",") if s.strip()]
