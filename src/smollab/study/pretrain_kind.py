"""The ``pretrain`` study kind: pretrain language models on a raw-text corpus, report perplexity.

A study of this kind has one task, a ``corpus`` (:mod:`smollab.tasks.corpus`); each condition
either trains (``[conditions.train]``: the causal LM objective on every token of the training
documents, concatenated and cut into ``seq_len`` chunks) or is a baseline evaluated as it is.
Every run is evaluated on the held-out documents by rolling loglikelihood; validation loss is
logged every ``eval_every`` steps on the first ``eval_items`` held-out documents. Results
(``results/results.json``, kind ``pretrain``) hold per run the corpus-level perplexities with
95% bootstrap intervals over documents, per condition their spread over seeds and its
learning curves, and each condition against the reference (``[study] reference``; by default
the first baseline condition, else the first condition): the difference in bits per byte with a
paired bootstrap interval over the held-out documents (:func:`~smollab.analysis.stats.
paired_ratio_bootstrap_diff`). The report (:mod:`smollab.report.pretraining`) draws learning
curves and bits per byte per condition, and writes report.md/.html and a paper.
``smollab train --task corpus:PATH`` writes such a study.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError
from smollab.study.kinds import RUN_KINDS, Progress, RunKind

#: the metrics a run reports, in display order (smollab.tasks.corpus.CORPUS_METRICS)
SHOWN = ("token_perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte")

#: the schema of a pretraining study's results.json (/1 had no curves and no comparisons)
SCHEMA = "smollab.pretrain/2"
#: the level at which a comparison's bootstrap test (Holm-adjusted) must reject
ALPHA = 0.05


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
        if spec.study.targets:
            raise ConfigError(
                f"{source}: study.targets are accuracy targets of a language-model study; a "
                "pretraining study reports perplexity per condition. Remove them."
            )
        # a reference that names no condition is refused by the spec's own checks
        if spec.study.reference is not None and len(spec.conditions) < 2:
            raise ConfigError(
                f"{source}: field 'study.reference' is {spec.study.reference!r}, the only "
                "condition: there is no other condition to compare with it. Add another "
                "condition (another model, or a baseline evaluated as it is), or remove "
                "study.reference."
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
                    "estimated (with one seed the intervals are over documents only; with two, "
                    "the t interval over seeds is wide)."
                )
        n_test = results["data"].get("n_test")
        if isinstance(n_test, int) and n_test < 20:
            # no exact test on n paired documents goes below 2^(1-n), and the comparisons'
            # p-values are held there (analysis.stats.paired_ratio_bootstrap_diff); a
            # percentile bootstrap's interval over a handful of documents is still too narrow
            floor = f" (here {2.0 ** (1 - n_test):.3g})" if n_test > 1 else ""
            lines.append(
                f"- Only {n_test} held-out document(s): over so few a bootstrap's intervals "
                "are too narrow, and no test can give a p-value below 2^(1-n)"
                f"{floor}, where the comparisons' p-values are held. Hold out more "
                "documents (test_fraction) or give more as test_path."
            )
        for c in results.get("comparisons", []):
            # a side with several seeds widens the interval to the t interval over seeds;
            # with one seed on each side nothing does
            if c["n_seeds"] == 1 and c.get("n_seeds_reference") == 1:
                lines.append(
                    f"- {c['condition']} against {c['reference']}: one seed each, so the "
                    "interval and p-value are over documents only and do not count "
                    "seed-to-seed variation, which can be larger than such a difference: run "
                    "3 or more seeds."
                )
        lines += [f"- {n}" for n in results.get("notes", [])]
        if len(lines) == 2:
            lines.append("- No problems found.")
        return "\n".join(lines) + "\n"

    def report(self, session_dir: Path, *, pdf: bool) -> tuple[Path | None, Path | None]:
        from smollab.report.pretraining import build_pretrain_report

        return build_pretrain_report(session_dir, pdf=pdf)


def execute_pretrain_run(run_dir: Path, spec: Any, emit: Progress) -> dict[str, Any]:
    """One run: load the model, pretrain it on the corpus when the condition trains, then
    score every held-out document (``predictions/<task>.jsonl``, one record per document)."""
    from smollab.eval.harness import model_key
    from smollab.eval.lm import HFLM, RollingLoglikelihoodRequest
    from smollab.eval.runner import run_task, summarize
    from smollab.io import read_jsonl, write_jsonl
    from smollab.models.loader import load_run_base
    from smollab.study.worker import _finish_record, _now, begin_run, train_or_reuse

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
            got = hf.loglikelihood_rolling([RollingLoglikelihoodRequest(d["text"]) for d in held])
            nll = -sum(g.logprob for g in got) / max(1, sum(g.n_tokens for g in got))
            return {f"{task.name}/val_loss": nll, f"{task.name}/val_ppl": math.exp(nll)}

        train_summary = train_or_reuse(
            lm, spec, run_dir, emit, task=task, fmt=None, monitor=monitor
        )
    if train_summary is not None:
        # how many passes over the training tokens the run made: many, and it memorises them
        per_epoch = task.tokens_per_epoch(lm.tokenizer)
        train_summary = {
            **train_summary,
            "tokens_per_epoch": per_epoch,
            "epochs": train_summary["tokens"] / per_epoch if per_epoch else None,
        }
    # which tokenizer the run used, for the report's setup (char and BPE runs of one
    # scratch:ARCH look alike otherwise)
    lm.info["vocab_size"] = len(lm.tokenizer)
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
    """``results/results.json`` of a pretraining study (schema ``smollab.pretrain/2``): per
    condition, its settings and each run's corpus metrics with 95% bootstrap intervals over
    held-out documents (recomputed from its ``predictions/``), its training summary, and each
    metric's spread over seeds; each trained run's learning curves (``curves``); and each
    condition against the reference (``comparisons``, :func:`comparisons`)."""
    from smollab.analysis.stats import describe_seeds
    from smollab.io import read_jsonl
    from smollab.study.runspec import expand
    from smollab.tasks.corpus import corpus_metrics

    task = _corpus_task(spec)
    by_hash = {r["hash"]: r for r in records}
    conditions: dict[str, Any] = {}
    curves: dict[str, dict[str, Any]] = {}
    docs: dict[str, list[list[dict[str, Any]]]] = {}  # condition -> per seed, its documents
    for run in expand(spec):
        rec = by_hash.get(run.hash)
        if rec is None:
            continue
        preds = read_jsonl(run_dirs[run.hash] / "predictions" / f"{task.name}.jsonl")
        docs.setdefault(run.condition, []).append(preds)
        c = conditions.setdefault(
            run.condition,
            {
                "trained": run.train is not None,
                "model": run.model_name,
                "train": run.train.model_dump(mode="json") if run.train is not None else None,
                "seeds": [],
                "runs": [],
            },
        )
        c["seeds"].append(run.seed)
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
                "tokens_per_epoch": train.get("tokens_per_epoch"),
                "epochs": train.get("epochs"),
                "final_train_loss": train.get("final_loss"),
            }
        )
        if run.train is not None:
            curves.setdefault(run.condition, {})[str(run.seed)] = _curves(
                run_dirs[run.hash] / "metrics.jsonl", task.name
            )
    for c in conditions.values():
        c["over_seeds"] = {
            m: describe_seeds([r["metrics"][m]["estimate"] for r in c["runs"]]) for m in SHOWN
        }
    models = {}
    for m in spec.models:
        info: dict[str, Any] = next(
            (r["model_info"] for r in records if r["model_name"] == m.name), {}
        )
        models[m.name] = {
            "source": m.source,
            "config": dict(m.config or {}),
            "n_params": info.get("n_params"),
            # a scratch model's tokenizer is 'char' unless a folder is given; any other model
            # brings its own
            "tokenizer": m.tokenizer
            or ("char" if m.source.startswith("scratch:") else "the model's own"),
            "vocab_size": info.get("vocab_size"),
        }
    reference = reference_condition(spec, conditions)
    results = {
        "schema": SCHEMA,
        "kind": "pretrain",
        "session": session,
        "study": spec.study.name,
        "title": spec.study.title or "",
        "task": task.name,
        "data": task.data_info(),
        "models": models,
        "conditions": conditions,
        "curves": curves,
        "reference": reference,
        "alpha": ALPHA,
        "comparisons": comparisons(docs, reference) if reference is not None else [],
    }
    results["notes"] = task.data_notes() + epoch_notes(results)
    results["summary"] = summary_lines(results)
    return results


#: more passes than this over the training tokens is warned of (the model memorises them)
MAX_EPOCHS = 10


def epoch_notes(results: dict[str, Any]) -> list[str]:
    """A warning per trained condition whose runs passed over their training tokens more than
    :data:`MAX_EPOCHS` times, or whose seq_len exceeds the training corpus's token count (each
    training sequence then holds the whole corpus repeated). Runs written before epochs were
    recorded say nothing."""
    notes = []
    for name, c in results["conditions"].items():
        runs = [r for r in c["runs"] if r.get("epochs") is not None]
        if not c["trained"] or not runs:
            continue
        per_epoch = runs[0]["tokens_per_epoch"]
        most = max(r["epochs"] for r in runs)
        seq_len = (c.get("train") or {}).get("seq_len")
        if most > MAX_EPOCHS:
            notes.append(
                f"Condition {name} trained {_epochs(most)} epochs over its {per_epoch} training "
                f"tokens (more than {MAX_EPOCHS}): it has seen the same text so often that it "
                "can memorise it, and its held-out perplexity says how far that generalises. "
                "Give more training text, or fewer steps, a smaller batch_size or seq_len."
            )
        if seq_len is not None and seq_len > per_epoch:
            notes.append(
                f"Condition {name}: seq_len {seq_len} exceeds the {per_epoch} tokens of the "
                "training documents, so each training sequence holds the whole corpus repeated. "
                "Give more training text, or a seq_len of at most the corpus's tokens."
            )
    return notes


def _epochs(x: float) -> str:
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def reference_condition(spec: Any, conditions: dict[str, Any]) -> str | None:
    """What every other condition is compared with: ``[study] reference``; else the first
    baseline condition (a model evaluated as it is), else the first condition. None when it
    has no finished run or no other condition has one (nothing to compare)."""
    names = [c.name for c in spec.conditions]
    baselines = [c.name for c in spec.conditions if c.train is None]
    ref = spec.study.reference or (baselines[0] if baselines else names[0])
    if ref not in conditions or len(conditions) < 2:
        return None
    return str(ref)


def _curves(path: Path, task: str) -> dict[str, list[dict[str, Any]]]:
    """A run's training loss at every step and its validation loss (mean NLL per token on the
    first eval_items held-out documents) at every evaluation, from its ``metrics.jsonl``."""
    from smollab.io import read_jsonl

    rows = read_jsonl(path) if path.exists() else []
    key = f"{task}/val_loss"
    return {
        "train": [{"step": r["step"], "loss": r["loss"]} for r in rows if "loss" in r],
        "eval": [
            {"step": r["step"], "val_loss": r["eval"][key]}
            for r in rows
            if key in (r.get("eval") or {})
        ],
    }


def _matrix(per_seed: list[list[dict[str, Any]]], ids: list[str], field: str) -> Any:
    """``[n_seeds, n_documents]`` of a per-document field, documents in the order of ``ids``;
    NLL is ``-logprob``."""
    import numpy as np

    rows = []
    for recs in per_seed:
        by_id = {r["id"]: r for r in recs}
        sign = -1.0 if field == "logprob" else 1.0
        rows.append([sign * float(by_id[i][field]) for i in ids])
    return np.asarray(rows, dtype=float)


def comparisons(
    docs: dict[str, list[list[dict[str, Any]]]], reference: str
) -> list[dict[str, Any]]:
    """Each condition against ``reference`` on the same held-out documents (``docs``: per
    condition, each seed's per-document records). ``bits_per_byte`` is the difference
    (condition minus reference; negative: the condition compresses the text better) with a 95%
    paired bootstrap interval over documents and its bootstrap p-value, Holm-adjusted over the
    comparisons (``p_holm``); each condition's seeds are pooled by summing NLL and bytes over
    them, so its bits per byte is the mean of its seeds' (:func:`~smollab.analysis.stats.
    paired_ratio_bootstrap_diff`). Resampling documents does not see seed-to-seed variation,
    so where a side has several seeds the interval is widened to its hull with the t interval
    over the seeds' bits per byte (:func:`~smollab.analysis.stats.widen_with_seeds`, as an lm
    study's differences are) and the test's p-value is the larger of the bootstrap's and the
    seeds' t test's (``bits_per_byte_documents``, ``p_value_documents`` and
    ``p_value_seeds`` keep the parts). ``token_perplexity_ratio`` (condition over reference,
    pooled the same way: the geometric mean over seeds; widened alike on the log scale) is
    given only where both conditions cut every document into the same number of tokens (one
    tokenizer); else it is null and ``token_note`` says why. The verdict calls a difference
    only where the interval excludes 0 and the Holm-adjusted test rejects at :data:`ALPHA`;
    fewer bits per byte is better."""
    import numpy as np

    from smollab.analysis.stats import (
        Interval,
        holm_bonferroni,
        paired_ratio_bootstrap_diff,
        seed_pvalue,
        widen_with_seeds,
    )
    from smollab.analysis.stats import verdict as call

    ids = [r["id"] for r in docs[reference][0]]
    ref_nll, ref_bytes = (
        _matrix(docs[reference], ids, "logprob"),
        _matrix(docs[reference], ids, "bytes"),
    )
    ref_tokens = _matrix(docs[reference], ids, "tokens")
    out: list[dict[str, Any]] = []
    for name, per_seed in docs.items():
        if name == reference:
            continue
        nll, nbytes = _matrix(per_seed, ids, "logprob"), _matrix(per_seed, ids, "bytes")
        tokens = _matrix(per_seed, ids, "tokens")
        bpb_docs, p_docs = paired_ratio_bootstrap_diff(
            ref_nll, ref_bytes, nll, nbytes, transform=lambda x: x / math.log(2)
        )
        # seed-to-seed variation, which resampling documents does not see: the interval is
        # widened to the t interval over the seeds' bits per byte, and the test is the larger
        # of the two p-values (as an lm study's difference, smollab.analysis.results)
        seed_bpb = nll.sum(axis=1) / nbytes.sum(axis=1) / math.log(2)
        ref_seed_bpb = ref_nll.sum(axis=1) / ref_bytes.sum(axis=1) / math.log(2)
        bpb = widen_with_seeds(bpb_docs, ref_seed_bpb, seed_bpb)
        p_seeds = seed_pvalue(ref_seed_bpb, seed_bpb)
        p = p_docs if p_seeds is None else max(p_docs, p_seeds)
        same_tokens = bool((tokens == tokens[0]).all() and (ref_tokens == tokens[0]).all())
        ratio = None
        if same_tokens:  # widened alike, on the log scale (a difference of log perplexities)
            r = paired_ratio_bootstrap_diff(ref_nll, ref_tokens, nll, tokens, transform=np.exp)[0]
            log_r = widen_with_seeds(
                Interval(math.log(r.estimate), math.log(r.low), math.log(r.high), r.level,
                         r.method),
                ref_nll.sum(axis=1) / ref_tokens.sum(axis=1),
                nll.sum(axis=1) / tokens.sum(axis=1),
            )  # fmt: skip
            ratio = Interval(r.estimate, math.exp(log_r.low), math.exp(log_r.high), r.level,
                             log_r.method)  # fmt: skip
        out.append(
            {
                "condition": name,
                "reference": reference,
                "n_documents": len(ids),
                "n_seeds": len(per_seed),
                "n_seeds_reference": len(docs[reference]),
                "pooled_bits_per_byte": {
                    "condition": float(nll.sum() / nbytes.sum() / math.log(2)),
                    "reference": float(ref_nll.sum() / ref_bytes.sum() / math.log(2)),
                },
                "bits_per_byte": bpb.to_dict(),
                "bits_per_byte_documents": bpb_docs.to_dict(),
                "p_value": p,
                "p_value_documents": p_docs,
                "p_value_seeds": p_seeds,
                "token_perplexity_ratio": None if ratio is None else ratio.to_dict(),
                "token_note": None
                if same_tokens
                else "the two conditions cut the documents into different numbers of tokens "
                "(different tokenizers), so their token perplexities are not compared; bits per "
                "byte does not depend on the tokenizer",
            }
        )
    for c, p_holm in zip(out, holm_bonferroni([c["p_value"] for c in out]), strict=True):
        c["p_holm"] = p_holm
        c["verdict"] = call(
            Interval(**c["bits_per_byte"]), higher_is_better=False, p_value=p_holm, alpha=ALPHA
        )
    return out


def _iv(m: dict[str, Any]) -> str:
    """An estimate and its interval as the report prints them (:func:`~smollab.report.fmt.sig`:
    805842974, not 8.058e+08)."""
    from smollab.report.fmt import sig

    return f"{sig(m['estimate'])} [{sig(m['low'])}, {sig(m['high'])}]"


def summary_lines(results: dict[str, Any]) -> list[str]:
    """One line per run: its perplexities with intervals and its training loss; then one line
    per comparison with the reference."""
    n_test = results["data"]["n_test"]
    lines = [
        f"Held-out perplexity on {results['task']} ({n_test} document"
        f"{'' if n_test == 1 else 's'}; 95% bootstrap intervals over documents):"
    ]
    for name, c in results["conditions"].items():
        for r in c["runs"]:
            m = r["metrics"]
            loss = (
                f"; final training loss {r['final_train_loss']:.4f}"
                if r["final_train_loss"] is not None
                else ""
            )
            epochs = (
                f"; {_epochs(r['epochs'])} epochs of {r['tokens_per_epoch']} training tokens"
                if r.get("epochs") is not None
                else ""
            )
            lines.append(
                f"  {name}/seed{r['seed']}: token perplexity {_iv(m['token_perplexity'])}, "
                f"bits per byte {_iv(m['bits_per_byte'])}, word perplexity "
                f"{_iv(m['word_perplexity'])}{loss}{epochs}"
            )
    if results["comparisons"]:
        lines.append(
            f"Against {results['reference']} (bits per byte, condition minus reference; 95% "
            "paired bootstrap intervals over documents, seeds pooled, widened to the t "
            "interval over seeds where there are several):"
        )
    from smollab.report.fmt import pvalue

    for c in results["comparisons"]:
        b = c["bits_per_byte"]
        lines.append(
            f"  {c['condition']}: {b['estimate']:+.4f} [{b['low']:+.4f}, {b['high']:+.4f}], "
            f"Holm {pvalue(c['p_holm'])}: {c['verdict']}"
        )
    lines += results.get("notes", [])  # what was left out of the data, too many epochs
    return lines


RUN_KINDS.register("pretrain")(PretrainKind())
