"""From-scratch training throughput: smollab's ``Trainer`` vs a nanoGPT-style reference loop.

    PYTHONPATH=src python benchmarks/bench_scratch_train.py            # eager Trainer + reference
    PYTHONPATH=src python benchmarks/bench_scratch_train.py --compile  # + Trainer(compile=True)

Both train a 4-layer, 4-head, 128-wide GPT-2 (block 64) with batch 32 on 2 threads, on packed
``arith.mul`` sequences (``--task``) in the ``plain`` format with the char tokenizer. ``arith.mul``
packs to ~63 of 64 tokens per row, so padding to the longest row of a batch (which the eager
Trainer does, the reference cannot) saves almost nothing; ``arith.add`` packs to ~59.
Throughput counts ``batch * seq_len`` input tokens per optimizer step and is measured after
``--warmup`` steps over ``--steps`` steps, from wall-clock timestamps of the Trainer's per-step
progress events (so per-step logging is included). With ``--compile`` the compile time (the
extra wall time of the warm-up steps over steady-state steps) is reported separately as
``warmup_overhead_s``: the first compiled run pays it in full (from a fresh on-disk inductor cache
with ``--fresh-compile-cache``), later runs in the same process hardly at all. Runs alternate
Trainer / reference ``--repeats`` times so that both see the same background load; the best
repeat of each is reported, and the 1-minute load average before each run is recorded (it
should stay near 2, this benchmark's own threads, for the numbers to mean anything).
Prints one JSON line and writes ``benchmarks/results/scratch_train.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from smollab.models import load_model
from smollab.study.spec import TrainSpec
from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
from smollab.train import Trainer
from smollab.train.data import pack_examples

MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64}
BATCH, SEQ_LEN = 32, 64


# ---------------------------------------------------------------- nanoGPT-style reference
class Attention(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.c_attn, self.c_proj, self.h = nn.Linear(d, 3 * d), nn.Linear(d, d), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.h, -1).transpose(1, 2) for t in self.c_attn(x).split(C, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(d), Attention(d, h), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int, n_layer: int, n_head: int, n_embd: int, block_size: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f, self.lm_head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as nanoGPT
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def reference_run(data: torch.Tensor, vocab: int, steps: int, warmup: int) -> dict[str, float]:
    """nanoGPT's train.py loop on CPU: random windows of the token stream, AdamW (its CPU default,
    the single-tensor loop), grad clip 1.0, cosine lr; loss.item() every 10 steps."""
    torch.manual_seed(0)
    model = GPT(vocab, **MODEL)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.95),
    )

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(data) - SEQ_LEN, (BATCH,))
        x = torch.stack([data[i : i + SEQ_LEN] for i in ix]).long()
        y = torch.stack([data[i + 1 : i + 1 + SEQ_LEN] for i in ix]).long()
        return x, y

    total = warmup + steps
    stamps = []
    X, Y = get_batch()
    for it in range(total):
        lr = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * it / total))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(X, Y)
        X, Y = get_batch()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if it % 10 == 0:
            loss.item()
        stamps.append(time.perf_counter())
    return _rates(stamps, warmup)


# ---------------------------------------------------------------- smollab Trainer
TASK = "arith.mul"


def _task():
    cfg = {"id": "t", "task": TASK, "n_test_per_stratum": {"1x1": 32}}
    return build_task(validate_task_config(cfg))


def trainer_run(
    steps: int, warmup: int, compile: bool, activation: str | None = None
) -> dict[str, float]:
    torch.set_num_threads(2)
    lm = load_model("scratch:gpt2", config=MODEL, seed=0)
    if activation:  # what-if: the scratch config with another GPT-2 activation function
        from transformers import AutoModelForCausalLM

        lm.model.config.activation_function = activation
        torch.manual_seed(0)
        lm.model = AutoModelForCausalLM.from_config(lm.model.config)
    spec = TrainSpec(
        steps=warmup + steps,
        lr=1e-3,
        warmup_steps=10,
        batch_size=BATCH,
        seq_len=SEQ_LEN,
        pack=True,
        eval_every=0,
        checkpoint_every=10**9,
        threads=2,
    )
    stamps: list[float] = []

    def progress(e: dict) -> None:
        if e["event"] == "train_step":
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(
            lm,
            spec,
            Path(d),
            task=_task(),
            fmt=PROMPT_FORMATS.get("plain"),
            seed=0,
            progress=progress,
            compile=compile,
        )
        t0 = time.perf_counter()
        trainer.setup()
        setup_s = time.perf_counter() - t0
        stamps.append(time.perf_counter())
        summary = trainer.fit()
    out = _rates(stamps[1:], warmup, first=stamps[0])
    lengths = trainer._lengths.float()
    out.update(
        setup_s=setup_s,
        final_loss=summary["final_loss"],
        mean_row_tokens=float(lengths.mean()),
    )
    return out


def _rates(stamps: list[float], warmup: int, first: float | None = None) -> dict[str, float]:
    """Steady-state tokens/s over the steps after ``warmup``; the warm-up's extra time."""
    steps = len(stamps) - warmup
    steady = stamps[-1] - stamps[warmup - 1]
    step_s = steady / steps
    times = [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=False)][warmup:]
    start = first if first is not None else stamps[0] - step_s
    return {
        "tokens_per_s": steps * BATCH * SEQ_LEN / steady,
        "step_ms": 1e3 * step_s,
        "median_step_ms": 1e3 * statistics.median(times),
        "measured_steps": steps,
        "warmup_overhead_s": (stamps[warmup - 1] - start) - warmup * step_s,
    }


