"""Batched greedy decoding vs one-at-a-time ``generate``: SmolLM2-135M, 512 arithmetic prompts.

    PYTHONPATH=src python benchmarks/bench_generate.py
    PYTHONPATH=src python benchmarks/bench_generate.py --seq-limit 128   # extrapolate sequential

Prompts: the ``arith.mul`` test set in the ``plain`` format (``Q: What is a * b? A:``) over the
nine strata 1x1..3x3 (32 items of 1x1, 60 of each other stratum: 512), ``max_new_tokens=8``, stop
at a newline, 2 threads. ``sequential_generate`` runs on all prompts (or on the first
``--seq-limit`` of a shuffled order, extrapolated to 512, and then flagged so); ``greedy_generate``
runs once per batch size in ``--batch-sizes``; outputs are compared item by item with the
sequential ones. Prints one JSON line and writes ``benchmarks/results/generate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch

from smollab.eval import greedy_generate, sequential_generate
from smollab.models import load_model
from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config

STRATA = [f"{a}x{b}" for a in (1, 2, 3) for b in (1, 2, 3)]


def prompts() -> tuple[list[str], list[str]]:
    """(prompts, true answers)."""
    cfg = {
        "id": "mul",
        "task": "arith.mul",
        "strata": STRATA,
        "n_test": 60,
        "n_test_per_stratum": {"1x1": 32},
    }
    task = build_task(validate_task_config(cfg))
    fmt = PROMPT_FORMATS.get("plain")
    items = task.test_set()
    return [fmt.prompt(ex) for ex in items], [ex.answer for ex in items]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="16,32,64,128")
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--seq-limit", type=int, default=0, help="0: sequential on every prompt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model("smollm2-135m")
    model, tok = lm.model, lm.tokenizer
    ps, answers = prompts()
    kw = {"max_new_tokens": args.max_new_tokens, "stop": ("\n",)}
    load_before = os.getloadavg()[0]

    seq_idx = list(range(len(ps)))
    if args.seq_limit:
        random.Random(0).shuffle(seq_idx)
        seq_idx = sorted(seq_idx[: args.seq_limit])
    t0 = time.perf_counter()
    seq_out = sequential_generate(model, tok, [ps[i] for i in seq_idx], **kw)
    seq_s = time.perf_counter() - t0
    seq_s_all = seq_s * len(ps) / len(seq_idx)
    reference = dict(zip(seq_idx, seq_out, strict=True))

    batched = {}
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        t0 = time.perf_counter()
        out = greedy_generate(model, tok, ps, batch_size=bs, **kw)
        dt = time.perf_counter() - t0
        mismatches = [i for i, o in reference.items() if out[i] != o]
        batched[bs] = {
            "seconds": dt,
            "prompts_per_s": len(ps) / dt,
            "speedup": seq_s_all / dt,
            "mismatches": len(mismatches),
            "mismatch_examples": [
                {"prompt": ps[i], "sequential": reference[i], "batched": out[i]}
                for i in mismatches[:5]
            ],
        }
    best_bs = min(batched, key=lambda b: batched[b]["seconds"])
    result = {
        "bench": "generate",
        "model": "smollm2-135m",
        "n_prompts": len(ps),
        "max_new_tokens": args.max_new_tokens,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": os.getloadavg()[0],
        "sequential": {
            "n_timed": len(seq_idx),
            "seconds_timed": seq_s,
            "seconds_for_all": seq_s_all,
            "extrapolated": len(seq_idx) < len(ps),
        },
        "batched": batched,
        "best_batch_size": best_bs,
        "speedup": batched[best_bs]["speedup"],
        "mismatches": batched[best_bs]["mismatches"],
        "mismatches_all_batch_sizes": sum(b["mismatches"] for b in batched.values()),
        "n_compared": len(reference),
        "answers_correct": sum(o.strip() == a for o, a in zip(out, answers, strict=True)),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                "bench": "generate",
                "sequential_s": round(seq_s_all, 2),
                "sequential_extrapolated": len(seq_idx) < len(ps),
                **{f"batched_s@{b}": round(v["seconds"], 2) for b, v in batched.items()},
                "best_batch_size": best_bs,
                "speedup": round(result["speedup"], 2),
                "mismatches": result["mismatches_all_batch_sizes"],
                "n_compared": len(reference),
            }
        )
    )


if __name__ == "__main__":
    main()
