"""Time the corpus task's training chunks (``CorpusTask.train_sequences``) on one long document.

    PYTHONPATH=src python benchmarks/bench_corpus_chunking.py --chars 1000000 --seq-len 128 \\
        [--src OTHER_CHECKOUT/src]

A ``.txt`` file without blank lines is one document; pretraining cuts its tokens (char
tokenizer: one per character) into ``seq_len`` chunks, as many as one epoch holds. Prints one
JSON line: the document's length, the chunks made, the seconds they took and a digest of
the chunks (two versions must agree on it) (tokenisation
excluded: it is done once before the timer starts). ``--src`` imports smollab from another
checkout, so two versions can be compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--src", default=str(ROOT / "src"))
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    from smollab.models import load_model
    from smollab.tasks import build_task

    rng = random.Random(0)
    letters = string.ascii_lowercase + " "
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.txt"
        # one long document and a short one (the split holds the short one out)
        body = "".join(rng.choice(letters) for _ in range(args.chars))
        path.write_text(body + "\n\nshort held-out document.\n")
        task = build_task({"id": "c", "task": "corpus", "path": str(path), "test_fraction": 0.5})
        tok = load_model("scratch:gpt2", config={"n_layer": 1, "n_embd": 32, "n_head": 2}).tokenizer
        n = task.tokens_per_epoch(tok) // args.seq_len  # tokenised here, before the timer
        t0 = time.perf_counter()
        chunks, _ = task.train_sequences(tok, args.seq_len, n, seed=0)
        dt = time.perf_counter() - t0
    digest = hashlib.md5(json.dumps(chunks).encode()).hexdigest()[:12]
    out = {"src": args.src, "chars": args.chars, "seq_len": args.seq_len, "chunks": len(chunks),
           "seconds": round(dt, 3), "chunks_md5": digest}  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
