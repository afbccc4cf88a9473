"""The ``pretrain`` study kind: pretrain language models on a raw-text corpus, report perplexity.

A study of this kind has one task, a ``corpus`` (:mod:`smollab.tasks.corpus`); each condition
either trains (``[conditions.train]``: the causal LM objective on every token of the training
documents, concatenated and cut into ``seq_len`` chunks) or is a baseline evaluated as it is.
Every run is evaluated on the held-out documents by rolling loglikelihood; validation loss is
logged every ``eval_every`` steps on the first ``eval_items`` held-out documents. Results
(``results/results.json``, kind ``pretrain``) hold per run the corpus-level perplexities with
95% bootstrap intervals over documents, and per condition their spread over seeds; the report
is a Markdown/HTML table (no accuracy figures, no paper). ``smollab train --task corpus:PATH``
writes such a study.
"""

from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError
from smollab.study.kinds import RUN_KINDS, Progress, RunKind

#: the metrics a run reports, in display order (smollab.tasks.corpus.CORPUS_METRICS)
SHOWN = ("token_perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte")


def _corpus_task(spec: Any) -> Any:
    from smollab.tasks import build_task, validate_task_config

    return build_task(validate_task_config(spec.tasks[0]))


class PretrainKind(RunKind):
    name = "pretrain"

    def check_spec(self, spec: Any, source: str) -> None:
        from smollab.study.spec import (
            _check_data_files,
            _check_model_sources,
            _check_scratch_models,
        )
        from smollab.tasks import validate_task_config
        from smollab.tasks.corpus import CorpusConfig

        configs = [
            validate_task_config(t, where=f"{source}: tasks[{i}]") for i, t in enumerate(spec.tasks)
        ]
        if len(configs) != 1 or not isinstance(configs[0], CorpusConfig):
            names = ", ".join(f"{c.id!r} ({c.task})" for c in configs)
            raise ConfigError(
                f"{source}: a pretraining study ([study] kind = 'pretrain') has exactly one "
                f"task, a corpus (task = 'corpus'), whose held-out documents every run is "
                f"evaluated on by perplexity; this spec has {names}. Keep the one corpus task, "
                "and evaluate the trained models on other tasks afterwards with `smollab eval "
                "--model outputs/SESSION/runs/HASH --task ...`."
            )
        for i, c in enumerate(spec.conditions):
            if c.config is not None or "format" in c.model_fields_set:
                field = "config" if c.config is not None else "format"
                raise ConfigError(
                    f"{source}: field 'conditions[{i}].{field}' does not apply to a pretraining "
                    "study: it trains on raw text with [conditions.train] (no prompt format). "
                    "Remove it."
                )
            if c.train is not None and c.train.task not in (None, configs[0].id):
                raise ConfigError(
                    f"{source}: conditions[{i}].train.task is {c.train.task!r}; a pretraining "
                    f"study trains on its corpus task {configs[0].id!r}. Remove train.task."
                )
        if spec.study.targets or spec.study.reference:
            raise ConfigError(
                f"{source}: study.targets and study.reference are accuracy targets and "
                "comparisons of a language-model study; a pretraining study reports perplexity "
                "per condition. Remove them."
            )
        for i, m in enumerate(spec.models):
            if m.is_api:
                raise ConfigError(
                    f"{source}: models[{i}] ({m.name!r}) is an API model, which returns no "
                    "log-probabilities of a text and cannot be trained: a pretraining study "
                    "needs local models (scratch:gpt2, a model folder, a hub id)."
                )
        _check_data_files(configs, source)
        _check_model_sources(spec, source)
        _check_scratch_models(spec, source)

    def expand(self, spec: Any) -> list[Any]:
        from smollab.study.runspec import expand_lm

        return expand_lm(spec, kind=self.name)

    def execute(self, run_dir: Path, spec: Any, emit: Progress) -> dict[str, Any]:
        return execute_pretrain_run(run_dir, spec, emit)

    def preflight(self, spec: Any, session_dir: Path) -> None:
        from smollab.models.loader import check_source

        for m in spec.models:
            check_source(m.source)

    def prepare_session(self, spec: Any, session_dir: Path) -> list[str]:
        from smollab.io import atomic_write_json, write_jsonl

        task = _corpus_task(spec)
        # the held-out documents as `smollab eval --task corpus:FILE` reads them (ids kept)
        write_jsonl(session_dir / "data" / f"{task.name}_test.jsonl", task.docs())
        atomic_write_json(session_dir / "data" / f"{task.name}_split.json", task.data_info())
        return [task.name]

    def link_data(self, session_dir: Path, spec: Any, runs: list[Any]) -> None:
        from smollab.study.session import _link_train_data

        _link_train_data(session_dir, spec, runs)

    def aggregate(self, spec: Any, records: Any, run_dirs: Any, session: str) -> dict[str, Any]:
        return aggregate(spec, records, run_dirs, session)

    def critique(self, results: dict[str, Any]) -> str:
        lines = ["Automated critique (pretraining study)", ""]
        for name, c in results["conditions"].items():
            if c["trained"] and len(c["runs"]) < 3:
                lines.append(
                    f"- {name}: only {len(c['runs'])} seed(s); seed variance is not well "
                    "estimated (the intervals are over documents, not seeds)."
                )
        n_test = results["data"].get("n_test")
        if isinstance(n_test, int) and n_test < 20:
            lines.append(
                f"- Only {n_test} held-out document(s): the bootstrap intervals over documents "
                "are rough."
            )
        if len(lines) == 2:
            lines.append("- No problems found.")
        return "\n".join(lines) + "\n"

    def report(self, session_dir: Path, *, pdf: bool) -> tuple[Path | None, Path | None]:
        from smollab.io import atomic_write_text, read_json

        results = read_json(session_dir / "results" / "results.json")
        md = report_markdown(results)
        atomic_write_text(session_dir / "report.md", md)
        atomic_write_text(
            session_dir / "report.html",
            f"<!doctype html><meta charset='utf-8'><pre>{html.escape(md)}</pre>\n",
        )
        return None, None


