"""Run benchmark tasks through the LM interface: per-item samples, then a summary with intervals.

:func:`run_task` evaluates a :class:`~smollab.tasks.bench.BenchTask` chunk by chunk and appends
each item's record to ``samples_<task>.jsonl`` as soon as its chunk is scored, so an interrupted
or failed run keeps what it finished; running again with the same model and task config skips
the items already in that file. :func:`summarize` turns the records into metrics with 95%
intervals (Wilson for 0/1 metrics, bootstrap otherwise, both from :mod:`smollab.analysis.stats`),
overall and per stratum where the records carry one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from smollab.analysis.stats import score_interval
from smollab.errors import ConfigError
from smollab.eval.lm import (
    HFLM,
    ContinuationTooLong,
    GenerateRequest,
    LoglikelihoodRequest,
    RollingLoglikelihoodRequest,
)
from smollab.io import append_jsonl, read_json, read_jsonl, write_jsonl
from smollab.tasks.bench import BenchTask

if TYPE_CHECKING:
    from smollab.eval.provider_lm import ApiTarget, ProviderLM

#: loglikelihood items scored, then written, at a time; ``SMOLLAB_EVAL_CHUNK`` overrides it (a
#: smaller chunk loses less to a crash and costs a little batching efficiency)
CHUNK = 256


def _chunk(task: BenchTask, lm: HFLM | ProviderLM) -> int:
    raw = os.environ.get("SMOLLAB_EVAL_CHUNK")
    if raw is None or raw == "":
        return CHUNK if task.request_type == "loglikelihood" else 2 * lm.batch_size
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(
            f"SMOLLAB_EVAL_CHUNK={raw!r} is not a whole number of items >= 1; set it to e.g. "
            "64, or unset it for the default (256 loglikelihood items, two generation batches)."
        )
    return int(raw)


def samples_key(model_key: str, task: BenchTask) -> str:
    """What the samples of a task depend on: the model and the task's config, minus what only
    chooses which items run or what is reported from them (:meth:`BenchTask.samples_config`:
    ``limit``; an exact-match task's selected strata; a code task's pass@k ``k``, keyed as the
    default so the keys of earlier samples stay what they were)."""
    cfg = task.samples_config()
    return hashlib.sha256(json.dumps([model_key, cfg], sort_keys=True).encode()).hexdigest()[:16]


def _done(samples: Path, key: str) -> dict[str, dict[str, Any]] | None:
    """Records already computed for this (model, task config), read only; None when ``samples``
    was written for another model or config (or has no meta file)."""
    meta = samples.with_suffix(".meta.json")
    if meta.exists() and read_json(meta).get("key") == key:
        return {r["id"]: r for r in read_jsonl(samples)} if samples.exists() else {}
    return None


def set_aside_path(samples: Path, key: str) -> Path:
    """Where the samples of another model or task config are kept: ``samples_<task>.<key>.jsonl``
    beside ``samples`` (its meta file beside it, as for ``samples``)."""
    return samples.with_name(f"{samples.name.removesuffix('.jsonl')}.{key}.jsonl")


def _resume(
    samples: Path, key: str, on_set_aside: Callable[[Path, int], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Records already computed for this (model, task config). A samples file written for
    another model or config is never mixed in, and never lost: it moves to
    :func:`set_aside_path` under its own key (``on_set_aside(path, records)`` is told), and
    comes back when that model and config run here again. A line a crash cut short is dropped
    from the file, so it stays valid JSONL."""
    meta = samples.with_suffix(".meta.json")
    done = _done(samples, key)
    if done is None and (samples.exists() or meta.exists()):
        old = read_json(meta).get("key") if meta.exists() else None
        tag = (
            old if isinstance(old, str) and old.isalnum() else time.strftime("unkeyed%Y%m%d%H%M%S")
        )
        rows = set_aside_path(samples, tag)
        n = len(read_jsonl(samples)) if samples.exists() else 0
        for src, dst in ((samples, rows), (meta, rows.with_suffix(".meta.json"))):
            if src.exists():
                os.replace(src, dst)
        if on_set_aside is not None and n:
            on_set_aside(rows, n)
    back = set_aside_path(samples, key)
    if done is None and back.exists() and back.with_suffix(".meta.json").exists():
        os.replace(back, samples)  # computed here before with this model and config
        os.replace(back.with_suffix(".meta.json"), meta)
        done = _done(samples, key)
    if done is None:
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"key": key}) + "\n")
        return {}
    if samples.exists():
        lines = sum(1 for line in samples.read_text(encoding="utf-8").splitlines() if line.strip())
        if lines != len(done):  # a torn line (or a repeated item): rewrite the file cleanly
            write_jsonl(samples, done.values())
    return done


