"""Execute one run in its folder; resumable at every stage.

Stages, each with a done-marker written last and atomically:

1. ``spec.json``, ``env.json``, ``seeds.json``
2. training (``metrics.jsonl``, ``ckpt/last`` every N steps) -> ``ckpt/final`` +
   ``train_summary.json``; the exact training examples in ``train_data.jsonl``
3. evaluation per task -> ``predictions/<task>.jsonl``
4. ``record.json`` (the run is finished; a re-run reuses it)

``python -m smollab.study.worker RUN_DIR`` runs the spec in RUN_DIR/spec.json and reports
progress as JSON lines on stdout; that is how :class:`LocalProcessExecutor` drives it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from smollab import __version__
from smollab.errors import SmollabError
from smollab.io import atomic_write_json, read_json, write_jsonl
from smollab.models.loader import load_trained as _load_trained
from smollab.study.env import environment
from smollab.study.runspec import RunSpec
from smollab.study.spec import STORED

Progress = Callable[[dict[str, Any]], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def prepare_run_dir(run_dir: Path, spec: RunSpec) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "spec.json").exists():
        atomic_write_json(
            run_dir / "spec.json", {"hash": spec.hash, **spec.model_dump(mode="json")}
        )


def execute_run(run_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or finish) the run in ``run_dir``; returns its record. What a run does is its
    study kind's (:mod:`smollab.study.kinds`)."""
    from smollab.study.kinds import get_kind

    emit = progress or (lambda e: None)
    run_dir = Path(run_dir)
    record_path = run_dir / "record.json"
    if record_path.exists():
        return read_json(record_path)
    spec = load_run_spec(run_dir)
    return get_kind(spec.kind).execute(run_dir, spec, emit)


def load_run_spec(run_dir: Path) -> RunSpec:
    """The spec a run folder was prepared with (``spec.json``)."""
    raw = read_json(run_dir / "spec.json")
    raw.pop("hash", None)
    return RunSpec.model_validate(raw, context={STORED: True})


def begin_run(
    run_dir: Path, seed: int, threads: int | None, seeded: tuple[str, ...]
) -> dict[str, Any]:
    """What every run kind does first: set torch's threads (the run's own setting, else
    ``SMOLLAB_THREADS`` from the executor), write ``env.json`` and ``seeds.json`` (every source
    of randomness named in ``seeded`` gets the run's seed), seed everything; returns the env."""
    import torch

    from smollab.train import set_seed

    threads = threads or int(os.environ.get("SMOLLAB_THREADS", "0")) or None
    if threads:
        torch.set_num_threads(threads)
    env = environment()
    atomic_write_json(run_dir / "env.json", env)
    atomic_write_json(run_dir / "seeds.json", {"seed": seed, **dict.fromkeys(seeded, seed)})
    set_seed(seed)
    return env


def train_or_reuse(
    lm: Any,
    spec: Any,
    run_dir: Path,
    emit: Progress,
    *,
    task: Any,
    fmt: Any,
    monitor: Callable[[Any], dict[str, float]],
) -> dict[str, Any]:
    """What every run kind that trains does: a run whose ``ckpt/final`` and
    ``train_summary.json`` exist gets its trained weights back; otherwise ``spec.train`` runs
    with the Trainer on ``task`` (``monitor`` every ``eval_every`` steps), resuming from
    ``ckpt/last`` if present. ``lm.model`` becomes the trained model; returns the train
    summary."""
    from smollab.train import Trainer

    final = run_dir / "ckpt" / "final"
    if (run_dir / "train_summary.json").exists() and final.exists():
        lm.model = _load_trained(lm.model, final, spec.train.method)
        emit({"event": "stage", "stage": "train-reused", "label": spec.label})
        return cast(dict[str, Any], read_json(run_dir / "train_summary.json"))
    trainer = Trainer(
        lm,
        spec.train,
        run_dir,
        task=task,
        fmt=fmt,
        seed=spec.seed,
        evaluate=monitor,
        compile=spec.train.compile or None,
        progress=lambda e: emit({**e, "label": spec.label}),
    )
    # building and packing the training set takes a while before step 1 on big budgets
    emit({"event": "stage", "stage": "prepare", "label": spec.label, "total": spec.train.steps})
    trainer.setup()
    trainer.write_train_data(run_dir / "train_data.jsonl")
    emit(
        {
            "event": "stage",
            "stage": "train",
            "label": spec.label,
            "total": spec.train.steps,
            "step": trainer.step,
        }
    )
    trainer.fit()
    trainer.save_final()
    lm.model = trainer.model
    return cast(dict[str, Any], read_json(run_dir / "train_summary.json"))


