"""SmolLM2-135M on the full benchmarks, with the time each took: the numbers a user will quote.

    python benchmarks/bench_eval_full.py --data-dir ../shared/data --threads 2 \\
        [--tasks hellaswag gsm8k humaneval] [--limit N] [--batch-size 32] [--device cpu]

Runs ``smollab eval``'s engine (:func:`smollab.eval.harness.run_eval`) on the embedded
SmolLM2-135M(-Instruct): full HellaSwag validation (10,042 items, acc / acc_norm), full GSM8K
test (1,319, 5-shot strict-match / flexible-extract), HumanEval pass@1 (greedy, 164 problems,
tests in the sandbox). Prints a table and writes ``benchmarks/results/eval_full.json`` (per task:
metrics with 95% intervals, seconds, items/s) next to the per-item samples in ``--out``.
The request cache is off, so every number is computed afresh; ``--limit`` checks the script at
small sizes.

A long task can be split over processes (one core each) and merged, through ``smollab eval``'s
resume: ``--shard I/N`` evaluates the items whose index is I modulo N into ``OUT/shardIofN``
(prompts, few-shot draws and scoring are those of the whole run); then ``--merge N`` gathers the
shards' samples into ``OUT``, where the unsharded engine finds every item done and writes the
results. The time reported for a merged task is the sum of the shards' compute seconds (what one
process would have taken), next to the longest shard's.

    python benchmarks/bench_eval_full.py --tasks gsm8k --threads 1 --shard 0/2 &
    python benchmarks/bench_eval_full.py --tasks gsm8k --threads 1 --shard 1/2; wait
    python benchmarks/bench_eval_full.py --tasks gsm8k --merge 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", nargs="+", default=["hellaswag", "gsm8k", "humaneval"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SMOLLAB_DATA_DIR", "../shared/data"))
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/eval_full")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/eval_full.json")
    ap.add_argument(
        "--shard", default=None, metavar="I/N", help="evaluate items i with i %% N == I"
    )
    ap.add_argument("--merge", type=int, default=None, metavar="N", help="merge N shards' samples")
    args = ap.parse_args()
    if args.shard is not None and args.merge is not None:
        ap.error("--shard and --merge are separate steps: run the shards first, then --merge N")
    if args.merge is not None and args.merge < 1:
        ap.error(f"--merge {args.merge}: the number of shards must be at least 1")
    shard = None
    if args.shard is not None:
        try:
            i, n = (int(x) for x in args.shard.split("/"))
        except ValueError:
            ap.error(f"--shard {args.shard!r}: expected I/N, for example 0/2")
        if not 0 <= i < n:
            ap.error(f"--shard {args.shard!r}: I must be in [0, N)")
        shard = (i, n)
        args.out = args.out / f"shard{i}of{n}"
        args.json = args.json.with_suffix(f".shard{i}of{n}.json")

    import torch

    from smollab.eval.harness import make_task, run_eval, summary_rows
    from smollab.models import load_model

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    loaded = load_model(args.model, device=args.device)
    load_s = time.perf_counter() - t0
    tasks = [make_task(t, limit=args.limit, data_dir=str(args.data_dir)) for t in args.tasks]
    if shard is not None:
        for task in tasks:
            every = task.docs()
            task.docs = lambda every=every: [
                d for j, d in enumerate(every) if j % shard[1] == shard[0]
            ]  # type: ignore[method-assign]
    shard_times = merge_shards(args, tasks) if args.merge else {}
    res = run_eval(loaded, tasks, args.out, batch_size=args.batch_size, use_cache=False)
    for name, (total, longest) in shard_times.items():
        t = res["tasks"][name]
        t["seconds"], t["longest_shard_seconds"] = total, longest
        t["items_per_second"] = round(t["n"] / total, 3)
    summary = {
        "model": args.model,
        "threads": args.threads,
        "device": args.device,
        "batch_size": args.batch_size,
        "model_load_seconds": round(load_s, 2),
        "tasks": {
            name: {
                "n": t["n"],
                "metrics": t["metrics"],
                "pass_at_k": t.get("pass_at_k"),
                "seconds": t["seconds"],
                "items_per_second": t["items_per_second"],
                "truncated": t["truncated"],
                **(
                    {"shards": args.merge, "longest_shard_seconds": t["longest_shard_seconds"]}
                    if "longest_shard_seconds" in t
                    else {}
                ),
                **({"shard": args.shard} if shard else {}),
            }
            for name, t in res["tasks"].items()
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1) + "\n")
    for task, metric, value, n in summary_rows(res):
        print(f"{task:12s} {metric:18s} {value:28s} n={n}")
    for name, t in res["tasks"].items():
        print(f"{name:12s} {t['n']} items in {t['seconds']:.1f} s ({t['items_per_second']} it/s)")
    print(f"written {args.json} and {args.out}/")


def merge_shards(args: argparse.Namespace, tasks: list) -> dict[str, tuple[float, float]]:
    """Copy the N shards' samples of each task into ``args.out`` (the engine then resumes every
    item); return per task (sum, max) of the shards' compute seconds."""
    import shutil

    from smollab.io import read_jsonl, write_jsonl

    times = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        name, secs, rows = task.name, [], []
        for i in range(args.merge):
            d = args.out / f"shard{i}of{args.merge}"
            done = json.loads((d / "results.json").read_text())["tasks"] if d.exists() else {}
            if name not in done:
                sys.exit(
                    f"error: {d} has no finished {name!r}: run this script with --shard "
                    f"{i}/{args.merge} (same --tasks, --limit and --out) before --merge."
                )
            secs.append(done[name]["compute_seconds"])
            rows += read_jsonl(d / f"samples_{name}.jsonl")
        meta = f"samples_{name}.meta.json"
        shutil.copy(args.out / f"shard0of{args.merge}" / meta, args.out / meta)
        write_jsonl(args.out / f"samples_{name}.jsonl", rows)
        times[name] = (round(sum(secs), 3), round(max(secs), 3))
    return times


if __name__ == "__main__":
    main()