def todo_requests(lm: HFLM | ProviderLM | ApiTarget, task: BenchTask, out_dir: Path) -> list[Any]:
    """The requests :func:`run_task` would send for the items not yet in ``out_dir``'s
    samples (what an API model's calls are bounded by before they are made). Writes nothing:
    ``out_dir`` need not exist."""
    done = _done(out_dir / f"samples_{task.name}.jsonl", samples_key(lm.model_key, task)) or {}
    return [r for d in task.docs() if d["id"] not in done for r in task.requests(d)]


#: a continuation of b UTF-8 bytes is at most b + this many tokens (byte-level BPE, character
#: and byte-fallback tokenizers give at most one token per byte; the margin covers special
#: tokens and a merge across the context boundary): only longer ones are tokenised to check
#: that they fit the window (the exact check still runs before each chunk is computed)
TOKEN_MARGIN = 16


def check_continuations(lm: Any, task: BenchTask, docs: Sequence[dict[str, Any]]) -> None:
    """Raise a ConfigError naming the first item of ``docs`` (and counting the others) with a
    loglikelihood continuation longer than ``lm``'s context window: it cannot be scored (the
    context is cut from the left to make room, never the continuation, as in
    lm-evaluation-harness). Tokenises only the continuations that might not fit; computes
    nothing. Tasks of other request types, and LMs without a window (API models), pass."""
    if task.request_type != "loglikelihood" or not hasattr(lm, "too_long"):
        return
    window = lm.max_length
    maybe = [
        (d, j, r)
        for d in docs
        for j, r in enumerate(cast(list[LoglikelihoodRequest], task.requests(d)))
        if len(r.continuation.encode()) + TOKEN_MARGIN > window
    ]
    if not maybe:
        return
    bad = lm.too_long([r for _, _, r in maybe])
    if bad:
        raise _too_long_error(task, [(maybe[i][0], maybe[i][1], n) for i, n in bad], window)


def _too_long_error(
    task: BenchTask, bad: Sequence[tuple[dict[str, Any], int, int]], window: int
) -> ConfigError:
    """The error for items whose continuation (request ``j`` of the item, ``n`` tokens) is
    longer than the window: the first one named, what to do, what is kept."""
    doc, j, n = bad[0]
    ids = list(dict.fromkeys(str(d["id"]) for d, _, _ in bad))
    pos = next(k for k, d in enumerate(task.docs()) if d["id"] == doc["id"])
    n_req = len(task.requests(doc))
    more = (
        f" {len(ids) - 1} more item(s) have the same problem ({', '.join(ids[1:6])}"
        f"{', ...' if len(ids) > 6 else ''})."
        if len(ids) > 1
        else ""
    )
    before = (
        f" or evaluate only the {pos} items before it (--limit {pos}; limit={pos} in a spec)"
        if pos
        else ""
    )
    return ConfigError(
        f"{task.name} item {doc['id']!r} (number {pos + 1} in the data; request {j + 1} of "
        f"{n_req}): its continuation is {n} tokens, longer than the model's context window of "
        f"{window} tokens. The context is cut from the left to make room, as "
        "lm-evaluation-harness does, but a continuation is scored whole, so this item cannot "
        f"be scored (lm-evaluation-harness stops on it too).{more} Use a model with a longer "
        f"window,{before}. Items already finished stay in samples_{task.name}.jsonl and are "
        "reused when you run again."
    )


