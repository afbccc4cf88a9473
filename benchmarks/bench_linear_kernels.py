"""GFLOP/s of a linear layer on CPU: PyTorch's default ``F.linear`` (MKL) against oneDNN with a
pre-packed weight (what :mod:`smollab.models.cpu_kernels` uses during evaluation).

    PYTHONPATH=src python benchmarks/bench_linear_kernels.py --threads 1

Shapes are SmolLM2-135M's (hidden 576, MLP 1536, key/value 192, vocabulary 49152) at the row
counts of a HellaSwag batch (about 1,300 positions) and of decoding 32 or 8 sequences. Writes
``benchmarks/results/linear_kernels.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from smollab.models.cpu_kernels import onednn_available  # noqa: E402

SHAPES = [  # (rows, in, out)
    (1280, 576, 1536),
    (1280, 1536, 576),
    (1280, 576, 576),
    (1280, 576, 192),
    (1280, 576, 49152),
    (32, 576, 1536),
    (32, 1536, 576),
    (32, 576, 49152),
    (8, 576, 49152),
]


def seconds_per_call(fn, min_time: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternate the two kernels N times")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/linear_kernels.json")
    args = ap.parse_args()
    if not onednn_available():
        raise SystemExit("this PyTorch build has no oneDNN packed-linear ops; nothing to compare")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    head = ("rows", "in", "out", "F.linear GF/s", "oneDNN GF/s", "ratio")
    print("{:>5} {:>5} {:>6} {:>14} {:>12} {:>6}".format(*head))
    for m, k, n in SHAPES:
        x, w = torch.randn(m, k), torch.randn(n, k)
        packed = torch.ops.mkldnn._reorder_linear_weight(w)
        flop = 2 * m * k * n

        # best of alternating rounds: this machine's speed drifts within minutes
        def dense(x=x, w=w):
            return F.linear(x, w)

        def onednn(x=x, packed=packed):
            return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")

        mkl, dnn = [], []
        for _ in range(args.rounds):
            mkl.append(flop / seconds_per_call(dense, args.min_time) / 1e9)
            dnn.append(flop / seconds_per_call(onednn, args.min_time) / 1e9)
        diff = (onednn() - dense()).abs().max().item() / dense().abs().max().item()
        row = {
            "rows": m,
            "in": k,
            "out": n,
            "f_linear_gflops": max(mkl),
            "onednn_gflops": max(dnn),
            "max_rel_diff": diff,
        }
        rows.append(row)
        print(f"{m:5d} {k:5d} {n:6d} {max(mkl):14.1f} {max(dnn):12.1f} {max(dnn) / max(mkl):6.2f}")
    report = {
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
