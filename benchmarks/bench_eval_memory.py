"""Peak memory (and CPU time) of a HellaSwag loglikelihood run of the evaluation harness.

    PYTHONPATH=src python benchmarks/bench_eval_memory.py --limit 300 --data-dir ../shared/data

Loads the model, reads the data, then evaluates the first ``--limit`` HellaSwag items with
:class:`smollab.eval.lm.HFLM` (request cache off) and prints the process's peak resident memory
before and after the evaluation (``ru_maxrss``), the CPU seconds it took and the acc / acc_norm
counts. Run it with ``PYTHONPATH`` pointing at another checkout's ``src`` to compare versions.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, required=True)
    a = ap.parse_args()

    import torch

    import smollab
    from smollab.eval.harness import make_task
    from smollab.eval.lm import HFLM
    from smollab.eval.runner import run_task
    from smollab.models import load_model

    torch.set_num_threads(a.threads)
    loaded = load_model(a.model)
    lm = HFLM(loaded.model, loaded.tokenizer, batch_size=a.batch_size)
    task = make_task("hellaswag", limit=a.limit, data_dir=str(a.data_dir))
    task.docs()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as d:
        c0 = time.process_time()
        records, _ = run_task(lm, task, Path(d))
        cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "smollab": str(Path(smollab.__file__).parent),
                "model": a.model,
                "items": len(records),
                "batch_size": a.batch_size,
                "peak_rss_mib_before": round(before),
                "peak_rss_mib": round(peak),
                "cpu_seconds": round(cpu, 1),
                "acc": sum(r["acc"] for r in records),
                "acc_norm": sum(r["acc_norm"] for r in records),
            }
        )
    )


if __name__ == "__main__":
    main()
