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
    args = ap.parse_args()

    import torch

    from smollab.eval.harness import make_task, run_eval, summary_rows
    from smollab.models import load_model

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    loaded = load_model(args.model, device=args.device)
    load_s = time.perf_counter() - t0
    tasks = [make_task(t, limit=args.limit, data_dir=str(args.data_dir)) for t in args.tasks]
    res = run_eval(loaded, tasks, args.out, batch_size=args.batch_size, use_cache=False)
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


if __name__ == "__main__":
    main()
