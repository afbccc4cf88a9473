"""Where a fine-tuning step of the demo goes: torch.profiler over a few steps, ops by CPU time.

    PYTHONPATH=src python benchmarks/bench_train_profile.py --steps 6 --threads 2

Runs ``--steps`` steps of the demo's recipe (``problems/multiplication.md``: SmolLM2-135M, full
fine-tuning, batch 64 of one short problem per row; bf16 autocast where the CPU has native bf16,
else float32) under ``torch.profiler`` and prints the profiler's table of ops by self CPU time
and each step's cumulative time. Profiling adds overhead: use it for shares, not step times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=30, help="ops shown")
    args = ap.parse_args()

    from torch.profiler import ProfilerActivity, profile

    from smollab.models import load_model
    from smollab.study.problem import load_problem
    from smollab.study.session import expand
    from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
    from smollab.train import Trainer

    torch.set_num_threads(args.threads)
    problem = load_problem(ROOT / "problems" / "multiplication.md")
    spec = next(r for r in expand(problem.spec) if r.train is not None)
    train = spec.train.model_copy(
        update={"steps": args.steps, "eval_every": 0, "checkpoint_every": 10**6}
    )
    fmt = PROMPT_FORMATS.get(spec.format)
    task = build_task(validate_task_config(spec.tasks[0]))
    lm = load_model(spec.model.source, tokenizer=spec.model.tokenizer, seed=spec.seed)
    trainer = Trainer(lm, train, Path(tempfile.mkdtemp()), task=task, fmt=fmt, seed=spec.seed)
    trainer.setup()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.fit()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    rows = [json.loads(x) for x in trainer.metrics_path.read_text().splitlines()]
    print("cumulative s per step:", [r["time_s"] for r in rows])
    print("tokens (cumulative):", [r["tokens"] for r in rows])
    print("bf16 autocast:", trainer.bf16)


if __name__ == "__main__":
    main()
