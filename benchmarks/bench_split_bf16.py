"""Could the CPU's bf16 matrix units (AMX) give float32 linear layers faster? Measured, not used.

    PYTHONPATH=src python benchmarks/bench_split_bf16.py --threads 1

HellaSwag parity needs float32-level log-probabilities (lm-evaluation-harness runs float32), so
plain bf16 is out. The classic way round is to split each float32 operand into bf16 parts
(x = hi + mid + lo, 8 significant bits each) and add the products of the parts, each computed
exactly by the bf16 units with float32 accumulation: three products (hi*hi, hi*mid, mid*hi)
keep about 16 bits, six (adding hi*lo, mid*mid, lo*hi) about 24. PyTorch 2.13 on the CPU has no
bf16 x bf16 -> float32 matmul (``torch.mm(..., out_dtype=float32)`` is not implemented there),
but ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` runs a float32 ``F.linear`` on the
bf16 units, exactly for operands that are bf16 values; the parts are concatenated along the
inner dimension so that each split is one GEMM.

For SmolLM2-135M's shapes at a HellaSwag batch's row count, this prints the time per call and
the largest absolute error against float64 for: float32 (PyTorch's default), the bf16 mode on
float32 operands (one rounding), and the 3- and 6-product splits. Writes
``benchmarks/results/split_bf16.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(1280, 576, 1536), (1280, 1536, 576), (1280, 576, 576), (1280, 576, 49152)]


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hi = x.bfloat16().float()
    mid = (x - hi).bfloat16().float()
    lo = (x - hi - mid).bfloat16().float()
    return hi, mid, lo


def _time(f, reps: int) -> float:
    f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/split_bf16.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mk = torch.backends.mkldnn.matmul
    rows = []
    for n, k, m in SHAPES:
        x, w = torch.randn(n, k), torch.randn(m, k) / k**0.5
        ref = x.double() @ w.double().T
        xh, xm, xl = _split(x)
        wh, wm, wl = _split(w)
        x3, w3 = torch.cat([xh, xh, xm], 1), torch.cat([wh, wm, wh], 1)
        x6 = torch.cat([xh, xh, xm, xh, xm, xl], 1)
        w6 = torch.cat([wh, wm, wh, wl, wm, wh], 1)
        cases = {"float32": (x, w, "none"), "bf16 mode": (x, w, "bf16"),
                 "split x3": (x3, w3, "bf16"), "split x6": (x6, w6, "bf16")}  # fmt: skip
        row: dict[str, object] = {"shape": [n, k, m]}
        for name, (a, b, prec) in cases.items():
            mk.fp32_precision = prec
            try:
                s = _time(lambda a=a, b=b: F.linear(a, b), args.reps)
                err = (F.linear(a, b).double() - ref).abs().max().item()
            finally:
                mk.fp32_precision = "none"
            row[name] = {"ms": round(s * 1e3, 2), "max_abs_err": err}
        rows.append(row)
        print(n, k, m, "  ".join(f"{c}: {row[c]['ms']} ms, err {row[c]['max_abs_err']:.1e}"
                                 for c in cases))  # fmt: skip
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    out = {"torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
           "amx_bf16": "amx_bf16" in flags, "rows": rows}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