def _token_stream() -> tuple[torch.Tensor, int]:
    """The same packed arithmetic text the Trainer sees, as one stream (nanoGPT's data layout)."""
    from smollab.models.tokenizers import char_tokenizer

    tok = char_tokenizer()
    seqs, _ = pack_examples(
        _task().train_examples(4000, seed=0), tok, PROMPT_FORMATS.get("plain"), SEQ_LEN, 1500
    )
    return torch.tensor([t for s in seqs for t in s.input_ids], dtype=torch.int16), len(tok)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_busy() -> float:
    """The 1-minute load average: well above the thread count means the timings are contended."""
    return os.getloadavg()[0]


def main() -> None:
    global TASK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150, help="measured steps (after warm-up)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time Trainer(compile=True)")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument(
        "--activation",
        default=None,
        help="what-if: also time the Trainer with this GPT-2 activation_function "
        "(e.g. gelu_pytorch_tanh; the scratch default is gelu_new)",
    )
    ap.add_argument("--fresh-compile-cache", action="store_true")
    ap.add_argument("--task", default=TASK, choices=["arith.mul", "arith.add"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scratch_train.json"))
    args = ap.parse_args()
    TASK = args.task
    if args.fresh_compile_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    torch.set_num_threads(2)
    data, vocab = _token_stream()
    load_before = _cpu_busy()
    runs: dict[str, list[dict[str, float]]] = {"trainer": [], "reference": []}
    variants = {"trainer": (False, None)}
    if args.compile:
        variants["trainer_compiled"] = (True, None)
    if args.activation:
        variants[f"trainer_{args.activation}"] = (False, args.activation)
        if args.compile:
            variants[f"trainer_compiled_{args.activation}"] = (True, args.activation)
    runs.update({k: [] for k in variants})
    for _ in range(args.repeats):
        for name, (compile, activation) in variants.items():
            load = _cpu_busy()
            runs[name].append(trainer_run(args.steps, args.warmup, compile, activation))
            runs[name][-1]["loadavg_1m_before"] = load
        if not args.no_reference:
            load = _cpu_busy()
            runs["reference"].append(reference_run(data, vocab, args.steps, args.warmup))
            runs["reference"][-1]["loadavg_1m_before"] = load
    best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items() if v}
    result = {
        "bench": "scratch_train",
        "task": TASK,
        "model": MODEL,
        "batch": BATCH,
        "seq_len": SEQ_LEN,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": _cpu_name(),
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": _cpu_busy(),
        "best": best,
        "all": runs,
    }
    if "reference" in best:
        result["speedup_vs_reference"] = {
            k: v["tokens_per_s"] / best["reference"]["tokens_per_s"]
            for k, v in best.items()
            if k != "reference"
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: round(v["tokens_per_s"]) for k, v in best.items()}
    print(
        json.dumps(
            {
                "bench": "scratch_train",
                "tokens_per_s": summary,
                **{k: result[k] for k in ("speedup_vs_reference",) if k in result},
            }
        )
    )


if __name__ == "__main__":
    main()
