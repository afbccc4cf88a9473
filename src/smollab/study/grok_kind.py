"""The ``grok`` study kind: small models trained from scratch on the grokking tasks.

One run per condition x task x seed. A run trains with :class:`~smollab.train.grokking.
GrokTrainer` (resumable), then analyses its representation snapshots
(:mod:`smollab.analysis.representations`) into ``representations.json``.

    [study]
    name = "grokking"
    kind = "grok"
    seeds = [0, 1, 2]
    reference = "reference"        # compared with every other condition (default: the first)

    [[models]]
    name = "decoder"
    source = "small:decoder"       # smollab.models.SMALL_MODELS; config: n_layer, d_model, ...

    [[tasks]]
    id = "x_plus_y"
    task = "grok.x_plus_y"         # p = 97, train_fraction = 0.5 by default

    [[conditions]]
    name = "reference"
    [conditions.config]            # smollab.train.grokking.GrokTrainSpec
    steps = 7500
    snapshot_steps = "auto"
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from smollab.errors import ConfigError
from smollab.io import atomic_write_json, read_json
from smollab.study.kinds import RUN_KINDS, Progress, RunKind

SOURCE_PREFIX = "small:"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def hashed_config(ts: Any) -> dict[str, Any]:
    """A condition's resolved training config as the run spec records and hashes it. The
    Grokfast and learning-rate-schedule fields, added after the first grokking studies, are
    left out while off, so that earlier runs keep their content hashes (and folders)."""
    d = ts.model_dump(mode="json")
    if d.get("grokfast_alpha") is None:
        d.pop("grokfast_alpha", None)
        d.pop("grokfast_lamb", None)
    if d.get("lr_schedule") == "constant":
        d.pop("lr_schedule", None)
        d.pop("min_lr_ratio", None)
    return d


def train_tables(data: dict[str, Any]) -> list[tuple[int, str]]:
    """The conditions (index, name) of a grokking study spec (the raw TOML ``data``) that have a
    ``[conditions.train]`` table: the fine-tuning settings of a language-model study, which a
    grokking study does not read."""
    study = data.get("study")
    conds = data.get("conditions")
    if not isinstance(study, dict) or study.get("kind") != "grok" or not isinstance(conds, list):
        return []
    return [
        (i, str(c.get("name", "?")))
        for i, c in enumerate(conds)
        if isinstance(c, dict) and c.get("train") is not None
    ]


def train_table_hint(where: list[tuple[int, str]]) -> str:
    """What to do about the ``[conditions.train]`` tables of :func:`train_tables`."""
    named = " and ".join(f"conditions[{i}] ({name!r})" for i, name in where)
    tables = "these tables" if len(where) > 1 else "the table"
    return (
        f"{named}: a grokking study configures training in [conditions.config] (steps, lr, "
        f"weight_decay, batch_size, eval_every, snapshot_steps, ...), not [conditions.train]; "
        f"rename {tables} to [conditions.config]."
    )


def train_spec(cond_config: dict[str, Any] | None, where: str = "[conditions.config]") -> Any:
    from smollab.study.spec import format_validation_error
    from smollab.train.grokking import GrokTrainSpec

    try:
        return GrokTrainSpec(**(cond_config or {}))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, where, GrokTrainSpec)) from None


def _arch(source: str, where: str) -> str:
    from smollab.models import SMALL_MODELS

    if not source.startswith(SOURCE_PREFIX):
        raise ConfigError(
            f"{where}: source {source!r} is not a small from-scratch model; a grokking study "
            f"trains one of {[SOURCE_PREFIX + n for n in SMALL_MODELS.names()]}."
        )
    arch = source[len(SOURCE_PREFIX) :]
    SMALL_MODELS.get(arch, where=where)
    return arch


class GrokKind(RunKind):
    name = "grok"

    def check_spec(self, spec: Any, source: str) -> None:
        from smollab.models import SMALL_MODELS
        from smollab.models.loader import resolve_device
        from smollab.study.spec import format_validation_error
        from smollab.tasks import build_task, validate_task_config
        from smollab.tasks.modular import ModularTask
        from smollab.train.grokking import check_points

        tasks: list[ModularTask] = []
        for i, t in enumerate(spec.tasks):
            where = f"{source}: tasks[{i}]"
            task = build_task(validate_task_config(t, where=where))
            # ModularTask is the only class of the grokking task family (modular.FAMILY)
            if not isinstance(task, ModularTask):
                raise ConfigError(
                    f"{where}: task {t.get('task')!r} is not a grokking task; a study with "
                    "kind = 'grok' takes grok.x_plus_y, grok.x_minus_y, grok.x_div_y or "
                    "grok.permutation."
                )
            try:
                task.split(0)  # a train_fraction that leaves one side empty
            except ConfigError as e:
                raise ConfigError(f"{where}: field 'train_fraction': {e.message}") from None
            tasks.append(task)
        for i, m in enumerate(spec.models):
            where = f"{source}: models[{i}]"
            cfg_cls, _ = SMALL_MODELS.get(_arch(m.source, where), where=where)
            try:
                cfg_cls(**m.config)
            except ValidationError as e:
                raise ConfigError(format_validation_error(e, f"{where}.config", cfg_cls)) from None
        if spec.study.targets:
            raise ConfigError(
                f"{source}: field 'study.targets' is for language-model studies; a grokking "
                "study reports step_val_acc_99 per task. Remove the targets."
            )
        trains = [(i, c.name) for i, c in enumerate(spec.conditions) if c.train is not None]
        if trains:
            raise ConfigError(f"{source}: {train_table_hint(trains)}")
        for i, c in enumerate(spec.conditions):
            where = f"{source}: conditions[{i}]"
            ts = train_spec(c.config, f"{where}.config")
            try:
                resolve_device(ts.device)
            except ConfigError as e:
                raise ConfigError(f"{where}.config: {e.message}") from None
            for mtask in tasks:
                check_points(ts, mtask, f"{where}.config")

    def expand(self, spec: Any) -> list[Any]:
        from smollab.study.runspec import RunSpec, check_distinct

        runs = []
        for cond in spec.conditions:
            model = spec.model_for(cond)
            config = hashed_config(train_spec(cond.config))
            for task in spec.tasks:
                for seed in spec.seeds_for(cond):
                    runs.append(
                        RunSpec(
                            study=spec.study.name,
                            condition=cond.name,
                            model_name=model.name,
                            model=model,
                            format=cond.format,
                            train=None,
                            seed=seed,
                            tasks=[task],
                            eval=spec.eval,
                            kind=self.name,
                            config=config,
                        )
                    )
        return check_distinct(runs)

    def prepare_session(self, spec: Any, session_dir: Path) -> list[str]:
        from smollab.tasks import build_task, validate_task_config
        from smollab.tasks.modular import ModularTask

        out: list[str] = []
        for t in spec.tasks:
            task = build_task(validate_task_config(t))
            assert isinstance(task, ModularTask)  # check_spec accepted only grokking tasks
            atomic_write_json(
                session_dir / "data" / f"{task.name}_task.json",
                {**task.config.model_dump(), "n_pairs": task.n_pairs, "n_classes": task.n_classes},
            )
            out.append(task.name)
        return out

    def link_data(self, session_dir: Path, spec: Any, runs: list[Any]) -> None:
        import shutil

        for r in runs:
            src = session_dir / "runs" / r.hash / "split.json"
            if src.exists():
                name = f"{r.tasks[0]['id']}_split_{r.condition}_seed{r.seed}.json"
                dst = session_dir / "data" / name
                dst.unlink(missing_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)

    def execute(self, run_dir: Path, spec: Any, emit: Progress) -> dict[str, Any]:

        from smollab import __version__
        from smollab.analysis.representations import analyse_run, fourier_basis_of
        from smollab.models import build_small_model
        from smollab.study.worker import begin_run
        from smollab.tasks import build_task, validate_task_config
        from smollab.tasks.modular import ModularTask
        from smollab.train.grokking import GrokTrainer

        t_start = time.perf_counter()
        started = _now()
        ts = train_spec(spec.config)
        env = begin_run(run_dir, spec.seed, ts.threads, ("torch", "split", "batches"))
        task = build_task(validate_task_config(spec.tasks[0]))
        assert isinstance(task, ModularTask)  # check_spec accepted only grokking tasks
        model = build_small_model(
            _arch(spec.model.source, "model"),
            spec.model.config,
            vocab_size=task.vocab_size,
            n_out=task.n_classes,
            seq_len=task.seq_len,
        )
        n_params = sum(p.numel() for p in model.parameters())
        emit({"event": "stage", "stage": "train", "label": spec.label, "total": ts.steps})
        if (run_dir / "train_summary.json").exists() and (run_dir / "ckpt" / "final.pt").exists():
            summary = read_json(run_dir / "train_summary.json")
        else:
            trainer = GrokTrainer(
                task,
                model,
                ts,
                run_dir,
                seed=spec.seed,
                progress=lambda e: emit({**e, "label": spec.label}),
            )
            summary = trainer.fit()
        rep_path = run_dir / "representations.json"
        if summary.get("snapshots") and not rep_path.exists():
            emit({"event": "stage", "stage": "analysis", "label": spec.label})
            reps = analyse_run(
                run_dir,
                fourier=fourier_basis_of(task.operation),
                tsne_points=ts.tsne_points,
                seed=spec.seed,
            )
            atomic_write_json(rep_path, reps)
        record = {
            "hash": spec.hash,
            "status": "done",
            "kind": self.name,
            "study": spec.study,
            "condition": spec.condition,
            "model_name": spec.model_name,
            "task": task.name,
            "seed": spec.seed,
            "started": started,
            "finished": _now(),
            "wall_s_last_attempt": round(time.perf_counter() - t_start, 3),
            "model_info": {"n_params": n_params, "model_type": spec.model.source},
            "train": summary,
            "eval": {task.name: {"overall": summary["final_val_acc"]}},
            "representations": "representations.json" if rep_path.exists() else None,
            "smollab_version": __version__,
            "git_commit": env["git_commit"],
        }
        atomic_write_json(run_dir / "record.json", record)
        emit({"event": "done", "label": spec.label, "hash": spec.hash})
        return record

    def aggregate(self, spec: Any, records: Any, run_dirs: Any, session: str) -> dict[str, Any]:
        from smollab.analysis.grokking import aggregate

        return aggregate(spec, records, run_dirs, session)

    def critique(self, results: dict[str, Any]) -> str:
        from smollab.analysis.grokking import critique

        return critique(results)

    def report(self, session_dir: Path, *, pdf: bool) -> tuple[Path | None, Path | None]:
        from smollab.report.grokking import build_grok_report

        return build_grok_report(session_dir, pdf=pdf)


RUN_KINDS.register("grok")(GrokKind())