def execute_pretrain_run(run_dir: Path, spec: Any, emit: Progress) -> dict[str, Any]:
    """One run: load the model, pretrain it on the corpus when the condition trains, then
    score every held-out document (``predictions/<task>.jsonl``, one record per document)."""
    from smollab.eval.harness import model_key
    from smollab.eval.lm import HFLM, RollingLoglikelihoodRequest
    from smollab.eval.runner import run_task, summarize
    from smollab.io import read_json, read_jsonl, write_jsonl
    from smollab.models.loader import load_run_base
    from smollab.models.loader import load_trained as _load_trained
    from smollab.study.worker import _finish_record, _now, begin_run
    from smollab.train import Trainer

    t_start = time.perf_counter()
    started = _now()
    env = begin_run(
        run_dir,
        spec.seed,
        spec.train.threads if spec.train else None,
        ("python", "numpy", "torch", "data_order"),
    )
    task = _corpus_task(spec)
    emit({"event": "stage", "stage": "load", "label": spec.label})
    lm = load_run_base(spec)
    train_summary = None
    if spec.train is not None:
        final = run_dir / "ckpt" / "final"
        if (run_dir / "train_summary.json").exists() and final.exists():
            train_summary = read_json(run_dir / "train_summary.json")
            lm.model = _load_trained(lm.model, final, spec.train.method)
            emit({"event": "stage", "stage": "train-reused", "label": spec.label})
        else:
            held = task.docs()[: spec.train.eval_items]

            def monitor(model: Any) -> dict[str, float]:
                """Validation loss (mean NLL per token) and token perplexity on the first
                eval_items held-out documents, scored as the final evaluation scores them."""
                hf = HFLM(
                    model,
                    lm.tokenizer,
                    batch_size=spec.eval.batch_size,
                    model_key="monitor",
                    onednn=False,
                )
                got = hf.loglikelihood_rolling(
                    [RollingLoglikelihoodRequest(d["text"]) for d in held]
                )
                nll = -sum(g.logprob for g in got) / max(1, sum(g.n_tokens for g in got))
                return {f"{task.name}/val_loss": nll, f"{task.name}/val_ppl": math.exp(nll)}

            trainer = Trainer(
                lm,
                spec.train,
                run_dir,
                task=task,
                fmt=None,
                seed=spec.seed,
                evaluate=monitor,
                compile=spec.train.compile or None,
                progress=lambda e: emit({**e, "label": spec.label}),
            )
            emit({"event": "stage", "stage": "prepare", "label": spec.label,
                  "total": spec.train.steps})  # fmt: skip
            trainer.setup()
            trainer.write_train_data(run_dir / "train_data.jsonl")
            emit({"event": "stage", "stage": "train", "label": spec.label,
                  "total": spec.train.steps, "step": trainer.step})  # fmt: skip
            trainer.fit()
            trainer.save_final()
            train_summary = read_json(run_dir / "train_summary.json")
            lm.model = trainer.model
    lm.model.eval()
    pred_path = run_dir / "predictions" / f"{task.name}.jsonl"
    if pred_path.exists():
        recs = read_jsonl(pred_path)
    else:
        docs = task.docs()
        emit({"event": "stage", "stage": "eval", "label": spec.label, "task": task.name,
              "total": len(docs)})  # fmt: skip
        bench_lm = HFLM(
            lm.model, lm.tokenizer, batch_size=spec.eval.batch_size, model_key=model_key(lm)
        )

        def progress(n: int) -> None:
            emit({"event": "eval_items", "n": n, "label": spec.label})

        recs, _ = run_task(bench_lm, task, run_dir / "predictions" / "samples", progress=progress)
        write_jsonl(pred_path, recs)
    metrics = summarize(task, recs)["metrics"]
    evals = {task.name: {m: metrics[m]["estimate"] for m in SHOWN}}
    return _finish_record(
        run_dir / "record.json", spec, emit, [task], evals, lm.info, train_summary, t_start,
        started, env,
    )  # fmt: skip


