"""Could a bf16 first pass with float32 re-scoring of close calls beat the float32 work bound?

    SMOLLAB_DATA_DIR=../shared/data PYTHONPATH=src OMP_NUM_THREADS=1 python \\
        benchmarks/bench_bf16_rescore.py --limit 500 [--out FILE]

The HellaSwag speed bar (3x lm-evaluation-harness's items/s with identical predictions) is out
of reach at float32 arithmetic on a CPU (BENCHMARKS.md). The CPU's bf16 matrix units are several
times faster; a cascade would score every item with a bf16 copy of the model, then re-score in
float32 only the items whose decision could flip: those whose top-two margin (in summed
log-probability for ``acc``, per character for ``acc_norm``) is under twice the largest bf16
error of one request. This script measures what that needs, on one thread: the float32 and bf16
CPU seconds of the item's requests (``HFLM.loglikelihood``, model loading excluded), the bf16
error of every request's log-probability against float32, the decisions bf16 alone flips, and
the share of items a re-score at the observed largest error would redo. The projected cascade
time is ``bf16 + share x float32`` (the largest error is only known after the fact, so the
projection is a best case). Prints one JSON object; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from smollab.eval.harness import make_task
from smollab.eval.lm import HFLM
from smollab.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("smollm2-135m")
    task = make_task("hellaswag", limit=args.limit, data_dir=args.data_dir)
    docs = task.docs()
    per_doc = [task.requests(doc) for doc in docs]
    reqs = [r for rs in per_doc for r in rs]

    def timed(model: torch.nn.Module) -> tuple[np.ndarray, float]:
        lm = HFLM(model, loaded.tokenizer, batch_size=32)
        t0 = time.process_time()
        res = lm.loglikelihood(reqs)
        return np.array([r.logprob for r in res]), time.process_time() - t0

    lp32, cpu32 = timed(loaded.model)
    lp16, cpu16 = timed(copy.deepcopy(loaded.model).to(torch.bfloat16))
    err = np.abs(lp16 - lp32)
    tau = float(err.max())
    flips = {"acc": 0, "acc_norm": 0}
    redo = 0
    k = 0
    for rs in per_doc:
        n = len(rs)
        a, b = lp32[k : k + n], lp16[k : k + n]
        chars = np.array([len(r.continuation) for r in rs], dtype=float)
        flips["acc"] += int(a.argmax() != b.argmax())
        flips["acc_norm"] += int((a / chars).argmax() != (b / chars).argmax())
        # the bf16 scores decide nothing if two choices are within 2 tau (per character: the
        # shortest ending's tau per character bounds every ending's)
        top = np.sort(b)[::-1]
        top_n = np.sort(b / chars)[::-1]
        redo += int(top[0] - top[1] < 2 * tau or top_n[0] - top_n[1] < 2 * tau / chars.min())
        k += n
    share = redo / len(docs)
    out = {
        "items": len(docs),
        "requests": len(reqs),
        "threads": args.threads,
        "float32_cpu_s": round(cpu32, 2),
        "bf16_cpu_s": round(cpu16, 2),
        "bf16_error_nats": {
            "mean": round(float(err.mean()), 4),
            "p99": round(float(np.quantile(err, 0.99)), 4),
            "max": round(tau, 4),
        },
        "bf16_decision_flips": flips,
        "share_rescored_at_max_error": round(share, 3),
        "projected_cascade_cpu_s": round(cpu16 + share * cpu32, 2),
        "projected_speedup_over_float32": round(cpu32 / (cpu16 + share * cpu32), 2),
    }
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
