"""Time ``HFLM.loglikelihood`` on HellaSwag and count what the model is fed.

    PYTHONPATH=src taskset -c 1 python benchmarks/bench_loglikelihood.py --limit 500 \\
        --data-dir ../shared/data [--src OTHER_CHECKOUT/src] [--model smollm2-135m]

Builds the task's requests (lm-eval's preprocessing, 4 endings per item), then times one
``loglikelihood`` call on one thread (CPU seconds, model loading and tokenisation of the data
excluded) and counts, by hooks, the positions fed through the model body and through the LM
head, padding included, and the multiply-adds they cost (SmolLM2-135M: 106.2M per body
position, 28.3M per LM-head position, as ``bench_hellaswag_work.py`` counts them). ``--src``
imports smollab from another checkout (a worktree of an older commit), so two versions can be
timed side by side, each pinned to its own core. Prints one JSON line; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--src", default=str(ROOT / "src"), help="the smollab checkout to time")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    import torch

    from smollab.eval.harness import make_task
    from smollab.eval.lm import HFLM
    from smollab.models import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    lm = HFLM(loaded.model, loaded.tokenizer, batch_size=args.batch_size)
    task = make_task("hellaswag", limit=args.limit, data_dir=args.data_dir)
    reqs = [r for doc in task.docs() for r in task.requests(doc)]
    counts = {"body": 0, "head": 0}

    def on_body(_mod, _args, kwargs):
        counts["body"] += kwargs["input_ids"].numel()

    def on_head(_mod, inputs):
        counts["head"] += inputs[0].shape[:-1].numel()

    model = loaded.model
    model.register_forward_pre_hook(on_body, with_kwargs=True)
    model.get_output_embeddings().register_forward_pre_hook(on_head)
    t0 = time.process_time()
    results = lm.loglikelihood(reqs)
    cpu = time.process_time() - t0
    preds = [(round(r.logprob, 2), r.is_greedy) for r in results]
    out = {
        "src": args.src,
        "model": args.model,
        "items": args.limit,
        "requests": len(reqs),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "cpu_seconds": round(cpu, 2),
        "body_positions": counts["body"],
        "head_positions": counts["head"],
        "gmac_smollm2": round((counts["body"] * 106.2e6 + counts["head"] * 28.3e6) / 1e9),
        "results_md5": hashlib.md5(repr(preds).encode()).hexdigest()[:12],
    }
    print(json.dumps(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