def execute_lm_run(run_dir: Path, spec: RunSpec, emit: Progress) -> dict[str, Any]:
    """A language-model run: load, fine-tune when the condition trains, evaluate every task."""

    from smollab.eval import accuracy_by_stratum, evaluate_items
    from smollab.eval.harness import model_key
    from smollab.eval.lm import HFLM
    from smollab.models.loader import load_run_base
    from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config

    record_path = run_dir / "record.json"
    t_start = time.perf_counter()
    started = _now()
    env = begin_run(
        run_dir,
        spec.seed,
        spec.train.threads if spec.train else None,
        ("python", "numpy", "torch", "data_order"),
    )
    fmt = PROMPT_FORMATS.get(spec.format)
    tasks = [build_task(validate_task_config(t)) for t in spec.tasks]
    emit({"event": "stage", "stage": "load", "label": spec.label})
    if spec.model.is_api:  # the spec checks refuse training and loglikelihood tasks for it
        return _execute_api_run(run_dir, spec, emit, tasks, fmt, record_path, t_start, started, env)
    # what load_model(run_dir) rebuilds too: the base, then ckpt/final applied to it
    lm = load_run_base(spec)
    train_summary = None
    if spec.train is not None:
        train_task = (
            next((t for t in tasks if t.name == spec.train.task), tasks[0])
            if spec.train.task
            else tasks[0]
        )
        items = _monitor_items(train_task, spec.train.eval_items)

        def monitor(model: Any) -> dict[str, float]:
            recs = evaluate_items(
                model,
                lm.tokenizer,
                train_task,
                fmt,
                items,
                batch_size=spec.eval.batch_size,
            )
            return {f"{train_task.name}/{k}": v for k, v in accuracy_by_stratum(recs).items()}

        train_summary = train_or_reuse(
            lm, spec, run_dir, emit, task=train_task, fmt=fmt, monitor=monitor
        )
    lm.model.eval()
    bench_lm = HFLM(
        lm.model, lm.tokenizer, batch_size=spec.eval.batch_size, model_key=model_key(lm)
    )
    evals = _evaluate_tasks(run_dir, spec, emit, tasks, fmt, lm.model, lm.tokenizer, bench_lm)
    return _finish_record(
        record_path, spec, emit, tasks, evals, lm.info, train_summary, t_start, started, env
    )


def _finish_record(
    record_path: Path,
    spec: RunSpec,
    emit: Progress,
    tasks: list[Any],
    evals: dict[str, dict[str, float]],
    model_info: dict[str, Any],
    train_summary: dict[str, Any] | None,
    t_start: float,
    started: str,
    env: dict[str, Any],
) -> dict[str, Any]:
    record = {
        "hash": spec.hash,
        "status": "done",
        "study": spec.study,
        "condition": spec.condition,
        "model_name": spec.model_name,
        "seed": spec.seed,
        "started": started,
        "finished": _now(),
        "wall_s_last_attempt": round(time.perf_counter() - t_start, 3),
        "model_info": model_info,
        "train": train_summary,
        "eval": evals,
        "predictions": {t.name: f"predictions/{t.name}.jsonl" for t in tasks},
        "smollab_version": __version__,
        "git_commit": env["git_commit"],
    }
    atomic_write_json(record_path, record)
    emit({"event": "done", "label": spec.label, "hash": spec.hash})
    return record


def _execute_api_run(
    run_dir: Path,
    spec: RunSpec,
    emit: Progress,
    tasks: list[Any],
    fmt: Any,
    record_path: Path,
    t_start: float,
    started: str,
    env: dict[str, Any],
) -> dict[str, Any]:
    """Evaluate an API model (a baseline) on every task through its provider. Replies go
    through the request cache, so a resumed or repeated run pays only for calls not yet made;
    items of a benchmark task are kept as they finish, as for local models."""
    from smollab.eval.lm import RequestCache
    from smollab.eval.provider_lm import make_provider_lm
    from smollab.paths import smollab_home

    cache = RequestCache(smollab_home() / "eval_cache.sqlite")
    try:
        lm = make_provider_lm(spec.model.source, base_url=spec.model.base_url, cache=cache)
        evals = _evaluate_tasks(run_dir, spec, emit, tasks, fmt, lm, None, lm)
        info = {**lm.info, "model_type": f"API model ({lm.info['api']})", "n_params": None}
    finally:
        cache.close()
    return _finish_record(record_path, spec, emit, tasks, evals, info, None, t_start, started, env)


