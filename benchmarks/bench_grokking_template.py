"""How far the published grokking baseline itself moves from seed to seed.

    OMP_NUM_THREADS=1 python benchmarks/bench_grokking_template.py --tasks x_plus_y \\
        --seeds 0 1 2 3 4 5 --workers 1
    # quick check of the script: --tasks x_plus_y --seeds 0 --steps 40
    # pool earlier result files and compare with smollab's runs (several files per name):
    python benchmarks/bench_grokking_template.py --from A.json B.json --tag pooled \\
        --compare mha=benchmarks/results/grokking_repro_mha.json,OTHER.json

The published baseline numbers (2363 / 4720 / 4200 steps to 99% validation accuracy) come from a
plain-PyTorch template run with 3 seeds. This script runs that protocol as the template does it,
outside smollab: the plain reference model of ``bench_grokking_speed.py`` (nn.MultiheadAttention,
post-LayerNorm, eager; ``torch.manual_seed(1337 + seed)`` before it is built, with 5 position
embeddings as the template has), the split as a Python ``random`` shuffle of all pairs (first half
for training), batches of 512 drawn one pair at a time with ``random.choice`` (with replacement),
AdamW (1e-3, betas 0.9/0.98, weight decay 0.5) with a ``LambdaLR`` warm-up of 50 steps, and after
every 10 steps an evaluation on 8 batches of 512 validation pairs drawn with replacement; the
step counted is the first evaluation with accuracy *above* 0.99 on those 4,096 draws. The one
change: the template leaves ``random`` unseeded, here it is ``random.Random(seed)``, so a run can
be repeated.

At each evaluation the script also scores the whole validation set (smollab's definition:
accuracy >= 0.99 on every held-out pair), so both step counts come from the same trajectory.
A run stops ``--stop-after`` steps after both have reached 99% (neither count depends on it).
Writes ``benchmarks/results/grokking_template[_TAG].json``.

``--compare NAME=RESULT.json ...`` (results of ``bench_grokking_repro.py``) sets smollab's
per-seed steps beside the template's, per task: medians, ranges and a two-sided Mann-Whitney U
test of "the two implementations grok at the same step" (exact for small samples).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grokking_speed import RefModel  # noqa: E402

from smollab.tasks import build_task, validate_task_config  # noqa: E402

OUT = Path(__file__).parent / "results" / "grokking_template.json"
PUBLISHED = {"x_plus_y": 2363, "x_minus_y": 4720, "x_div_y": 4200, "permutation": None}


def run_one(task_name: str, seed: int, steps: int, stop_after: int, p: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    cfg: dict[str, Any] = {"id": task_name, "task": f"grok.{task_name}"}
    if task_name != "permutation":
        cfg["p"] = p
    task = build_task(validate_task_config(cfg))
    toks = torch.from_numpy(task.tokens())
    labels = torch.from_numpy(task.labels())
    rng = random.Random(seed)
    order = list(range(task.n_pairs))
    rng.shuffle(order)
    n_train = int(task.n_pairs * 0.5)
    train, val = order[:n_train], order[n_train:]
    val_t = torch.tensor(val)
    torch.manual_seed(1337 + seed)
    model = RefModel(task.vocab_size, task.n_classes, pos_len=5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / 50, 1))
    step_template = step_full = None
    rows = []
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        model.train()
        for _ in range(10):
            idx = torch.tensor([rng.choice(train) for _ in range(512)])
            loss = F.cross_entropy(model(toks[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        model.eval()
        with torch.no_grad():
            correct = 0
            for _ in range(8):
                j = torch.tensor([rng.choice(val) for _ in range(512)])
                correct += int((model(toks[j]).argmax(-1) == labels[j]).sum())
            acc_t = correct / 4096
            acc_f = float((model(toks[val_t]).argmax(-1) == labels[val_t]).float().mean())
        rows.append((step, round(acc_t, 4), round(acc_f, 4)))
        if step_template is None and acc_t > 0.99:
            step_template = step
        if step_full is None and acc_f >= 0.99:
            step_full = step
        if step_template is not None and step_full is not None:
            if step >= max(step_template, step_full) + stop_after:
                break
    wall = time.perf_counter() - t0
    return {
        "task": task_name,
        "seed": seed,
        "step_val_acc_99_template_eval": step_template,
        "step_val_acc_99_full_val": step_full,
        "steps_run": step,
        "final_val_acc_full": rows[-1][2],
        "wall_s": round(wall, 1),
        "ms_per_step": round(1000 * wall / step, 1),
        "curve": rows,
    }


def summarise(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    vals = [r[key] for r in runs]
    reached = [v for v in vals if v is not None]
    out: dict[str, Any] = {"per_seed": vals, "reached": f"{len(reached)}/{len(vals)}"}
    if reached and len(reached) == len(vals):
        out["median"] = statistics.median(reached)
        out["mean"] = round(statistics.fmean(reached), 1)
        # every 3-seed mean the template could have reported from these seeds
        if len(reached) >= 3:
            from itertools import combinations

            means = sorted(statistics.fmean(c) for c in combinations(reached, 3))
            out["three_seed_means_min_max"] = [round(means[0], 1), round(means[-1], 1)]
    return out


def three_seed_medians_passing(vals: list[float], bar: float | None) -> str | None:
    """How many of the 3-seed subsets of ``vals`` have a median at or below ``bar``."""
    if bar is None or len(vals) < 3:
        return None
    from itertools import combinations

    subsets = list(combinations(vals, 3))
    passing = sum(statistics.median(c) <= bar for c in subsets)
    return f"{passing}/{len(subsets)}"


def compare(
    ours: list[float | None], template: list[int | None], path: str, bar: float | None = None
) -> dict[str, Any]:
    """smollab's per-seed steps against the template's (both on the whole validation set)."""
    from scipy.stats import mannwhitneyu, ttest_ind

    from smollab.analysis import shift_interval

    a = [float(x) for x in ours if x is not None]
    b = [float(x) for x in template if x is not None]
    out: dict[str, Any] = {
        "result_file": path,
        "per_seed": ours,
        "median": statistics.median(a) if a else None,
        "mean": round(statistics.fmean(a), 1) if a else None,
        "range": [min(a), max(a)] if a else None,
        "three_seed_medians_at_or_below_published": three_seed_medians_passing(a, bar),
        "template_median": statistics.median(b) if b else None,
        "template_mean": round(statistics.fmean(b), 1) if b else None,
        "template_range": [min(b), max(b)] if b else None,
        "template_three_seed_medians_at_or_below_published": three_seed_medians_passing(b, bar),
    }
    if len(a) >= 2 and len(b) >= 2:
        out["mann_whitney_p"] = round(float(mannwhitneyu(a, b, alternative="two-sided").pvalue), 4)
        out["welch_t_p"] = round(float(ttest_ind(a, b, equal_var=False).pvalue), 4)
        # Hodges-Lehmann shift (ours - template) with its distribution-free 95% interval
        out["shift_vs_template"] = shift_interval(a, b).to_dict()
    return out


def run_all(a: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = [(t, s) for t in a.tasks for s in a.seeds]
    runs = []
    with ProcessPoolExecutor(a.workers) as ex:
        futs = [ex.submit(run_one, t, s, a.steps, a.stop_after, a.p) for t, s in jobs]
        for f in futs:
            r = f.result()
            runs.append(r)
            print(
                f"{r['task']} seed {r['seed']}: template eval {r['step_val_acc_99_template_eval']}"
                f", full val {r['step_val_acc_99_full_val']} ({r['wall_s']} s)",
                flush=True,
            )
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["x_plus_y"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--steps", type=int, default=7500)
    ap.add_argument("--stop-after", type=int, default=50)
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tag", default="")
    ap.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="NAME=RESULT.json",
        help="bench_grokking_repro.py results to set beside the template's runs; "
        "NAME=A.json,B.json pools the seeds of several files",
    )
    ap.add_argument(
        "--from",
        dest="from_files",
        type=Path,
        nargs="+",
        default=None,
        help="summarise the runs of earlier result files instead of running (several files are "
        "pooled; the result goes to the --tag file, or without --tag back into the one file given)",
    )
    a = ap.parse_args()
    if a.from_files:
        res: dict[str, Any] = json.loads(a.from_files[0].read_text())
        runs = list(res["runs"])
        for f in a.from_files[1:]:
            runs += json.loads(f.read_text())["runs"]
        res["runs"] = runs
        if len(a.from_files) > 1:
            res["pooled_from"] = [str(f) for f in a.from_files]
        res["tasks"] = {}
        a.tasks = list(dict.fromkeys(r["task"] for r in runs))
        out = (
            OUT.with_name(f"grokking_template{'_' + a.tag if a.tag else ''}.json")
            if len(a.from_files) > 1 or a.tag
            else a.from_files[0]
        )
    else:
        t0 = time.perf_counter()
        runs = run_all(a)
        res = {
            "command": "python benchmarks/bench_grokking_template.py " + " ".join(sys.argv[1:]),
            "torch": torch.__version__,
            "threads_per_run": 1,
            "wall_s": round(time.perf_counter() - t0, 1),
            "load_average_1min_end": round(os.getloadavg()[0], 2),
            "tasks": {},
            "runs": runs,
        }
        out = OUT.with_name(f"grokking_template{'_' + a.tag if a.tag else ''}.json")
    for t in a.tasks:
        rs = [r for r in runs if r["task"] == t]
        res["tasks"][t] = {
            "published_3_seed_mean": PUBLISHED.get(t),
            "template_eval": summarise(rs, "step_val_acc_99_template_eval"),
            "full_val": summarise(rs, "step_val_acc_99_full_val"),
        }
        print(t, json.dumps(res["tasks"][t]), flush=True)
        for spec in a.compare:
            name, _, paths = spec.partition("=")
            per_seed: list[float | None] = []
            for path in paths.split(","):
                ours = json.loads(Path(path).read_text())["tasks"].get(t)
                if ours is not None:
                    per_seed += ours["step_val_acc_99"]
            if not per_seed:
                continue
            res["tasks"][t].setdefault("smollab", {})[name] = compare(
                per_seed, res["tasks"][t]["full_val"]["per_seed"], paths, PUBLISHED.get(t)
            )
            print(f"  vs {name}:", json.dumps(res["tasks"][t]["smollab"][name]), flush=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
