"""Parity with lm-evaluation-harness on raw-text perplexity (``loglikelihood_rolling``), per
document.

    python benchmarks/bench_corpus_parity.py --models tiny-gpt2 smollm2 --docs 100 \\
        --lm-eval-python /work/venvs/lmeval/bin/python --data-dir ../shared/data

The corpus is real text: ``--docs`` documents from GSM8K's test file (question, newline,
answer), of which ``--long`` are instead ``--long-parts`` consecutive problems joined by blank
lines, several windows long, so that the rolling windows are exercised. It is written as a
JSON Lines file (field ``text``) that both harnesses read: ours through ``smollab eval``'s
``corpus:PATH`` task (:class:`~smollab.tasks.corpus.CorpusFileTask`, run in this process, as
``bench_eval_parity.py`` runs ours), lm-eval 0.4.13 (its own venv, see ``bench_eval_parity.py``)
through a wikitext-style task config written here (``output_type: loglikelihood_rolling``,
``doc_to_target`` the text; metrics word_perplexity, byte_perplexity, bits_per_byte), with
``--log_samples``' per-document loglikelihoods. The models are ``bench_eval_parity.py``'s (a
tiny random GPT-2 with the real GPT-2 tokenizer; SmolLM2-135M from smollab's cache); each
harness is given the same window (``--window MODEL=N``: lm-eval's ``max_length`` model
argument, our ``HFLM(max_length=N)``), shorter than the documents so that windows roll.

Compares, per document, the loglikelihood (max abs difference) and the words and bytes
counted, and the corpus-level metrics of each. Times each harness on the same documents,
batch size and threads, model loading excluded (data loading included on both sides). Bar:
every document's loglikelihood within a relative ``--tol`` (default 1e-5) of lm-eval's, and the
same word and byte counts (lm-eval sums each window's log-probabilities in float32: a document
of a few thousand tokens differs by about 1e-3 nats from the same sum in float64).

Writes ``benchmarks/results/corpus_parity.json`` (override with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_eval_parity import lmeval_env, prepare_models  # noqa: E402  (also puts src/ on sys.path)

TASK_YAML = """\
task: smollab_corpus
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {corpus}
output_type: loglikelihood_rolling
test_split: test
doc_to_text: ""
doc_to_target: text
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""

