"""``smollab eval``'s engine: evaluate one model on benchmark tasks into a results folder.

    out_dir/
      results.json            per task: config, n, metrics with 95% intervals, strata, timings
      samples_<task>.jsonl    one record per item, appended as items finish (resumable)
      summary.md              the summary table

Running the same evaluation again into the same folder reuses finished items (the samples files)
and, through the request cache, finished requests. One folder holds one model: results.json and
summary.md cover every task evaluated there (a run keeps the entries of the tasks it does not
evaluate, and replaces those it does), and a run of another model into a folder whose
results.json holds results is refused before anything is computed. The top-level fields
(environment, device, workers) describe the latest run.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError
from smollab.io import atomic_write_json, atomic_write_text
from smollab.tasks import TASKS, BenchTask, build_task, validate_task_config


def bench_task_names() -> list[str]:
    """The registered benchmark tasks (scored through the LM interface)."""
    return [n for n in TASKS.names() if _is_bench(n)]


def eval_task_names() -> list[str]:
    """The registered tasks that ``smollab eval`` runs: the benchmark tasks, the exact-match
    task families and the tasks of the user's own file (:mod:`smollab.eval.exact_match`)."""
    from smollab.eval.exact_match import FILE_TASKS, is_exact_match

    return [n for n in TASKS.names() if _is_bench(n) or is_exact_match(n) or n in FILE_TASKS]


def _config_class(name: str) -> Any:
    """The config class of ``--task name`` (an exact-match family's: ExactMatchConfig; the
    text task's: TextEvalConfig)."""
    from smollab.eval.exact_match import FILE_TASKS, ExactMatchConfig, is_exact_match

    if name in FILE_TASKS:
        return FILE_TASKS[name][0]
    return ExactMatchConfig if is_exact_match(name) else TASKS.get(name)[0]


def _is_bench(name: str) -> bool:
    from smollab.tasks.bench import BenchConfig

    cfg, _ = TASKS.get(name)
    return issubclass(cfg, BenchConfig)


def make_task(name: str, **fields: Any) -> BenchTask:
    """Build a task for ``smollab eval`` by registry name; ``fields`` set config values (None =
    default). A benchmark task is built as registered; an exact-match task family
    (``arith.mul``) as an :class:`~smollab.eval.exact_match.ExactMatchEval`, and its name may
    end in ``:STRATUM[,STRATUM...]`` to evaluate only those strata; ``text:PATH`` as a
    :class:`~smollab.eval.exact_match.TextEval` of the JSON Lines file PATH.

    Unknown names, and tasks ``smollab eval`` does not run, raise ConfigError listing the
    valid names; so do strata the task does not have (listing its strata).
    """
    from smollab.eval.exact_match import (
        FILE_TASKS,
        ExactMatchConfig,
        ExactMatchEval,
        is_exact_match,
        parse_task_arg,
    )

    arg = name
    name, strata = parse_task_arg(arg)
    valid = ", ".join(eval_task_names())
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}. Valid tasks for `smollab eval`: {valid}.")
    if name in FILE_TASKS:
        path = arg.partition(":")[2].strip()
        if not path and name == "corpus":
            raise ConfigError(
                f"--task {arg} names no file: the corpus task evaluates the perplexity of your "
                "own text, given after a colon: --task corpus:PATH (a .txt file, documents "
                "separated by blank lines, or a .jsonl file with a 'text' field per record)."
            )
        if not path:
            raise ConfigError(
                f"--task {arg} names no file: the {name} task evaluates your own JSON Lines "
                f"file, given after a colon: --task {name}:PATH (e.g. --task {name}:qa.jsonl, "
                'one record such as {"prompt": "Capital of France?", "answer": "Paris"} per '
                "line)."
            )
        file_cfg, file_task = FILE_TASKS[name]
        given = _with_fields(name, file_cfg, {"id": name, "task": name, "path": path}, fields)
        return file_task(validate_task_config(given, where=f"--task {arg}", config_cls=file_cfg))
    exact = is_exact_match(name)
    if not _is_bench(name) and not exact:
        raise ConfigError(
            f"Task {name!r} is not evaluated by `smollab eval` (it is trained and evaluated "
            f"by its study kind: `smollab study SPEC`). Valid tasks for `smollab eval`: {valid}."
        )
    if strata is not None and not exact:
        raise ConfigError(
            f"--task {arg}: only the exact-match tasks "
            f"({', '.join(n for n in eval_task_names() if is_exact_match(n))}) take a "
            f":STRATUM suffix; {name!r} is a benchmark task. Give --task {name}."
        )
    cfg_cls = _config_class(name)
    raw: dict[str, Any] = {"id": name, "task": name}
    if strata is not None:
        raw["strata"] = strata
    raw = _with_fields(name, cfg_cls, raw, fields)
    config = validate_task_config(raw, where=f"task {name}", config_cls=cfg_cls)
    if isinstance(config, ExactMatchConfig):
        return ExactMatchEval(config)
    task = build_task(config)
    assert isinstance(task, BenchTask)
    return task


