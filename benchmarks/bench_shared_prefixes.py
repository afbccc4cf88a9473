"""How many context tokens HellaSwag items share across items, by the length of the shared prefix.

    PYTHONPATH=src python benchmarks/bench_shared_prefixes.py --data-dir ../shared/data --limit 500

Loglikelihood rows share a context among its own endings (prefix trees, ``smollab.eval.lm``).
Sharing across items would put items whose contexts begin alike (same activity label, same
video) into one row. This counts, with SmolLM2's tokenizer and lm-eval's tokenisation, the
contexts' tokens and the tokens such sharing would save: contexts sorted by their tokens, each
sharing its longest common prefix with its neighbour, counted when that prefix has at least
``t`` tokens. Joining two contexts in a row widens its attention by the other's tokens (about
``w_row * w_new / (3 * d_model)`` positions' worth of work for SmolLM2's d_model 576), so short
shared prefixes save about what they cost. Prints one JSON line; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def common(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from smollab.eval.harness import make_task
    from smollab.eval.lm import HFLM
    from smollab.models import load_model

    loaded = load_model(args.model)
    lm = HFLM(loaded.model, loaded.tokenizer)
    task = make_task("hellaswag", limit=args.limit, data_dir=args.data_dir)
    reqs = [r for doc in task.docs() for r in task.requests(doc)]
    pairs = lm._encode_pairs([(r.context, r.continuation) for r in reqs])
    contexts = sorted({tuple(c) for c, _ in pairs})
    shared = [common(a, b) for a, b in zip(contexts, contexts[1:], strict=False)]
    out = {
        "model": args.model,
        "items": args.limit,
        "contexts": len(contexts),
        "context_tokens": sum(len(c) for c in contexts),
        "saved_tokens_by_min_prefix": {
            t: {"tokens": sum(s for s in shared if s >= t), "joins": sum(s >= t for s in shared)}
            for t in (1, 4, 8, 16, 24)
        },
    }
    print(json.dumps(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
