"""How much work HellaSwag takes, ours against lm-eval's, counted in multiply-adds.

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/bench_hellaswag_work.py \\
        --data-dir ../shared/data --limit 500

Why the CPU speed bar (3x lm-eval's items/s) is or is not reachable with the same arithmetic.
Both harnesses run the same float32 model on the same tokens, and on this CPU both are
compute-bound in the linear layers, so the ratio of their multiply-adds bounds the speed-up
(times what faster kernels add). Counted for SmolLM2-135M on the first ``--limit`` items:

* **lm-eval** (batch 32): every ending is one sequence ``(context + ending)[:-1]`` through the
  whole model, LM head included; the requests sorted by length, 32 to a batch, each batch
  padded to its longest (its ``Collator``).
* **ours, measured**: what ``HFLM.loglikelihood`` (batch 32, as ``smollab eval`` runs) feeds the
  model, counted by hooks on the model's input and on the LM head's input, padding included.
* **ours without padding**: every context once, every ending's tokens but the last once, the LM
  head on the context's last position and those ending tokens.
* **the floor with exact arithmetic**: as above, and in addition every token prefix shared by
  several contexts (across items) and by several endings of an item computed once.
* **endings only**: the floor of any harness that must run each ending's tokens through the
  model with the same arithmetic (contexts for free).

A position through the body costs ``layers x (d*d (q) + 2*d*kv (k, v) + d*d (o) + 3*d*ff)``
multiply-adds and through the LM head ``d*vocab``; attention over the cache (5% of our time in a
profile) is left out of both. Writes ``benchmarks/results/hellaswag_work.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from smollab.eval.harness import make_task
from smollab.eval.lm import HFLM
from smollab.models import load_model

OUT = Path(__file__).parent / "results" / "hellaswag_work.json"


def per_position(config: Any) -> tuple[int, int]:
    """Multiply-adds of one position through the body and through the LM head."""
    d, ff, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = d // config.num_attention_heads * config.num_key_value_heads
    return n * (2 * d * d + 2 * d * kv + 3 * d * ff), d * config.vocab_size


def prefixes(seqs: list[tuple[int, ...]]) -> int:
    """Positions needed when every shared token prefix of ``seqs`` is computed once."""
    return len({s[:k] for s in seqs for k in range(1, len(s) + 1)})


def lmeval_positions(lengths: list[int], batch: int) -> int:
    """lm-eval's positions: requests sorted longest first, each batch padded to its longest."""
    order = sorted(lengths, reverse=True)
    return sum(order[i] * len(order[i : i + batch]) for i in range(0, len(order), batch))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--no-run", action="store_true", help="count tokens only (no model pass)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    loaded = load_model("smollm2-135m")
    body, head = per_position(loaded.model.config)
    lm = HFLM(loaded.model, loaded.tokenizer, batch_size=args.batch_size)
    task = make_task("hellaswag", limit=args.limit, data_dir=str(args.data_dir))
    docs = task.docs()
    per_doc = [task.requests(d) for d in docs]
    pairs = lm._encode_pairs([(r.context, r.continuation) for rs in per_doc for r in rs])
    # lm-eval
    lengths = [len(c) + len(x) - 1 for c, x in pairs]
    lm_pos = lmeval_positions(lengths, args.batch_size)
    # per item: its context and its endings
    items: list[tuple[tuple[int, ...], list[tuple[int, ...]]]] = []
    i = 0
    for rs in per_doc:
        ctx = tuple(pairs[i][0])
        items.append((ctx, [tuple(x) for _, x in pairs[i : i + len(rs)]]))
        i += len(rs)
    contexts = {c for c, _ in items}
    ctx_tokens = sum(len(c) for c in contexts)
    end_tokens = sum(len(x) - 1 for _, xs in items for x in xs)
    end_shared = sum(prefixes([x[:-1] for x in xs if len(x) > 1]) for _, xs in items)
    arms: dict[str, dict[str, int]] = {
        "lm_eval": {"body": lm_pos, "head": lm_pos},
        "ours_no_padding": {"body": ctx_tokens + end_tokens, "head": len(contexts) + end_tokens},
        "floor_exact": {
            "body": prefixes(sorted(contexts)) + end_shared,
            "head": len(contexts) + end_shared,
        },
        "endings_only": {"body": end_tokens, "head": end_tokens},
    }
    if not args.no_run:
        counts = {"body": 0, "head": 0}

        def on_model(_m: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            counts["body"] += kwargs["input_ids"].numel()

        def on_head(_m: Any, inputs: tuple[torch.Tensor, ...]) -> None:
            counts["head"] += inputs[0].numel() // inputs[0].shape[-1]

        h1 = loaded.model.register_forward_pre_hook(on_model, with_kwargs=True)
        h2 = loaded.model.lm_head.register_forward_pre_hook(on_head)
        t0 = time.perf_counter()
        lm.loglikelihood([r for rs in per_doc for r in rs])
        seconds = time.perf_counter() - t0
        h1.remove()
        h2.remove()
        arms = {"lm_eval": arms["lm_eval"], "ours_measured": dict(counts), **arms}
    total = {k: v["body"] * body + v["head"] * head for k, v in arms.items()}
    result = {
        "command": "PYTHONPATH=src python benchmarks/bench_hellaswag_work.py "
        f"--data-dir DATA --limit {args.limit}" + (" --no-run" if args.no_run else ""),
        "model": "smollm2-135m",
        "items": len(docs),
        "batch_size": args.batch_size,
        "macs_per_position": {"body": body, "head": head},
        "tokens": {
            "distinct_contexts": len(contexts),
            "context_tokens": ctx_tokens,
            "ending_tokens_fed": end_tokens,
            "lm_eval_real_tokens": sum(lengths),
        },
        "positions": arms,
        "gmacs": {k: round(v / 1e9, 1) for k, v in total.items()},
        "lm_eval_work_over": {
            k: round(total["lm_eval"] / v, 3) for k, v in total.items() if k != "lm_eval"
        },
        "our_pass_seconds": None if args.no_run else round(seconds, 1),
        "threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