def _with_fields(
    name: str, cfg_cls: Any, raw: dict[str, Any], fields: dict[str, Any]
) -> dict[str, Any]:
    """``raw`` with the ``fields`` that are set; one the config has not got is an error."""
    for k, v in fields.items():
        if v is None:
            continue
        if k not in cfg_cls.model_fields:
            raise ConfigError(
                f"Task {name!r} has no option {k.replace('_', '-')!r} (its options: "
                f"{', '.join(f for f in cfg_cls.model_fields if f not in ('id', 'task'))})."
            )
        raw[k] = os.fspath(v) if isinstance(v, os.PathLike) else v  # data_dir=Path(...)
    return raw


def make_tasks(
    names: Sequence[str],
    options: dict[str, Any],
    flags: dict[str, str] | None = None,
    *,
    run: Any = None,
    run_dir: Path | None = None,
) -> list[BenchTask]:
    """Build several tasks from shared options: each task takes the options its config has
    (``--samples`` goes to the code tasks only); an option set but taken by none of the tasks
    is an error naming its flag (from ``flags``) and the tasks that take it.

    ``run``: the :class:`~smollab.study.runspec.RunSpec` of the study run being evaluated (in
    ``run_dir``), if any. An exact-match task of the run's own (``arith.add`` for a run with an
    ``arith.add`` table) is then built from the run's [[tasks]] table (its n_test, data_seed,
    strata, ...), so that its items are the run's held-out items, whatever split the run chose
    (a ``:STRATUM`` suffix and ``limit`` still narrow them); a task whose prompt formats are
    those of the run's format defaults to that format. What was taken from the run is said in
    each task's ``note`` (and a file task whose file the run trained on is warned of there)."""
    from smollab.eval.exact_match import FILE_TASKS, parse_task_arg

    base = {n: parse_task_arg(n)[0] for n in names}
    extra = {n: _run_fields(base[n], run, options) for n in names} if run else {}
    for n in names:  # unknown names and strata first, with the list of valid ones
        # a file task's file is read with its field options (--prompt-field, ...)
        own = set(FILE_TASKS[base[n]][0].model_fields) if base[n] in FILE_TASKS else set()
        make_task(n, **{**{k: v for k, v in options.items() if k in own}, **extra.get(n, {})})
    twice = [b for b in dict.fromkeys(base.values()) if list(base.values()).count(b) > 1]
    if twice:
        fix = (
            "Evaluate one file per call, each into its own --out."
            if twice[0] in FILE_TASKS
            else f"Give it once, its strata comma-separated (e.g. --task {twice[0]}:1x1,2x2)."
        )
        raise ConfigError(
            f"Task {twice[0]!r} is given more than once "
            f"({', '.join(n for n in names if base[n] == twice[0])}); its results and samples "
            f"are kept under its name. {fix}"
        )
    fields = {n: _config_class(base[n]).model_fields for n in names}
    tasks = []
    for n in names:
        given = {k: v for k, v in options.items() if k in fields[n]}
        task = make_task(n, **{**given, **extra.get(n, {})})
        if run is not None:
            said = [getattr(task, "note", None), _run_note(task, extra.get(n, {}), run, run_dir)]
            task.note = "; ".join(x for x in said if x) or None  # type: ignore[attr-defined]
        tasks.append(task)
    for k, v in options.items():
        if v is not None and not any(k in f for f in fields.values()):
            takers = [t for t in eval_task_names() if k in _config_class(t).model_fields]
            flag = (flags or {}).get(k, k)
            raise ConfigError(
                f"Option {flag} applies to the tasks {', '.join(takers)}; none of the given "
                f"tasks ({', '.join(names)}) takes it."
            )
    return tasks


