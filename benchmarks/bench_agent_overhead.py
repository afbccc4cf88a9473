"""Agent bookkeeping vs study wall time (the bar: bookkeeping <= 5% of the study).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_agent_overhead.py [--steps 60]

Drives one scripted agent session (plan, write the spec, run it, critique, finish, write-up with a
claim check) over a small from-scratch study run by the real process executor, and reports:

* ``bookkeeping_s``: time the agent spends on its own work (prompts, ledger, state and
  transcript files, redaction, automated checks), measured inside the loop;
* ``outside_study_s``: all wall time outside ``run_study`` (bookkeeping plus the final report
  build and claim check), a looser upper bound;
* ``study_s``: wall time inside ``run_study`` (training, evaluation, analysis, figures).

Prints one JSON line and writes ``benchmarks/results/agent_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from smollab.agent import Agent, Limits
from smollab.providers import make_provider
from smollab.study.problem import load_problem

SPEC = """\
[study]
name = "bench-agent"
seeds = [0, 1, 2]

[[models]]
name = "tiny-gpt2"
source = "scratch:gpt2"
tokenizer = "char"
config = {{ n_layer = 2, n_head = 2, n_embd = 64, block_size = 64 }}

[[tasks]]
id = "add"
task = "arith.add"
strata = ["1x1", "1x2", "2x2"]
n_test = 50

[[conditions]]
name = "baseline"
format = "compact"

[[conditions]]
name = "ft"
format = "compact"
[conditions.train]
steps = {steps}
lr = 1e-3
warmup_steps = 2
batch_size = 16
seq_len = 64
eval_every = 0
checkpoint_every = {steps}
threads = 1

[eval]
batch_size = 50
"""

PROSE = (
    "After training, overall exact match was "
    "{{conditions.ft.tasks.add.overall.exact_match.estimate|pct}}."
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    spec = SPEC.format(steps=args.steps)
    replies = [
        {"text": "Plan: baseline vs a short fine-tune, 3 seeds."},
        {
            "text": "",
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": "study.toml", "content": spec}},
                {"name": "run_study", "arguments": {}},
            ],
        },
        {"text": "Ran."},
        {"text": "Critique: three seeds, intervals present."},
        {"text": "", "tool_calls": [{"name": "finish", "arguments": {}}]},
        {"text": PROSE},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "script.json").write_text(json.dumps(replies))
        (t / "problem.md").write_text("# Bench\n\n```toml\n" + spec + "```\n")
        agent = Agent(
            load_problem(t / "problem.md"),
            make_provider(f"scripted:{t / 'script.json'}"),
            out_root=t / "out",
            limits=Limits(max_iterations=1, pdf=False),
        )
        t0 = time.perf_counter()
        res = agent.run()
        total = time.perf_counter() - t0
    out = {
        "bench": "agent_overhead",
        "steps": args.steps,
        "total_s": round(total, 3),
        "study_s": round(agent.study_s, 3),
        "bookkeeping_s": round(agent.bookkeeping_s, 3),
        "outside_study_s": round(total - agent.study_s, 3),
        "bookkeeping_share": round(agent.bookkeeping_s / agent.study_s, 4),
        "outside_study_share": round((total - agent.study_s) / agent.study_s, 4),
        "bar": "bookkeeping_share <= 0.05",
        "met": agent.bookkeeping_s / agent.study_s <= 0.05,
        "claims_ok": res.claims_ok,
        "loadavg_1m": os.getloadavg()[0],
    }
    line = json.dumps(out)
    print(line)
    dst = Path(__file__).with_name("results") / "agent_overhead.json"
    dst.parent.mkdir(exist_ok=True)
    dst.write_text(line + "\n")


if __name__ == "__main__":
    main()