# runs inside the lm-eval venv: evaluate, then dump each document's loglikelihood as JSON
DRIVER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    lm = HFLM(pretrained=args["model"], batch_size=args["batch_size"], device=args["device"],
              dtype="float32", max_length=args["max_length"])
    tm = TaskManager(include_path=args["include"])
    t0, c0 = time.perf_counter(), time.process_time()
    res = simple_evaluate(model=lm, tasks=["smollab_corpus"], task_manager=tm, log_samples=True,
                          random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                          bootstrap_iters=0)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    items = [{"doc_id": s["doc_id"], "logprob": s["word_perplexity"][0],
              "words": s["word_perplexity"][1], "bytes": s["byte_perplexity"][1]}
             for s in res["samples"]["smollab_corpus"]]
    json.dump({"seconds": dt, "cpu_seconds": cpu, "max_length": lm.max_length,
               "items": sorted(items, key=lambda s: s["doc_id"]),
               "results": res["results"]["smollab_corpus"]}, open(args["dump"], "w"))
    """
)


def build_corpus(data: Path, n_docs: int, n_long: int, long_parts: int, path: Path) -> None:
    """``n_docs`` GSM8K test problems as documents (question, newline, answer), ``n_long`` of
    them (spread evenly) replaced by ``long_parts`` further problems joined by blank lines."""
    rows = [json.loads(line) for line in (data / "gsm8k/test.jsonl").read_text().splitlines()]
    texts = [f"{r['question']}\n{r['answer']}" for r in rows]
    if n_docs + n_long * long_parts > len(texts):
        raise SystemExit(f"GSM8K test has {len(texts)} problems: ask for fewer documents")
    docs = texts[:n_docs]
    spare = iter(texts[n_docs:])
    for k in range(n_long):
        docs[(2 * k + 1) * n_docs // (2 * n_long)] = "\n\n".join(
            next(spare) for _ in range(long_parts)
        )
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))


def run_ours(model_dir: str, corpus: Path, window: int, args: argparse.Namespace) -> Any:
    import torch

    from smollab.eval.harness import make_task
    from smollab.eval.lm import HFLM
    from smollab.eval.runner import run_task, summarize
    from smollab.models import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(model_dir, device=args.device)
    lm = HFLM(loaded.model, loaded.tokenizer, batch_size=args.batch_size, max_length=window)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        task = make_task(f"corpus:{corpus}")
        records, _ = run_task(lm, task, Path(tmp))
        summary = summarize(task, records)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    lengths = [len(t) for t in lm.encode_many([d["text"] for d in task.docs()])]
    return {
        "seconds": dt,
        "cpu_seconds": cpu,
        "records": records,
        "tokens": lengths,
        "metrics": {k: v["estimate"] for k, v in summary["metrics"].items()},
    }


def run_lmeval(model_dir: str, corpus: Path, window: int, args: argparse.Namespace, work: Path):
    include = work / "lmeval_tasks"
    include.mkdir(parents=True, exist_ok=True)
    (include / "smollab_corpus.yaml").write_text(TASK_YAML.format(corpus=corpus.resolve()))
    env = lmeval_env(work, args.threads)
    dump = work / "lmeval_out.json"
    payload = {
        "model": model_dir,
        "batch_size": args.batch_size,
        "device": args.device,
        "threads": args.threads,
        "max_length": window,
        "include": str(include),
        "dump": str(dump),
    }
    log = work / "lmeval.log"
    with open(log, "w") as f:
        rc = subprocess.call(
            [args.lm_eval_python, "-c", DRIVER, json.dumps(payload)],
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if rc != 0:
        raise SystemExit(f"lm-eval failed:\n{log.read_text()[-4000:]}")
    return json.loads(dump.read_text())


def compare(ours: dict[str, Any], ref: dict[str, Any], window: int) -> dict[str, Any]:
    recs = ours["records"]
    if len(recs) != len(ref["items"]):
        raise SystemExit(f"ours scored {len(recs)} documents, lm-eval {len(ref['items'])}")
    diffs = [abs(o["logprob"] - r["logprob"]) for o, r in zip(recs, ref["items"], strict=True)]
    counts = [
        i
        for i, (o, r) in enumerate(zip(recs, ref["items"], strict=True))
        if (o["words"], o["bytes"]) != (r["words"], r["bytes"])
    ]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    lm_eval = {
        k.split(",")[0]: v
        for k, v in ref["results"].items()
        if k.split(",")[0] in ("word_perplexity", "byte_perplexity", "bits_per_byte")
    }
    return {
        "documents": len(recs),
        "window": window,
        "lm_eval_window": ref["max_length"],
        "tokens": sum(ours["tokens"]),
        "longest_document_tokens": max(ours["tokens"]),
        "documents_longer_than_window": sum(t > window for t in ours["tokens"]),
        "windows": sum(-(-t // window) for t in ours["tokens"]),
        "max_abs_logprob_diff": max(diffs),
        "mean_abs_logprob_diff": sum(diffs) / len(diffs),
        "max_rel_logprob_diff": max(
            d / abs(r["logprob"]) for d, r in zip(diffs, ref["items"], strict=True)
        ),
        "worst_document": {
            "index": worst,
            "ours": recs[worst]["logprob"],
            "lm_eval": ref["items"][worst]["logprob"],
            "tokens": ours["tokens"][worst],
        },  # fmt: skip
        "count_mismatches": counts,
        "metrics": {"ours": ours["metrics"], "lm_eval": lm_eval},
        "seconds": {"ours": ours["seconds"], "lm_eval": ref["seconds"]},
        "cpu_seconds": {"ours": ours["cpu_seconds"], "lm_eval": ref["cpu_seconds"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["tiny-gpt2", "smollm2"])
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--long", type=int, default=4, help="documents made of --long-parts problems")
    ap.add_argument("--long-parts", type=int, default=12)
    ap.add_argument(
        "--window",
        nargs="+",
        default=["tiny-gpt2=128", "smollm2=256"],
        metavar="MODEL=N",
        help="the context window (max_length) each harness uses for MODEL",
    )
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tol", type=float, default=1e-5, help="bar: max relative logprob difference")
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SMOLLAB_DATA_DIR", "../shared/data"))
    )
    ap.add_argument("--lm-eval-python", default="/work/venvs/lmeval/bin/python")
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/corpus_parity.json")
    args = ap.parse_args()
    windows = dict(w.split("=", 1) for w in args.window)
    work = args.work or Path(tempfile.mkdtemp(prefix="smollab-corpus-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.jsonl"
    build_corpus(args.data_dir, args.docs, args.long, args.long_parts, corpus)
    dirs = prepare_models(args.models, args.data_dir, work)
    report: dict[str, Any] = {
        "docs": args.docs,
        "long": args.long,
        "long_parts": args.long_parts,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "device": args.device,
        "models": {},
    }
    ok = True
    for name, d in dirs.items():
        window = int(windows[name])
        (work / name).mkdir(parents=True, exist_ok=True)
        ours = run_ours(d, corpus, window, args)
        ref = run_lmeval(d, corpus, window, args, work / name)
        cmp = compare(ours, ref, window)
        report["models"][name] = cmp
        ok &= cmp["max_rel_logprob_diff"] <= args.tol and not cmp["count_mismatches"]
        ok &= ref["max_length"] == window
        m = cmp["metrics"]
        print(
            f"{name}: {cmp['documents']} docs, {cmp['tokens']} tokens, window {window} "
            f"({cmp['documents_longer_than_window']} docs longer), max |dlogprob| "
            f"{cmp['max_abs_logprob_diff']:.2e} (relative {cmp['max_rel_logprob_diff']:.1e}), "
            f"count mismatches {len(cmp['count_mismatches'])}; "
            f"ours {cmp['seconds']['ours']:.1f} s, lm-eval {cmp['seconds']['lm_eval']:.1f} s",
            flush=True,
        )
        for k in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
            print(f"   {k:16s} ours {m['ours'][k]:.6f}  lm-eval {m['lm_eval'][k]:.6f}")
        print(f"   token_perplexity ours {m['ours']['token_perplexity']:.6f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}; bar {'MET' if ok else 'NOT MET'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