def run_task(
    lm: HFLM | ProviderLM,
    task: BenchTask,
    out_dir: Path,
    *,
    progress: Callable[[int], None] | None = None,
    chunk: int | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """All records of ``task`` in document order, and the seconds spent computing new ones.

    Items are scored and written ``chunk`` at a time (default: ``SMOLLAB_EVAL_CHUNK``, else 256
    for loglikelihood tasks and two batches for generation, where an item costs far more and a
    crash should lose little).
    """
    from smollab.eval.exact_match import ExactMatchEval

    if isinstance(task, ExactMatchEval):  # through the study's evaluator
        return task.run(lm, out_dir, progress=progress, chunk=chunk)
    chunk = chunk or _chunk(task, lm)
    samples = out_dir / f"samples_{task.name}.jsonl"
    done = _resume(samples, samples_key(lm.model_key, task))
    docs = task.docs()
    todo = [d for d in docs if d["id"] not in done]
    check_continuations(lm, task, todo)  # before anything is computed
    if progress and len(todo) < len(docs):
        progress(len(docs) - len(todo))
    t0 = time.perf_counter()
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        per_doc = [task.requests(d) for d in part]
        flat = [r for rs in per_doc for r in rs]
        # progress counts items: an item is done when all its requests are
        if task.request_type == "loglikelihood":
            try:
                responses: list[Any] = lm.loglikelihood(cast(list[LoglikelihoodRequest], flat))
            except ContinuationTooLong as e:  # one check_continuations' bound let through
                at = [(d, j) for d, rs in zip(part, per_doc, strict=True) for j in range(len(rs))]
                raise _too_long_error(task, [(*at[e.index], e.n_tokens)], e.window) from None
        elif task.request_type == "loglikelihood_rolling":
            if not hasattr(lm, "loglikelihood_rolling"):
                raise ConfigError(
                    f"{task.name} scores the log-probability of whole texts (perplexity), "
                    "which an API model cannot return; evaluate it with a local model."
                )
            responses = lm.loglikelihood_rolling(cast(list[RollingLoglikelihoodRequest], flat))
        else:
            responses = lm.generate(cast(list[GenerateRequest], flat))
        grouped, i = [], 0
        for rs in per_doc:
            grouped.append(responses[i : i + len(rs)])
            i += len(rs)
        records = task.score_many(part, grouped)
        for d, rec, rs, got in zip(part, records, per_doc, grouped, strict=True):
            if task.request_type == "generate":
                rec["truncated"] = any(
                    lm.truncated(r) for r in rs if isinstance(r, GenerateRequest)
                )
            else:
                rec["truncated"] = any(x.truncated for x in got)
            append_jsonl(samples, rec)
            done[d["id"]] = rec
        if progress:
            progress(len(part))
    return [done[d["id"]] for d in docs], time.perf_counter() - t0


def metric_interval(values: Sequence[float], binary: bool = True) -> dict[str, Any]:
    """Mean with a 95% interval (:func:`~smollab.analysis.stats.score_interval`: Wilson for
    0/1 metrics, percentile bootstrap otherwise, never of zero width for scores in [0, 1])."""
    vals = [float(v) for v in values]
    return {**score_interval(vals, binary).to_dict(), "n": len(vals)}


def summarize(task: BenchTask, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics with intervals, overall and per stratum, plus the task's own aggregates."""
    out: dict[str, Any] = {
        "n": len(records),
        "metrics": {
            m: metric_interval([r[m] for r in records], m in task.binary_metrics)
            for m in task.metrics
        }
        if records
        else {},
        "truncated": sum(bool(r.get("truncated")) for r in records),
    }
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if "stratum" in r:
            by[str(r["stratum"])].append(r)
    if by:
        out["strata"] = {
            s: {
                m: metric_interval([r[m] for r in rs], m in task.binary_metrics)
                for m in task.metrics
            }
            for s, rs in sorted(by.items())
        }
    out.update(task.aggregate(records))
    return out