def _run_fields(name: str, run: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The config fields the task ``name`` takes from the study run ``run`` (see
    :func:`make_tasks`): ``task_options``, the run's table of the same task, and ``format``, the
    run's, where neither --format nor --num-fewshot is given and it fits the task."""
    from smollab.eval.exact_match import FILE_TASKS, is_exact_match
    from smollab.tasks import PROMPT_FORMATS

    if name not in TASKS or not (is_exact_match(name) or name in FILE_TASKS):
        return {}
    if name == "corpus":  # a corpus file has no prompt format and no run table to take
        return {}
    out: dict[str, Any] = {}
    tables = [t for t in run.tasks if t.get("task") == name]
    if tables and name not in FILE_TASKS:
        out["task_options"] = dict(tables[0])
    family = "text" if name in FILE_TASKS else TASKS.get(name)[0].format_family
    fmt = PROMPT_FORMATS.get(run.format) if run.format in PROMPT_FORMATS else None
    if (
        options.get("format") is None
        and not options.get("num_fewshot")
        and fmt is not None
        and fmt.family == family
    ):
        out["format"] = run.format
    return out


def _run_note(task: BenchTask, taken: dict[str, Any], run: Any, run_dir: Path | None) -> str | None:
    """What ``task`` took from the study run ``run`` (or why its items may overlap the run's
    training items), one sentence for the output and results.json; None when nothing."""
    from smollab.eval.exact_match import TextEval

    where = f"run {run_dir}" if run_dir is not None else f"run {run.hash}"
    said = []
    if "task_options" in taken:
        table = {k: v for k, v in taken["task_options"].items() if k not in ("id", "task")}
        opts = ", ".join(f"{k}={v}" for k, v in table.items()) or "every default"
        said.append(
            f"its items are the held-out items of {where}: the task is built from the run's own "
            f"[[tasks]] table '{taken['task_options'].get('id')}' ({opts})"
        )
    if "format" in taken:
        said.append(f"format {taken['format']}, the run's (--format sets another)")
    if isinstance(task, TextEval):
        for t in run.tasks:
            path = t.get("path")
            if t.get("task") != "text" or not path or Path(path).resolve() != Path(task.path):
                continue
            held = "" if t.get("test_path") else " except the few it held out"
            test = _session_test_file(run_dir, t)
            fix = (
                f"evaluate its held-out items with --task text:{test}"
                if test is not None
                else "evaluate its test file (test_path) or its session's data/TASK_test.jsonl"
            )
            said.append(
                f"WARNING: {task.path} is the file {where} trained on (task "
                f"'{t.get('id')}', field path): it trained on every record of it{held}, so "
                f"these scores are mostly training accuracy, not held-out accuracy; {fix}"
            )
    from smollab.tasks.corpus import CorpusFileTask

    if isinstance(task, CorpusFileTask):
        said += _corpus_overlap(task, run, where, run_dir)
    return "; ".join(said) if said else None


def _session_test_file(run_dir: Path | None, table: dict[str, Any]) -> Path | None:
    """The held-out items a study wrote for the run's task ``table``
    (``SESSION/data/<id>_test.jsonl`` beside ``SESSION/runs/<hash>``), if that file exists."""
    if run_dir is None:
        return None
    test = run_dir.parent.parent / "data" / f"{table.get('id')}_test.jsonl"
    return test if test.is_file() else None


def _corpus_overlap(task: Any, run: Any, where: str, run_dir: Path | None) -> list[str]:
    """A warning when documents of the corpus file being evaluated are documents the run
    trained on (the same text, surrounding whitespace aside): its training documents are those
    of its own corpus task, rebuilt from the run's [[tasks]] table (its path, test_path,
    test_fraction and data_seed give the same split the run trained on)."""
    from smollab.errors import SmollabError
    from smollab.tasks import build_task, validate_task_config
    from smollab.tasks.corpus import CorpusTask

    if run.train is None:  # a baseline run trained on nothing
        return []
    out: list[str] = []
    for t in run.tasks:
        if t.get("task") != "corpus":
            continue
        try:
            own = build_task(validate_task_config(dict(t)))
        except SmollabError:  # its files moved or changed: nothing to compare with
            continue
        if not isinstance(own, CorpusTask):
            continue
        trained = {d["text"].strip() for d in own.train_documents()}
        docs = task.docs()
        n = sum(d["text"].strip() in trained for d in docs)
        if not n:
            continue
        test = _session_test_file(run_dir, t)
        fix = (
            f"evaluate its held-out documents with --task corpus:{test}"
            if test is not None
            else "evaluate its held-out documents (its session's data/TASK_test.jsonl)"
        )
        own_file = Path(str(t.get("path"))).resolve() == Path(task.config.path).resolve()
        what = f", the corpus of task '{t.get('id')}' (field path)," if own_file else ""
        out.append(
            f"WARNING: {n} of the {len(docs)} documents of {task.config.path}{what} were "
            f"trained on by {where} (the same text, surrounding whitespace aside), so these "
            "perplexities are partly or mostly of text it trained on, not held-out "
            f"perplexities; {fix}"
        )
    return out


def model_key(loaded: Any) -> str:
    """A fingerprint of the loaded model for the request cache and the samples files: source,
    where it was read from, :func:`~smollab.eval.lm.weights_fingerprint` (a hash of every
    parameter, so a model changed in memory, by an ablation or an adapter, gets a new key) and
    :func:`~smollab.eval.lm.tokenizer_fingerprint` (a tokenizer file edited beside unchanged
    weights encodes the requests differently, so it gets a new key too)."""
    import hashlib

    from smollab.eval.lm import tokenizer_fingerprint, weights_fingerprint

    h = hashlib.sha256()
    h.update(f"{loaded.source}|{loaded.info.get('location')}|{loaded.info.get('cache')}".encode())
    h.update(weights_fingerprint(loaded.model).encode())
    h.update(tokenizer_fingerprint(loaded.tokenizer).encode())
    return h.hexdigest()[:24]


def _api_preflight(
    lm: Any,
    tasks: Sequence[BenchTask],
    out_dir: Path,
    budget_usd: float | None,
    results: dict[str, Any],
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """The worst case of an API model's calls not yet made, recorded, reported and checked
    against the budget before the first call."""
    from smollab.eval.provider_lm import api_bound, check_api_budget
    from smollab.eval.runner import todo_requests

    reqs = [r for t in tasks for r in todo_requests(lm, t, out_dir)]
    bound = api_bound(lm, reqs)
    results["api_bound"] = {
        "calls": bound.calls,
        "uncached_calls": bound.uncached,
        "worst_case_usd": None if bound.worst_usd is None else round(bound.worst_usd, 6),
        "budget_usd": budget_usd,
    }
    emit({"event": "api_bound", "text": bound.describe()})
    check_api_budget([bound], budget_usd, "this evaluation")


def earlier_results(path: Path, model: str, info: dict[str, Any], key: str) -> dict[str, Any]:
    """The task entries of the results.json at ``path`` (none when there is none), for a run
    of the model ``model`` (source) with weights key ``key``. A ConfigError, before anything is
    computed, when it holds another model's results (its ``model_key``; for a file written
    before keys were recorded, its source and ``model_info``) or cannot be read: one folder's
    results never mix two models, and nothing in it is overwritten."""
    from smollab.errors import CorruptFile
    from smollab.io import read_json

    if not path.exists():
        return {}
    keep = (
        "Nothing was computed and nothing in that folder was changed: each task's items stay "
        "in its samples_<task>.jsonl, and running a task again rebuilds its results from them "
        "without evaluating anything twice."
    )
    try:
        old = read_json(path)
    except CorruptFile as e:
        raise ConfigError(
            f"{e.message} This evaluation would add its tasks to it. Restore it, or move it "
            f"away and run again. {keep}"
        ) from None
    tasks = old.get("tasks")
    if not isinstance(old.get("model"), str) or not isinstance(tasks, dict):
        raise ConfigError(
            f"{path} is not the results file of `smollab eval` (no 'model' or no 'tasks' "
            "object). Write this evaluation to another folder (--out), or move that file "
            f"away. {keep}"
        )
    ident = ("kind", "location", "cache", "n_params", "api", "model", "base_url")
    raw_info = old.get("model_info")
    old_info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    same = (
        old["model_key"] == key
        if "model_key" in old
        else old["model"] == model and all(old_info.get(k) == info.get(k) for k in ident)
    )
    if not same and tasks:
        what = f"'{old['model']}'" + (
            f" (weights key {old['model_key']})" if "model_key" in old else ""
        )
        raise ConfigError(
            f"{path} holds the results of {what} on {', '.join(tasks)}, and this run evaluates "
            f"'{model}' (weights key {key}): one results folder holds one model, so that "
            "results.json and summary.md never mix two. Write this model's results to another "
            f"folder (--out), or move results.json and summary.md away first. {keep}"
        )
    return dict(tasks) if same else {}


def run_eval(
    loaded: Any,
    tasks: Sequence[BenchTask],
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 32,
    use_cache: bool = True,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    procs: int = 1,
    load_args: dict[str, Any] | None = None,
    threads: int | None = None,
    budget_usd: float | None = None,
) -> dict[str, Any]:
    """Evaluate ``loaded`` (a :class:`~smollab.models.LoadedModel`, or an API model as a
    :class:`~smollab.eval.provider_lm.ProviderLM`) on ``tasks``; write and return the results
    dict (see module docstring for the folder layout).

    ``procs > 1`` computes the items in that many worker processes
    (:mod:`smollab.eval.parallel`), each loading the model from ``load_args`` (the arguments of
    :func:`~smollab.models.load_model`) with ``threads`` intra-op threads (default: this
    process's threads shared among them); ``loaded`` is then used for the bookkeeping only.

    For an API model, the worst case of the calls not yet cached is computed before any call
    (``results["api_bound"]``, an ``api_bound`` event) and checked against ``budget_usd``
    (:func:`~smollab.eval.provider_lm.check_api_budget`)."""
    import contextlib

    import torch

    from smollab.eval.lm import HFLM, RequestCache
    from smollab.eval.parallel import ProcPool, check_procs, default_threads, merge_parts
    from smollab.eval.provider_lm import ProviderLM, check_budget_target, check_tasks
    from smollab.eval.runner import check_continuations, run_task, samples_key, summarize
    from smollab.paths import smollab_home
    from smollab.study.env import environment

    if not hasattr(loaded, "source"):
        raise ConfigError(
            "run_eval takes what load_model returns (a LoadedModel: model, tokenizer and "
            f"source) or an API model, not a {type(loaded).__name__}; pass "
            "load_model(...) itself."
        )
    if isinstance(tasks, BenchTask):
        tasks = [tasks]
    out_dir = Path(out_dir)
    check_budget_target(loaded.source, budget_usd)
    cache = RequestCache(smollab_home() / "eval_cache.sqlite") if use_cache else None
    lm: Any
    if isinstance(loaded, ProviderLM):
        check_tasks(loaded.source, tasks)
        lm = loaded
        lm.cache = cache
    else:
        lm = HFLM(
            loaded.model,
            loaded.tokenizer,
            batch_size=batch_size,
            cache=cache,
            model_key=model_key(loaded),
        )
    emit: Callable[[dict[str, Any]], None] = on_event or (lambda e: None)
    results: dict[str, Any] = {
        "model": loaded.source,
        "model_info": loaded.info,
        # the weights' fingerprint (the samples' and request cache's key): a later run into
        # this folder adds to these results only with the same weights
        "model_key": lm.model_key,
        "context_window": lm.max_length,
        # where the model ran (the environment only says whether CUDA is present)
        "device": str(lm.device) if isinstance(lm, HFLM) else "api",
        "environment": environment(),
        "tasks": {},
    }
    check_procs(procs, api=isinstance(lm, ProviderLM), device=str(results["device"]))
    check_exact_match_procs(tasks, procs)
    path = out_dir / "results.json"
    try:
        kept = earlier_results(path, loaded.source, loaded.info, lm.model_key)
        for task in tasks:  # an item that cannot be scored stops the run before any is computed
            check_continuations(lm, task, task.docs())
        if isinstance(lm, ProviderLM):
            _api_preflight(lm, tasks, out_dir, budget_usd, results, emit)
    except BaseException:
        if cache is not None:
            cache.close()
        raise
    # made only now: a run refused above (a budget, a prompt too long) leaves no empty folder
    out_dir.mkdir(parents=True, exist_ok=True)
    pool: Any = contextlib.nullcontext()
    if procs > 1:
        if load_args is None:
            raise ValueError("run_eval(procs > 1) needs load_args to load the model in workers")
        pool = ProcPool(
            load_args,
            procs,
            threads=threads or default_threads(procs),
            batch_size=batch_size,
            use_cache=use_cache,
        )
    results["tasks"] = kept  # a task evaluated now replaces its entry in place
    earlier = [name for name in kept if name not in {t.name for t in tasks}]
    if earlier:
        emit({"event": "kept", "tasks": earlier})
    try:
        with pool:
            for task in tasks:
                docs = task.docs()
                api_before = lm.info if isinstance(lm, ProviderLM) else {}
                n_samples = getattr(task.config, "n_samples", 1)
                emit({"event": "task", "task": task.name, "total": len(docs), "samples": n_samples})
                t0 = time.perf_counter()

                def progress(n: int, t: str = task.name) -> None:
                    emit({"event": "items", "task": t, "n": n})

                samples = out_dir / f"samples_{task.name}.jsonl"
                key = samples_key(lm.model_key, task)

                # also merges the parts an interrupted `--procs` run left
                def set_aside(path: Path, n: int, t: str = task.name) -> None:
                    emit({"event": "set_aside", "task": t, "path": str(path), "n": n})

                done = merge_parts(samples, key, set_aside)
                todo = [d["id"] for d in docs if d["id"] not in done]
                n_new = len(todo)
                par = None
                if procs > 1 and todo:
                    if len(todo) < len(docs):
                        progress(len(docs) - len(todo))
                    par = pool.compute(task, todo, samples, key, progress)
                records, compute_s = run_task(lm, task, out_dir, progress=None if par else progress)
                if par:  # every item was computed by the workers
                    compute_s, busy = par["compute_seconds"], par["seconds"]
                else:
                    busy = compute_s
                summary = summarize(task, records)
                wall = time.perf_counter() - t0
                note = getattr(task, "note", None)
                results["tasks"][task.name] = {
                    "task": task.config.task,
                    # where the items or the format came from (a study run's own table)
                    **({"note": note} if note else {}),
                    **_config_used(task, docs),
                    # what was read; config's data_dir is only what was passed (the env
                    # variable's folder is not part of the samples key)
                    "data_files": list(task.data_files),
                    **summary,
                    "seconds": round(wall, 3),
                    # summed over the worker processes with --procs
                    "compute_seconds": round(compute_s, 3),
                    "procs": procs,
                    # items computed in this call (not resumed) per second of computing
                    # (with --procs: of the workers' wall time, their start excluded)
                    "items_per_second": round(n_new / busy, 3) if n_new and busy else None,
                    # items found in the samples file (an earlier or interrupted run)
                    "n_reused": len(docs) - n_new,
                    "samples": f"samples_{task.name}.jsonl",
                }
                if isinstance(lm, ProviderLM):
                    results["model_info"] = lm.info  # calls, tokens and cost of this run
                    # this task's share, which stays with its entry when a later run into
                    # this folder evaluates other tasks
                    results["tasks"][task.name]["api_usage"] = _usage_since(api_before, lm.info)
                if procs > 1:  # worker start and model loading: in no task's seconds
                    results["workers"] = {
                        "procs": procs,
                        "threads_per_proc": pool.threads,
                        "start_seconds": pool.start_seconds and round(pool.start_seconds, 3),
                    }
                elif isinstance(lm, HFLM):
                    results["workers"] = {
                        "procs": 1,
                        "threads_per_proc": torch.get_num_threads(),
                        "start_seconds": None,
                    }
                atomic_write_json(path, results)
    finally:
        if cache is not None:
            cache.close()
        # also after a failure: the tasks that finished keep their summary (none when no
        # task has finished here: an empty table would say nothing)
        if results["tasks"]:
            atomic_write_text(out_dir / "summary.md", summary_markdown(results))
    return results


def check_exact_match_procs(tasks: Sequence[BenchTask], procs: int) -> None:
    """``--procs N > 1`` splits benchmark tasks only; refuse it for exact-match tasks."""
    from smollab.eval.exact_match import ExactMatchEval

    exact = [t.name for t in tasks if isinstance(t, ExactMatchEval)]
    if procs > 1 and exact:
        raise ConfigError(
            f"--procs {procs}: the exact-match task(s) {', '.join(exact)} are evaluated in one "
            "process (through the study's evaluator). Evaluate them without --procs; the "
            "benchmark tasks can run with --procs in another call into the same --out, whose "
            "results.json and summary.md then hold both."
        )


def _config_used(task: BenchTask, docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``config``: the task's resolved configuration, its sampling fields (``temperature``,
    ``top_p``) as the requests used them (a code task's temperature left out is 0 for one
    sample, else 0.8; top_p is 1 when decoding is greedy); and for a generation task
    ``sampling``: temperature, top_p, the seeds of an item's samples and the token budget
    (for an exact-match task: greedy, and the budget a study gives it; None for an API model,
    whose reply length is the API default of :mod:`smollab.eval.evaluator`)."""
    from smollab.eval.exact_match import ExactMatchEval
    from smollab.tasks.requests import GenerateRequest

    if isinstance(task, ExactMatchEval):
        greedy = {"temperature": 0.0, "greedy": True, "max_tokens": task.max_new_tokens}
        return {"config": task.describe(), "sampling": greedy}
    config = task.describe()
    reqs = [r for r in task.requests(docs[0]) if isinstance(r, GenerateRequest)] if docs else []
    if not reqs:
        return {"config": config}
    sampling = {
        "temperature": reqs[0].temperature,
        "top_p": reqs[0].top_p,
        "greedy": reqs[0].temperature == 0,
        "seeds": [r.seed for r in reqs],
        "max_tokens": reqs[0].max_tokens,
    }
    for k in ("temperature", "top_p"):
        if k in config:
            config[k] = sampling[k]
    return {"config": config, "sampling": sampling}


def _usage_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """An API model's calls, tokens and cost between two of its ``info`` snapshots (None where
    a count or the cost is unknown)."""
    out: dict[str, Any] = {}
    for k in ("calls", "input_tokens", "output_tokens", "cost_usd"):
        a, b = before.get(k), after.get(k)
        out[k] = None if a is None or b is None else round(b - a, 6)
    return out


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(task, metric, 'estimate [low, high]', n) for every task metric, pass@k and stratum; a
    metric that is also a pass@k (the code tasks' pass@1) is one row, with the task's pass@k
    interval; a task with one stratum has its rows once, labelled 'task / stratum'."""
    rows = []
    for name, t in results["tasks"].items():
        strata = t.get("strata", {})
        # one stratum (arith.mul:2x2): its rows are the task's, shown once under its name
        label = f"{name} / {next(iter(strata))}" if len(strata) == 1 else name
        for m, iv in {**t["metrics"], **t.get("pass_at_k", {})}.items():
            rows.append((label, m, _fmt(iv), iv["n"]))
        for s, ms in strata.items() if len(strata) > 1 else ():
            for m, iv in ms.items():
                rows.append((f"{name} / {s}", m, _fmt(iv), iv["n"]))
    return rows


def _fmt(iv: dict[str, Any]) -> str:
    if iv.get("scale") == "number":  # a perplexity or bits per byte, not a rate
        from smollab.report.fmt import sig  # as the reports print them (never 8.058e+08)

        return f"{sig(iv['estimate'])} [{sig(iv['low'])}, {sig(iv['high'])}]"
    return f"{iv['estimate']:.1%} [{iv['low']:.1%}, {iv['high']:.1%}]"


def summary_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# {results['model']}",
        "",
        "| task | metric | estimate [95% interval] | n |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {v} | {n} |" for t, m, v, n in summary_rows(results)]
    cut = [(name, t) for name, t in results["tasks"].items() if t.get("truncated")]
    if cut:
        window = results.get("context_window")
        lines.append("")
        lines += [
            f"{name}: {t['truncated']} of {t['n']} items had their prompt or context cut from "
            f"the left to fit the model's {window}-token context window (as "
            "lm-evaluation-harness cuts them; `truncated` in the samples)."
            for name, t in cut
        ]
    return "\n".join(lines) + "\n"


def default_out_dir(model: str, root: Path = Path("outputs/eval")) -> Path:
    """``outputs/eval/<model slug>``: stable, so the same command resumes into it."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/")).strip("_") or "model"
    return root / slug