def api_run_bound(run_dir: Path, spec: RunSpec, cache: Any) -> Any:
    """The worst case of the calls an API run has still to make (an
    :class:`~smollab.eval.provider_lm.ApiBound`): the requests of every task not yet in
    ``predictions/``, as :func:`_evaluate_tasks` would send them, less those in ``cache``.
    ``run_dir`` need not exist (a run not started has every call still to make)."""
    from smollab.eval import api_requests
    from smollab.eval.provider_lm import ApiTarget, api_bound
    from smollab.eval.runner import todo_requests
    from smollab.tasks import PROMPT_FORMATS, BenchTask, build_task, validate_task_config

    lm = ApiTarget.of(spec.model.source, spec.model.base_url, cache)  # no SDK or key needed
    fmt = PROMPT_FORMATS.get(spec.format)
    requests: list[Any] = []
    for task in (build_task(validate_task_config(t)) for t in spec.tasks):
        if (run_dir / "predictions" / f"{task.name}.jsonl").exists():
            continue
        if isinstance(task, BenchTask):
            requests += todo_requests(lm, task, run_dir / "predictions" / "samples")
        else:
            requests += api_requests(task, fmt, task.test_set(), spec.eval.max_new_tokens)
    return api_bound(lm, requests)


def _evaluate_tasks(
    run_dir: Path,
    spec: RunSpec,
    emit: Progress,
    tasks: list[Any],
    fmt: Any,
    model: Any,
    tokenizer: Any,
    bench_lm: Any,
) -> dict[str, dict[str, float]]:
    """Evaluate every task not yet in ``predictions/``: exact-match tasks through
    :func:`~smollab.eval.evaluate_items` (``model``: a local model or an API model), benchmark
    tasks through the LM interface ``bench_lm``, their per-item samples kept in
    ``predictions/samples/`` as they finish (resumable). Returns accuracy by stratum per task."""
    from smollab.eval import accuracy_by_stratum, evaluate_items
    from smollab.eval.runner import run_task
    from smollab.io import read_jsonl
    from smollab.tasks import BenchTask

    def progress(n: int) -> None:
        emit({"event": "eval_items", "n": n, "label": spec.label})

    evals: dict[str, dict[str, float]] = {}
    for task in tasks:
        pred_path = run_dir / "predictions" / f"{task.name}.jsonl"
        if pred_path.exists():
            recs = read_jsonl(pred_path)
        else:
            bench = isinstance(task, BenchTask)
            items = task.docs() if bench else task.test_set()
            emit({"event": "stage", "stage": "eval", "label": spec.label, "task": task.name,
                  "total": len(items)})  # fmt: skip
            if bench:
                samples = run_dir / "predictions" / "samples"
                records, _ = run_task(bench_lm, task, samples, progress=progress)
                recs = [task.study_record(r) for r in records]
            else:
                recs = evaluate_items(
                    model,
                    tokenizer,
                    task,
                    fmt,
                    items,
                    batch_size=spec.eval.batch_size,
                    max_new_tokens=spec.eval.max_new_tokens,
                    progress=progress,
                )
            write_jsonl(pred_path, recs)
        evals[task.name] = accuracy_by_stratum(recs)
    return evals


def _monitor_items(task: Any, per_stratum: int) -> list[Any]:
    """The held-out slice evaluated during training (monitoring only: no selection is made)."""
    seen: dict[str, int] = {}
    out = []
    for ex in task.test_set():
        if seen.get(ex.stratum, 0) < per_stratum:
            out.append(ex)
            seen[ex.stratum] = seen.get(ex.stratum, 0) + 1
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    run_dir = Path(args[0])
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    def emit(e: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(e, default=str) + "\n")
        sys.stdout.flush()

    try:
        execute_run(run_dir, emit)
        return 0
    except SmollabError as e:
        emit({"event": "error", "kind": "user", "message": e.render(), "exit_code": e.exit_code})
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # logged in full into the run folder; summarised to the parent
        tb = traceback.format_exc()
        (run_dir / "error.log").write_text(tb)
        emit(
            {
                "event": "error",
                "kind": "internal",
                "message": f"{type(e).__name__}: {e}",
                "log": str(run_dir / "error.log"),
                "exit_code": 1,
            }
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
