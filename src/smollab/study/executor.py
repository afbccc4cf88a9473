"""Executors run RunSpecs; nothing above them assumes one machine.

``Executor.run(jobs, on_event)`` executes each job's run folder and returns one outcome per job.
``LocalProcessExecutor`` (the default) starts ``python -m smollab.study.worker RUN_DIR`` per run
(``workers`` at a time) and relays its JSON-line progress events; ``InlineExecutor`` runs in the
calling process (debugging, tests). No cluster backend ships yet; one (e.g. on Ray) would
implement the same interface and register in :data:`EXECUTORS`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smollab.errors import SmollabError
from smollab.registry import Registry

OnEvent = Callable[[dict[str, Any]], None]


@dataclass
class Job:
    run_dir: Path
    label: str


@dataclass
class Outcome:
    job: Job
    ok: bool
    record: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0
    details: dict[str, Any] = field(default_factory=dict)


#: an executor stops starting runs once this many have failed with the same error: the rest
#: would almost surely fail the same way (a missing data dir, a value the model cannot take), and
#: a re-run after the fix reuses every finished run anyway
SAME_FAILURES_TO_STOP = 2


class FailFast:
    """Counts failures by their message (run folders masked); says when to stop starting runs."""

    def __init__(self, limit: int = SAME_FAILURES_TO_STOP) -> None:
        self.limit = limit
        self.counts: Counter[str] = Counter()
        self.reason: str | None = None

    def add(self, outcome: Outcome) -> None:
        if outcome.ok or not outcome.error:
            return
        key = outcome.error.replace(str(outcome.job.run_dir), "<run>")
        self.counts[key] += 1
        if self.reason is None and self.counts[key] >= self.limit:
            self.reason = outcome.error

    def skipped(self, job: Job) -> Outcome:
        """The outcome of a job left unstarted after :attr:`reason` repeated."""
        return Outcome(
            job,
            False,
            error=f"not started: {self.limit} runs had already failed with the same error",
            details={"not_started": True},
        )


class Executor(ABC):
    """Runs jobs; stops starting new ones once :data:`SAME_FAILURES_TO_STOP` runs have failed
    with the same error (their outcomes say ``details["not_started"]``)."""

    @abstractmethod
    def run(self, jobs: list[Job], on_event: OnEvent) -> list[Outcome]: ...


class InlineExecutor(Executor):
    """Runs each job in this process, one after another."""

    def run(self, jobs: list[Job], on_event: OnEvent) -> list[Outcome]:
        from smollab.study.worker import execute_run

        outcomes = []
        fail = FailFast()
        for job in jobs:
            if fail.reason is not None:
                outcomes.append(fail.skipped(job))
                continue
            try:
                rec = execute_run(job.run_dir, on_event)
                outcomes.append(Outcome(job, True, rec))
            except SmollabError as e:
                outcomes.append(Outcome(job, False, error=e.render(), exit_code=e.exit_code))
            fail.add(outcomes[-1])
        return outcomes


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the parent dies (Linux), and own a process group."""
    os.setsid()
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def busy_cores(interval: float = 0.5) -> float | None:
    """How many cores other processes keep busy, sampled from ``/proc/stat`` over ``interval``
    seconds (Linux; ``None`` elsewhere). Unlike the load average it does not lag by a minute."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals[:8]), idle

    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if t1 <= t0:
        return None
    return (1.0 - (i1 - i0) / (t1 - t0)) * (os.cpu_count() or 1)


def threads_per_run(workers: int, threads: int | None, cpus: int | None = None) -> int:
    """Threads one run uses: the configured count, else the cores shared among the workers."""
    return threads or max(1, (cpus or os.cpu_count() or 1) // max(1, workers))


def cpu_plan_warnings(
    workers: int, threads: int | None, cpus: int | None = None, busy: float | None = None
) -> list[str]:
    """Warnings about a local plan that oversubscribes the CPU cores.

    Multithreaded torch (OpenMP) slows down by far more than its share when another busy
    thread competes for its cores: a 2-thread SmolLM2 fine-tune measured 3.3 s/step alone and
    about 30 s/step beside one more busy thread on a 2-core machine. ``busy`` is the number of
    cores other processes keep busy before the study starts (:func:`busy_cores`).
    """
    cpus = cpus or os.cpu_count() or 1
    per_run = threads_per_run(workers, threads, cpus)
    out = []
    if workers * per_run > cpus:
        out.append(
            f"{workers} workers x {per_run} threads = {workers * per_run} threads on {cpus} "
            f"cores: oversubscribed torch runs slow down by far more than their share. Set "
            f"[execution] workers x threads_per_worker <= {cpus}."
        )
    if busy is not None and per_run > 1 and busy >= 0.75:
        out.append(
            f"other processes keep about {busy:.1f} of the {cpus} cores busy: {per_run}-thread "
            "runs beside them can be several times slower. Let them finish first, or set "
            "[execution] threads_per_worker = 1."
        )
    return out


class LocalProcessExecutor(Executor):
    """One worker process per run, ``workers`` at a time (default 1: a study uses all cores)."""

    def __init__(self, workers: int = 1, threads_per_worker: int | None = None) -> None:
        self.workers = max(1, workers)
        if threads_per_worker is None and self.workers > 1:
            threads_per_worker = max(1, (os.cpu_count() or 1) // self.workers)
        self.threads = threads_per_worker

    def warnings(self) -> list[str]:
        # sampling /proc/stat takes half a second: only when a run would use several threads
        busy = busy_cores() if threads_per_run(self.workers, self.threads) > 1 else None
        return cpu_plan_warnings(self.workers, self.threads, busy=busy)

    def _start(self, job: Job) -> subprocess.Popen[str]:
        env = dict(os.environ)
        env.setdefault("TRANSFORMERS_VERBOSITY", "error")
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
            env["SMOLLAB_THREADS"] = str(self.threads)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        log = open(job.run_dir / "worker.log", "a")  # noqa: SIM115  (closed with the process)
        return subprocess.Popen(
            [sys.executable, "-m", "smollab.study.worker", str(job.run_dir)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            preexec_fn=_die_with_parent,
        )

    def run(self, jobs: list[Job], on_event: OnEvent) -> list[Outcome]:
        import selectors

        pending = list(jobs)
        running: dict[Any, tuple[Job, subprocess.Popen[str], dict[str, Any]]] = {}
        outcomes: dict[str, Outcome] = {}
        fail = FailFast()
        sel = selectors.DefaultSelector()
        try:
            while (pending and fail.reason is None) or running:
                while pending and len(running) < self.workers and fail.reason is None:
                    job = pending.pop(0)
                    proc = self._start(job)
                    assert proc.stdout is not None
                    sel.register(proc.stdout, selectors.EVENT_READ)
                    running[proc.stdout] = (job, proc, {})
                for key, _ in sel.select(timeout=1.0):
                    job, proc, last = running[key.fileobj]
                    line = key.fileobj.readline()  # type: ignore[union-attr]
                    if line:
                        try:
                            event = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        if event.get("event") == "error":
                            last.update(event)
                        on_event(event)
                        continue
                    sel.unregister(key.fileobj)
                    del running[key.fileobj]
                    code = proc.wait()
                    outcomes[str(job.run_dir)] = self._outcome(job, code, last)
                    fail.add(outcomes[str(job.run_dir)])
        except BaseException:
            for _, proc, _ in running.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for _, proc, _ in running.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            raise
        for job in pending:
            outcomes[str(job.run_dir)] = fail.skipped(job)
        return [outcomes[str(j.run_dir)] for j in jobs]

    @staticmethod
    def _outcome(job: Job, code: int, last: dict[str, Any]) -> Outcome:
        from smollab.io import read_json

        rec_path = job.run_dir / "record.json"
        if code == 0 and rec_path.exists():
            return Outcome(job, True, read_json(rec_path))
        if last.get("message"):
            msg = last["message"]
            if last.get("kind") == "internal":
                msg += f" (full traceback in {last.get('log')})"
        elif code < 0:
            try:
                name = f" ({signal.Signals(-code).name})"
            except ValueError:
                name = ""
            msg = f"the worker was killed by signal {-code}{name}"
        else:
            msg = f"the worker exited with status {code}; see {job.run_dir / 'worker.log'}"
        return Outcome(job, False, error=msg, exit_code=int(last.get("exit_code", 1)))


#: executor name -> constructor (a cluster backend would register here too)
EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")
EXECUTORS.register("local")(LocalProcessExecutor)
EXECUTORS.register("inline")(lambda **kw: InlineExecutor())
