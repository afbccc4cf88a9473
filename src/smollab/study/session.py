"""A session: one study's folder, from spec to paper (the layout of DESIGN.md).

:func:`run_study` is resumable: re-running it with the same spec reuses every finished run and
finishes the rest (training resumes from its last checkpoint).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smollab.analysis.results import (
    ALPHA,
    against,
    baseline_checks,
    every_comparison,
    no_difference_reason,
)
from smollab.errors import ConfigError, RunFailed
from smollab.io import NAME_PATTERN, append_jsonl, atomic_write_json, atomic_write_text, read_json
from smollab.study.executor import Executor, Job, LocalProcessExecutor, Outcome
from smollab.study.runspec import expand
from smollab.study.spec import StudySpec
from smollab.study.store import Store
from smollab.study.worker import prepare_run_dir

OnEvent = Callable[[dict[str, Any]], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SessionResult:
    session_dir: Path
    results: dict[str, Any]
    outcomes: list[Outcome]
    written: list[Path] = field(default_factory=list)


def check_writable(out_root: Path, flag: str = "--out DIR") -> None:
    """Check a file can be written in ``out_root`` (a :class:`ConfigError` naming it and
    ``flag`` otherwise). The folders the check makes to write its probe are removed again:
    the command's writer makes them, so a command refused after this check (a model that
    does not load, a missing data folder) leaves no empty ``--out`` folder behind."""
    if out_root.exists() and not out_root.is_dir():
        raise ConfigError(
            f"The output directory {out_root} is not writable: it is a file. Pass a folder "
            f"with {flag}."
        )
    made = [p for p in (out_root, *out_root.parents) if not p.exists()]  # deepest first
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        probe = out_root / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"The output directory {out_root} is not writable ({e.strerror}). Pass a writable "
            f"directory with {flag}."
        ) from None
    finally:
        for p in made:
            try:
                p.rmdir()
            except OSError:  # not made after all, or another process wrote there meanwhile
                break


SESSION_NAME = re.compile(NAME_PATTERN)


def check_session_name(name: str) -> None:
    """A session is one folder directly under ``--out``: no path separators, not ``.``/``..``."""
    if not SESSION_NAME.match(name) or set(name) == {"."}:
        raise ConfigError(
            f"Session name {name!r} is not a folder name: start with a letter or digit and use "
            "letters, digits, '_', '-' and '.' only (one folder directly under --out), e.g. "
            "--session-name mult-lr3e-4."
        )


# what a session's spec produced; runs are content-hashed and stay (unchanged ones are reused).
# data/ (test sets, grokking splits) is rebuilt from the runs, so a task or seed the new spec
# dropped leaves no stale file beside the current ones.
SPEC_OUTPUTS = ("study.toml", "data", "results", "figures", "paper", "report.md", "report.html")


def archive_changed_spec(session_dir: Path, spec_text: str) -> Path | None:
    """If ``session_dir`` last ran another spec, move that spec and what it produced
    (:data:`SPEC_OUTPUTS`) to ``previous/<time>/`` and return that folder; else None. Nothing a
    user read is overwritten by a study they changed."""
    old = session_dir / "study.toml"
    if not old.is_file() or old.read_text(encoding="utf-8") == spec_text:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = session_dir / "previous" / stamp
    dest.mkdir(parents=True)
    for name in SPEC_OUTPUTS:
        if (session_dir / name).exists():
            os.replace(session_dir / name, dest / name)
    return dest


class Session:
    def __init__(self, out_root: Path, name: str) -> None:
        self.out_root = Path(out_root)
        self.name = name
        self.dir = self.out_root / name
        self.log_path = self.dir / "session_log.jsonl"

    def log(self, event: str, **data: Any) -> None:
        append_jsonl(self.log_path, {"time": _now(), "event": event, **data})

    def state(self, stage: str, **extra: Any) -> None:
        path = self.dir / "session.json"
        prev = read_json(path) if path.exists() else {"created": _now()}
        atomic_write_json(
            path, {**prev, "name": self.name, "stage": stage, "updated": _now(), **extra}
        )


def pending_api_bounds(
    spec: StudySpec, session_dir: Path, runs: list[Any] | None = None
) -> list[Any]:
    """The worst case of the API-model calls ``spec``'s runs have still to make in
    ``session_dir`` (which need not exist): one :class:`~smollab.eval.provider_lm.ApiBound` per
    API model, over the runs without a ``record.json``, less the predictions they already wrote
    and the replies in the request cache. Makes no call and needs no API key."""
    from smollab.study.kinds import get_kind

    runs = expand(spec) if runs is None else runs
    todo = [
        (session_dir / "runs" / r.hash, r)
        for r in runs
        if not (session_dir / "runs" / r.hash / "record.json").exists()
    ]
    return get_kind(spec.study.kind).api_bounds(todo) if todo else []


def run_study(
    spec: StudySpec,
    spec_text: str,
    *,
    out_root: str | os.PathLike[str],
    session_name: str | None = None,
    problem_text: str | None = None,
    executor: Executor | None = None,
    on_event: OnEvent | None = None,
    pdf: bool = True,
    notes: bool = True,
    budget_usd: float | None = None,
    report: bool = True,
) -> SessionResult:
    """Run every run of ``spec`` into a session folder and write results, figures and paper.

    ``notes=False`` leaves ``plans.txt`` and ``critiques.txt`` alone: the research agent owns
    them when it drives the study. ``report=False`` stops after ``results/`` (``smollab
    train``: figures, report and paper are then written by ``smollab report``). Before any
    run starts, the worst case of the API-model calls still to make is reported
    (``api_bound`` events) and checked against ``budget_usd``.
    """
    from smollab.study.kinds import get_kind
    from smollab.study.spec import StudySpec, loads_spec

    if not isinstance(spec, StudySpec):
        raise ConfigError(
            f"run_study takes a StudySpec, not a {type(spec).__name__}: parse the text with "
            "smollab.study.spec.loads_spec(text) (or load_spec(path)) and pass both."
        )
    # study.toml is "the declared study" of the session and what a changed spec is told by
    if loads_spec(spec_text, "spec_text").model_dump() != spec.model_dump():
        raise ConfigError(
            "run_study: spec_text does not describe spec (study.toml would misstate the "
            "study). Pass the text the spec was parsed from: spec = loads_spec(text)."
        )
    out_root = Path(out_root)
    kind = get_kind(spec.study.kind)
    emit = on_event or (lambda e: None)
    check_writable(out_root)
    check_session_name(session_name or spec.study.name)
    # a model that cannot be loaded fails here, before an existing session's outputs are
    # moved aside for this spec (or an empty session folder is made)
    kind.preflight(spec, out_root / (session_name or spec.study.name))
    session = Session(out_root, session_name or spec.study.name)
    d = session.dir
    kept = archive_changed_spec(d, spec_text)
    if kept is not None:
        session.log("spec_changed", archived=kept.relative_to(d).as_posix())
        emit({"event": "spec_changed", "archived": str(kept)})
    for sub in ("data", "runs", "results", "figures", "paper"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    store = Store(out_root)
    store.upsert_session(
        session.name,
        path=str(d),
        problem=problem_text and "problem.md",
        study=spec.study.name,
        status="running",
        created=_now(),
        updated=_now(),
    )
    session.state("start")
    if problem_text is not None:
        atomic_write_text(d / "problem.md", problem_text)
    atomic_write_text(d / "study.toml", spec_text)
    metrics_path = d / "metrics.json"
    if not metrics_path.exists():
        atomic_write_json(
            metrics_path,
            {
                "llm": {
                    "provider": None,
                    "calls": 0,
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost_usd": 0.0,
                }
            },
        )
    runs = expand(spec)
    task_names = kind.prepare_session(spec, d)
    plan = [
        "Reference protocol executed without an LLM (offline default).",
        f"Study {spec.study.name}: {len(spec.conditions)} conditions, "
        f"{len(runs)} runs, tasks {', '.join(task_names)}.",
        *(
            f"- run {r.hash}: condition {r.condition}, model {r.model_name}, seed {r.seed}"
            for r in runs
        ),
    ]
    if notes:
        atomic_write_text(d / "plans.txt", "\n".join(plan) + "\n")
    session.log("plan", runs=[{"hash": r.hash, "label": r.label} for r in runs])
    jobs = []
    for r in runs:
        rd = d / "runs" / r.hash
        prepare_run_dir(rd, r)
        jobs.append(Job(rd, r.label))
    todo = [j for j in jobs if not (j.run_dir / "record.json").exists()]
    for j in jobs:
        if j not in todo:
            emit({"event": "reused", "label": j.label})
    bounds = pending_api_bounds(spec, d, runs)
    if bounds:
        from dataclasses import asdict

        from smollab.eval.provider_lm import check_api_budget

        for b in bounds:
            emit({"event": "api_bound", "text": b.describe()})
        session.log("api_bound", bounds=[asdict(b) for b in bounds], budget_usd=budget_usd)
        check_api_budget(bounds, budget_usd, "this study")
    session.state(
        "runs",
        total=len(jobs),
        reused=len(jobs) - len(todo),
        run_hashes=[j.run_dir.name for j in jobs],
    )
    session.log("runs_start", todo=len(todo), reused=len(jobs) - len(todo))
    outcomes = (executor or LocalProcessExecutor()).run(todo, emit) if todo else []
    for o in outcomes:
        event = "run_not_started" if o.details.get("not_started") else "run_end"
        session.log(event, label=o.job.label, ok=o.ok, error=o.error)
    records = []
    for j in jobs:
        rp = j.run_dir / "record.json"
        if rp.exists():
            rec = read_json(rp)
            store.add_run(session.name, j.run_dir, rec)
            records.append(rec)
    skipped = [o for o in outcomes if o.details.get("not_started")]
    failed = [o for o in outcomes if not o.ok and not o.details.get("not_started")]
    if failed:
        session.state(
            "runs_failed",
            failed=[o.job.label for o in failed],
            not_started=[o.job.label for o in skipped],
        )
        store.upsert_session(session.name, status="failed", updated=_now())
        first = failed[0]
        also = ""
        if skipped:
            n = len(skipped)
            also = f", and {'the other run was' if n == 1 else f'the other {n} were'} not "
            also += "started, since the same error repeated"
        error = (first.error or "").rstrip()
        if not error.endswith((".", "!", "?")):
            error += "."  # the hint follows: "... signal 9 (SIGKILL). Fix the cause ..."
        raise RunFailed(
            f"{len(failed)} of {len(jobs)} runs failed{also}; {len(records)} finished runs are "
            f"kept in {d / 'runs'}. First failure ({first.job.label}): {error}",
            hint="Fix the cause and re-run the same command: finished runs are reused.",
        ).with_exit(first.exit_code)
    kind.link_data(d, spec, runs)
    session.state("analysis")
    hash_dirs = {j.run_dir.name: j.run_dir for j in jobs}
    results = kind.aggregate(spec, records, hash_dirs, session.name)
    rd = d / "results"
    atomic_write_json(rd / "results.json", results)
    for fname, part in kind.result_files(results).items():
        atomic_write_json(rd / fname, part)
    if notes:
        atomic_write_text(d / "critiques.txt", kind.critique(results))
    session.log("analysis_done")
    written = [rd / "results.json"]
    if report:
        session.state("report")
        paper_tex, paper_pdf = kind.report(d, pdf=pdf)
        session.log("report_done")
        written += [d / "report.md", d / "report.html"]
        written += [p for p in (paper_tex, paper_pdf) if p]
    session.state("done")
    store.upsert_session(session.name, status="done", updated=_now())
    return SessionResult(d, results, outcomes, written)


def _link_train_data(d: Path, spec: StudySpec, runs: list[Any]) -> None:
    """Expose each run's exact training set in ``data/`` (hard links: no extra space)."""
    for r in runs:
        src = d / "runs" / r.hash / "train_data.jsonl"
        if not src.exists():
            continue
        task = r.train.task if r.train and r.train.task else spec.tasks[0]["id"]
        dst = d / "data" / f"{task}_train_{r.condition}_seed{r.seed}.jsonl"
        if dst.exists():
            dst.unlink()
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)


def critique(results: dict[str, Any]) -> str:
    """Automated checks a careful reviewer would make, as text."""
    lines = ["Automated critique (offline reference protocol)", ""]
    for cname, c in results["conditions"].items():
        n = len(c["seeds"])
        if c["kind"] != "baseline" and n < 3:
            lines.append(f"- {cname}: only {n} seed(s); seed variance is not well estimated.")
    lines += [f"- {line}" for line in baseline_checks(results)]
    for comp in every_comparison(results):
        if comp["verdict"] == "no detectable difference":
            lines.append(
                f"- {comp['condition']} vs {against(comp)} on {comp['task']}/{comp['stratum']}"
                f": {no_difference_reason(comp, results.get('alpha', ALPHA))} -> no detectable "
                "difference."
            )
    lines += [f"- {n}" for n in results.get("notes", [])]
    if len(lines) == 2:
        lines.append("- No problems found.")
    return "\n".join(lines) + "\n"
