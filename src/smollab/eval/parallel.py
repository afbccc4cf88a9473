"""``smollab eval --procs N``: a task's items computed by N worker processes.

Each worker loads its own copy of the model (on the CPU with ``threads`` intra-op threads; on
CUDA one GPU each, round robin over the visible GPUs) and computes a round-robin share of the
items still to do, through the same :func:`~smollab.eval.runner.run_task` as one process, into
its own part folder. The parent merges the parts into the task's samples file, where
:func:`~smollab.eval.harness.run_eval` finds every item done and writes the results.

It is for machines with several GPUs, and for CPUs with more cores than one process's threads
use well. On a 2-core CPU it is no faster than one process with 2 threads: for SmolLM2-135M,
HellaSwag ran at the same items/s and GSM8K was slower (BENCHMARKS.md, "Evaluation in several
processes").

Nothing computed is lost: a worker appends each record as its chunk finishes, and parts left by
an interrupted or failed run are merged in at the start of the next one (whatever its N).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError, RunFailed
from smollab.io import append_jsonl, read_json, read_jsonl
from smollab.tasks.bench import BenchConfig, BenchTask

PARTS = ".parts"  # out_dir/.parts/<task>/<part>/samples_<task>.jsonl
_READY = "\0ready"  # a worker's first event: its model is loaded

# in a worker process: the model, its LM wrapper and the progress queue (set by _init_worker)
_WORKER: dict[str, Any] = {}


def check_procs(procs: int, *, api: bool, device: str) -> None:
    """A ConfigError for a ``--procs`` value that cannot work here."""
    if procs < 1:
        raise ConfigError(f"--procs {procs}: the number of worker processes must be at least 1.")
    if procs > 1 and api:
        raise ConfigError(
            f"--procs {procs} is for local models; an API model already sends --batch-size "
            "calls at a time. Drop --procs, or raise --batch-size."
        )
    if procs > 1 and device.startswith("mps"):
        raise ConfigError(f"--procs {procs} with device 'mps': one process only on MPS.")


def default_threads(procs: int) -> int:
    """Intra-op threads per worker: this process's threads shared among the workers."""
    import torch

    return max(1, torch.get_num_threads() // procs)


class ProcPool:
    """N worker processes, each with the model loaded once, serving tasks one after another.

    ``load_args``: :func:`~smollab.models.load_model`'s arguments (``source``, ``tokenizer``,
    ``device``, ``dtype``). Use as a context manager; :meth:`compute` runs one task.
    """

    def __init__(
        self,
        load_args: dict[str, Any],
        procs: int,
        *,
        threads: int,
        batch_size: int,
        use_cache: bool,
    ) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # fork is unsafe once torch's thread pools exist
        self.procs = procs
        self.events: Any = ctx.Queue()
        slots: Any = ctx.Queue()
        for i in range(procs):
            slots.put(i)
        self.pool = ProcessPoolExecutor(
            procs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(load_args, threads, batch_size, use_cache, self.events, slots),
        )

        self.threads = threads
        #: seconds the workers took to start and load the model (None until they have)
        self.start_seconds: float | None = None

    def __enter__(self) -> ProcPool:
        return self

    def _start(self) -> None:
        """Start every worker and wait until each has loaded the model, so that the time of a
        task's items does not include it (:attr:`start_seconds`)."""
        if self.start_seconds is not None:
            return
        t0 = time.perf_counter()
        pending = [self.pool.submit(_ready) for _ in range(self.procs)]
        ready = 0
        while ready < self.procs:
            try:
                kind, _ = self.events.get(timeout=0.5)
            except queue.Empty:
                for f in pending:  # a worker that failed to start breaks the pool
                    if f.done() and f.exception() is not None:
                        raise self._broken("starting") from None
                continue
            ready += kind == _READY
        self.start_seconds = time.perf_counter() - t0

    def _broken(self, doing: str) -> RunFailed:
        return RunFailed(
            f"A worker process of `--procs {self.procs}` died while {doing} (killed, out of "
            "memory, or the model failed to load in it). The items the workers finished are "
            "kept in the results folder; run the same command again to resume, with fewer "
            "--procs if memory is short."
        )

    def __exit__(self, *exc: Any) -> None:
        # after a failure or Ctrl-C, do not wait for the other workers' chunks: stop them
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        if exc[0] is not None:
            for p in procs:
                p.terminate()

    def compute(
        self,
        task: BenchTask,
        todo: list[Any],
        samples: Path,
        key: str,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, float]:
        """Compute the items ``todo`` (ids) of ``task`` and merge them into ``samples`` (the
        task's samples file for the samples key ``key``).

        Returns ``{"seconds" (wall), "compute_seconds" (summed over the workers)}``. A
        worker's failure raises after the finished items are merged.
        """
        self._start()
        parts = _parts_dir(samples)
        # the task's own classes, not the registry's: smollab eval builds some tasks from a
        # file with a config class of its own (--task corpus:PATH, a CorpusEvalConfig)
        build = (type(task), type(task.config), task.config.model_dump(mode="json"))
        t0 = time.perf_counter()
        futures: list[Future[float]] = [
            self.pool.submit(_work, build, todo[i :: self.procs], str(parts / f"{os.getpid()}-{i}"))
            for i in range(min(self.procs, len(todo)))
        ]
        stop = threading.Event()
        relay = threading.Thread(target=self._relay, args=(task.name, progress, stop), daemon=True)
        relay.start()
        try:
            secs = [f.result() for f in futures]
        except BrokenProcessPool:
            raise self._broken(f"evaluating {task.name!r}") from None
        finally:
            stop.set()
            relay.join()
            merge_parts(samples, key)
        return {"seconds": time.perf_counter() - t0, "compute_seconds": sum(secs)}

    def _relay(
        self, name: str, progress: Callable[[int], None] | None, stop: threading.Event
    ) -> None:
        """Forward the workers' progress counts for task ``name`` until ``stop`` is set and
        the queue has been empty for 0.1 s."""
        while True:
            try:
                task, n = self.events.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if progress and task == name:
                progress(n)


def _parts_dir(samples: Path) -> Path:
    return samples.parent / PARTS / samples.stem.removeprefix("samples_")


def merge_parts(
    samples: Path, key: str, on_set_aside: Callable[[Path, int], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Append to ``samples`` the records of its task's part folders that were computed for the
    same model and config (``key``), remove the parts, and return every record by item id.

    A samples file of another key is set aside by the runner (``on_set_aside``: see
    :func:`~smollab.eval.runner._resume`); so are the records of parts for another key (an
    interrupted ``--procs`` run of a changed model or config), added to that key's set-aside
    file. Parts without a readable key hold nothing that can be attributed, and go."""
    from smollab.eval.runner import _resume, set_aside_path

    done = _resume(samples, key, on_set_aside)
    parts = _parts_dir(samples)
    if not parts.exists():
        return done
    for part in sorted(p for p in parts.iterdir() if p.is_dir()):
        rows = part / samples.name
        meta = rows.with_suffix(".meta.json")
        if not (rows.exists() and meta.exists()):
            continue
        other = read_json(meta).get("key")
        if other == key:
            for rec in read_jsonl(rows):
                if rec["id"] not in done:
                    append_jsonl(samples, rec)
                    done[rec["id"]] = rec
        elif isinstance(other, str) and other.isalnum():
            aside = set_aside_path(samples, other)
            aside.with_suffix(".meta.json").write_text(json.dumps({"key": other}) + "\n")
            recs = read_jsonl(rows)
            for rec in recs:
                append_jsonl(aside, rec)
            if on_set_aside is not None and recs:
                on_set_aside(aside, len(recs))
    shutil.rmtree(parts)
    if not any(parts.parent.iterdir()):
        parts.parent.rmdir()
    return done


# ---------------------------------------------------------------------- in the worker processes
def _init_worker(
    load_args: dict[str, Any],
    threads: int,
    batch_size: int,
    use_cache: bool,
    events: Any,
    slots: Any,
) -> None:
    import torch

    from smollab.eval.harness import model_key
    from smollab.eval.lm import HFLM, RequestCache
    from smollab.models import load_model
    from smollab.paths import smollab_home

    # Ctrl-C reaches the whole process group: the parent alone handles it (it merges what the
    # workers finished and stops them), so a worker prints no traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    slot = slots.get()
    torch.set_num_threads(threads)
    args = dict(load_args)
    if args.get("device", "cpu").startswith("cuda") and ":" not in args["device"]:
        args["device"] = f"cuda:{slot % max(1, torch.cuda.device_count())}"
    loaded = load_model(**args)
    cache = RequestCache(smollab_home() / "eval_cache.sqlite") if use_cache else None
    _WORKER["lm"] = HFLM(
        loaded.model,
        loaded.tokenizer,
        batch_size=batch_size,
        cache=cache,
        model_key=model_key(loaded),
    )
    _WORKER["events"] = events
    events.put((_READY, slot))


def _ready() -> None:
    """A no-op job: submitted once per worker so that every worker starts."""
    time.sleep(0.2)  # keep this worker busy so the next no-op starts another one


def _work(
    build: tuple[type[BenchTask], type[BenchConfig], dict[str, Any]], ids: list[Any], part_dir: str
) -> float:
    """Compute the items ``ids`` of the task into ``part_dir``; return the compute seconds.
    ``build``: the task's class, its config's class and the config's fields (every benchmark
    task is made from its config alone)."""
    from smollab.eval.runner import run_task

    task_cls, config_cls, fields = build
    task = task_cls(config_cls(**fields))  # the fields of a config validated in the parent
    keep = set(ids)
    task._docs = [d for d in task.docs() if d["id"] in keep]
    events = _WORKER["events"]
    _, secs = run_task(
        _WORKER["lm"], task, Path(part_dir), progress=lambda n: events.put((task.name, n))
    )
    return secs