def aggregate(
    spec: Any, records: list[dict[str, Any]], run_dirs: dict[str, Path], session: str
) -> dict[str, Any]:
    """``results/results.json`` of a pretraining study: per condition, each run's corpus
    metrics with 95% bootstrap intervals over held-out documents (recomputed from its
    ``predictions/``), its training summary, and each metric's spread over seeds."""
    from smollab.analysis.stats import describe_seeds
    from smollab.io import read_jsonl
    from smollab.study.runspec import expand
    from smollab.tasks.corpus import corpus_metrics

    task = _corpus_task(spec)
    by_hash = {r["hash"]: r for r in records}
    conditions: dict[str, Any] = {}
    for run in expand(spec):
        rec = by_hash.get(run.hash)
        if rec is None:
            continue
        preds = read_jsonl(run_dirs[run.hash] / "predictions" / f"{task.name}.jsonl")
        c = conditions.setdefault(
            run.condition,
            {"trained": run.train is not None, "model": run.model_name, "runs": []},
        )
        train = rec.get("train") or {}
        c["runs"].append(
            {
                "seed": run.seed,
                "hash": run.hash,
                "metrics": corpus_metrics(preds),
                "n_documents": len(preds),
                "n_tokens": sum(int(p["tokens"]) for p in preds),
                "train_steps": train.get("steps"),
                "train_tokens": train.get("tokens"),
                "final_train_loss": train.get("final_loss"),
            }
        )
    for c in conditions.values():
        c["over_seeds"] = {
            m: describe_seeds([r["metrics"][m]["estimate"] for r in c["runs"]]) for m in SHOWN
        }
    results = {
        "schema": "smollab.pretrain/1",
        "kind": "pretrain",
        "session": session,
        "study": spec.study.name,
        "task": task.name,
        "data": task.data_info(),
        "conditions": conditions,
    }
    results["summary"] = summary_lines(results)
    return results


def _iv(m: dict[str, Any]) -> str:
    return f"{m['estimate']:.4g} [{m['low']:.4g}, {m['high']:.4g}]"


def summary_lines(results: dict[str, Any]) -> list[str]:
    """One line per run: its perplexities with intervals and its training loss."""
    lines = [
        f"Held-out perplexity on {results['task']} ({results['data']['n_test']} documents; "
        "95% bootstrap intervals over documents):"
    ]
    for name, c in results["conditions"].items():
        for r in c["runs"]:
            m = r["metrics"]
            loss = (
                f"; final training loss {r['final_train_loss']:.4f}"
                if r["final_train_loss"] is not None
                else ""
            )
            lines.append(
                f"  {name}/seed{r['seed']}: token perplexity {_iv(m['token_perplexity'])}, "
                f"bits per byte {_iv(m['bits_per_byte'])}, word perplexity "
                f"{_iv(m['word_perplexity'])}{loss}"
            )
    return lines


def report_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# {results['study']}: pretraining on {results['task']}",
        "",
        f"Held-out documents: {results['data']['n_test']} "
        f"({results['data']['test_set']}); training documents: {results['data']['n_train']}. "
        "Metrics are corpus-level (weighted by tokens, words or bytes), with 95% percentile "
        "bootstrap intervals over documents.",
        "",
        "| condition | seed | " + " | ".join(SHOWN) + " | final train loss |",
        "|---|---|" + "---|" * len(SHOWN) + "---|",
    ]
    for name, c in results["conditions"].items():
        for r in c["runs"]:
            loss = r["final_train_loss"]
            lines.append(
                f"| {name} | {r['seed']} | "
                + " | ".join(_iv(r["metrics"][m]) for m in SHOWN)
                + f" | {'' if loss is None else f'{loss:.4f}'} |"
            )
    return "\n".join(lines) + "\n"


RUN_KINDS.register("pretrain")(PretrainKind())
