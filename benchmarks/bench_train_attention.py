"""Attention in float32 under bf16 autocast on the CPU: the kernel alone, and the demo's training.

    PYTHONPATH=src python benchmarks/bench_train_attention.py --steps 8 --rounds 2

Part 1 times ``F.scaled_dot_product_attention`` forward + backward (causal, flash kernel) in
bf16 and in fp32 at several (batch, heads, length, head dim) shapes. Part 2 times training steps
of the demo's recipe (``problems/multiplication.md``: SmolLM2-135M, full fine-tuning, bf16
autocast, batch 64 of one short problem per row) with the trainer's float32 attention on
(``FP32_ATTENTION_MAX_LEN`` = 256) and off (0: attention in bf16, the code before), alternated
in fresh processes, and reports each arm's median step time (the first step, which warms up,
left out) and the loss after the last step. Writes ``benchmarks/results/train_attention.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "train_attention.json"
SHAPES = [(64, 9, 16, 64), (64, 9, 32, 64), (16, 9, 128, 64), (8, 12, 256, 64), (4, 12, 1024, 64)]


def kernel_ms(shape: tuple[int, int, int, int], dtype: torch.dtype, n: int = 10) -> float:
    """Milliseconds of one causal flash SDPA forward + backward at ``shape``."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(*shape, dtype=dtype, requires_grad=True) for _ in range(3))
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        for _ in range(2):
            F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
        t0 = time.perf_counter()
        for _ in range(n):
            F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    return (time.perf_counter() - t0) / n * 1e3


def train_steps(steps: int, max_len: int) -> dict[str, Any]:
    """``steps`` training steps of the demo recipe (seed 0) with the given float32 limit."""
    from smollab.models import load_model
    from smollab.study.problem import load_problem
    from smollab.study.session import expand
    from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
    from smollab.train import Trainer
    from smollab.train import trainer as trainer_module

    trainer_module.FP32_ATTENTION_MAX_LEN = max_len
    problem = load_problem(ROOT / "problems" / "multiplication.md")
    spec = next(r for r in expand(problem.spec) if r.train is not None)
    train = spec.train.model_copy(
        update={"steps": steps, "eval_every": 0, "checkpoint_every": 10**6}
    )
    fmt = PROMPT_FORMATS.get(spec.format)
    task = build_task(validate_task_config(spec.tasks[0]))
    lm = load_model(spec.model.source, tokenizer=spec.model.tokenizer, seed=spec.seed)
    trainer = Trainer(lm, train, Path(tempfile.mkdtemp()), task=task, fmt=fmt, seed=spec.seed)
    trainer.setup()
    trainer.fit()
    rows = [json.loads(x) for x in trainer.metrics_path.read_text().splitlines()]
    times = [b["time_s"] - a["time_s"] for a, b in zip(rows, rows[1:], strict=False)]
    return {"step_s": [round(t, 3) for t in times], "final_loss": rows[-1]["loss"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:  # one arm in a fresh process
        print(json.dumps(train_steps(args.steps, args.child)))
        return
    kernels = [
        {
            "shape_b_h_t_d": list(s),
            "bf16_ms": round(kernel_ms(s, torch.bfloat16), 2),
            "fp32_ms": round(kernel_ms(s, torch.float32), 2),
        }
        for s in SHAPES
    ]
    for k in kernels:
        print(f"SDPA fwd+bwd {k['shape_b_h_t_d']}: bf16 {k['bf16_ms']} ms, fp32 {k['fp32_ms']} ms")
    arms: dict[str, list[dict[str, Any]]] = {"fp32_attention": [], "bf16_attention": []}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for _ in range(args.rounds):
        for name, max_len in (("bf16_attention", 0), ("fp32_attention", 256)):
            cmd = [sys.executable, __file__, "--steps", str(args.steps),
                   "--threads", str(args.threads), "--child", str(max_len)]  # fmt: skip
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            arms[name].append(res)
            print(name, res)
    summary = {
        name: {
            "median_step_s": round(statistics.median(t for r in runs for t in r["step_s"][1:]), 3),
            "final_loss": [r["final_loss"] for r in runs],
        }
        for name, runs in arms.items()
    }
    speedup = (
        summary["bf16_attention"]["median_step_s"] / summary["fp32_attention"]["median_step_s"]
    )
    result = {
        "command": "PYTHONPATH=src python benchmarks/bench_train_attention.py "
        f"--steps {args.steps} --rounds {args.rounds} --threads {args.threads}",
        "torch": torch.__version__,
        "threads": args.threads,
        "kernels": kernels,
        "training": {"steps": args.steps, "runs": arms, "summary": summary},
        "training_speedup": round(speedup, 3),
    }
    print(json.dumps(summary), f"speed-up {speedup:.3f}x")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
