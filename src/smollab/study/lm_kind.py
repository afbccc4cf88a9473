"""The ``lm`` study kind: the foundation's behaviour, unchanged (run hashes included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smollab.study.kinds import RUN_KINDS, Progress, RunKind


def _check_lora_targets(spec: Any, source: str) -> None:
    """Named LoRA targets that match no module of their model are refused before any run (they
    failed in peft after every earlier run had trained)."""
    from smollab.models.loader import model_skeleton
    from smollab.train.trainer import check_lora_targets

    skeletons: dict[str, Any] = {}
    for i, c in enumerate(spec.conditions):
        if c.train is None or c.train.method != "lora" or c.train.lora_targets == ["all-linear"]:
            continue
        m = spec.model_for(c)
        if m.is_api:  # the spec checks refuse training an API model
            continue
        if m.name not in skeletons:
            skeletons[m.name] = model_skeleton(m.source, tokenizer=m.tokenizer, config=m.config)
        if skeletons[m.name] is not None:
            check_lora_targets(
                skeletons[m.name],
                c.train.lora_targets,
                f"{source}: conditions[{i}].train.lora_targets (condition {c.name!r}, model "
                f"{m.name!r})",
            )


class LMKind(RunKind):
    name = "lm"

    def check_spec(self, spec: Any, source: str) -> None:
        from smollab.errors import ConfigError
        from smollab.study.spec import check_lm_spec

        for i, c in enumerate(spec.conditions):
            if c.config is not None:
                raise ConfigError(
                    f"{source}: field 'conditions[{i}].config' belongs to other study kinds; a "
                    "language-model study ([study] kind = 'lm') takes [conditions.train]. Remove "
                    "it, or set [study] kind."
                )
        for i, t in enumerate(spec.tasks):
            if isinstance(t, dict) and t.get("task") == "corpus":
                raise ConfigError(
                    f"{source}: tasks[{i}] is a corpus (task = 'corpus'), which is pretrained "
                    "on and evaluated by perplexity, not scored by accuracy as a "
                    "language-model study's tasks are. Study it in a pretraining study: set "
                    "kind = 'pretrain' in [study], with the corpus as its only task (or run "
                    "`smollab train --task corpus:PATH`)."
                )
        check_lm_spec(spec, source)

    def expand(self, spec: Any) -> list[Any]:
        from smollab.study.runspec import expand_lm

        return expand_lm(spec)

    def execute(self, run_dir: Path, spec: Any, emit: Progress) -> dict[str, Any]:
        from smollab.study.worker import execute_lm_run

        return execute_lm_run(run_dir, spec, emit)

    def preflight(self, spec: Any, session_dir: Path) -> None:
        from smollab.models.loader import check_source

        for m in spec.models:
            if m.is_api:  # its SDK and key (or server), before any run
                from smollab.eval.provider_lm import make_provider_lm

                make_provider_lm(m.source, base_url=m.base_url)
            else:
                check_source(m.source)
        _check_lora_targets(spec, str(session_dir / "study.toml"))

    def prepare_session(self, spec: Any, session_dir: Path) -> list[str]:
        from smollab.io import atomic_write_json, write_jsonl
        from smollab.tasks import Task, build_task, validate_task_config

        tasks = [build_task(validate_task_config(t)) for t in spec.tasks]
        for t in tasks:
            write_jsonl(
                session_dir / "data" / f"{t.name}_test.jsonl", (e.to_dict() for e in t.test_set())
            )
            # a task read from the user's files: its files, split and left-out training items
            info = t.data_info() if isinstance(t, Task) else None
            if info is not None:
                atomic_write_json(session_dir / "data" / f"{t.name}_split.json", info)
        return [t.name for t in tasks]

    def api_bounds(self, runs: list[tuple[Path, Any]]) -> list[Any]:
        from smollab.eval.lm import RequestCache
        from smollab.paths import smollab_home
        from smollab.study.worker import api_run_bound

        specs = [(d, s) for d, s in runs if s.model.is_api]
        if not specs:
            return []
        by_model: dict[str, Any] = {}
        cache = RequestCache(smollab_home() / "eval_cache.sqlite")
        try:
            for d, spec in specs:
                b = api_run_bound(d, spec, cache)
                a = by_model.get(b.source)
                by_model[b.source] = b if a is None else a + b  # a model's runs together
        finally:
            cache.close()
        return list(by_model.values())

    def link_data(self, session_dir: Path, spec: Any, runs: list[Any]) -> None:
        from smollab.study.session import _link_train_data

        _link_train_data(session_dir, spec, runs)

    def aggregate(self, spec: Any, records: Any, run_dirs: Any, session: str) -> dict[str, Any]:
        from smollab.analysis.results import aggregate

        return aggregate(spec, records, run_dirs, session)

    def result_files(self, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out = {}
        for kind, fname in (
            ("baseline", "results_baseline.json"),
            ("finetune", "results_finetuned.json"),
        ):
            out[fname] = {
                **results,
                "conditions": {k: v for k, v in results["conditions"].items() if v["kind"] == kind},
            }
        return out

    def critique(self, results: dict[str, Any]) -> str:
        from smollab.study.session import critique

        return critique(results)

    def report(self, session_dir: Path, *, pdf: bool) -> tuple[Path | None, Path | None]:
        from smollab.report import build_report

        paths = build_report(session_dir, pdf=pdf)
        return paths.paper_tex, paths.paper_pdf


RUN_KINDS.register("lm")(LMKind())
