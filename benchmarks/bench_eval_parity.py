"""Parity and speed against lm-evaluation-harness, item by item.

    python benchmarks/bench_eval_parity.py --models smollm2 tiny-gpt2 --limit 500 \\
        --lm-eval-python /work/venvs/lmeval/bin/python --data-dir ../shared/data

For each model (SmolLM2-135M from the embedded cache; a tiny random GPT-2 with the real GPT-2
tokenizer, saved to a local dir) and each task (HellaSwag acc/acc_norm, GSM8K 5-shot
strict-match/flexible-extract), both harnesses evaluate the first ``--limit`` items of the same
local files: ours in this process, lm-evaluation-harness (a separate venv; install it with
``python3 -m venv /work/venvs/lmeval && /work/venvs/lmeval/bin/pip install torch==2.13.0 &&
/work/venvs/lmeval/bin/pip install "lm-eval[hf]==0.4.13" transformers==5.23.0``) in a
subprocess, through task configs
written here that point its ``json`` dataset loader at the same files (offline: nothing is
downloaded). Per item it compares the predicted ending (acc and acc_norm) and, for GSM8K, the
completion and both extracted answers; every mismatch is listed. Speed: items/s of each on the
same items, batch size and threads, model loading excluded. Bar: ours >= 3x lm-eval's items/s
on HellaSwag; zero prediction mismatches.

On a GPU pass ``--device cuda`` and, as ``--lm-eval-python``, a Python with lm-eval and a CUDA
torch (``python3`` there, with lm-eval installed into it); the speed-up is then the ratio of wall
seconds, each harness's first-call CUDA warm-up included.

Long runs can be split: ``--start S`` evaluates only items [S, limit) of a ``--limit`` run (every
prompt is built as in that run, so the few-shot draws are the same), ``--lm-eval-procs K`` splits
lm-eval's items over K processes and ``--parallel`` runs them beside ours. Wall-clock speeds are
then not comparable (the processes share the cores); the CPU seconds still are.

Writes ``benchmarks/results/eval_parity.json`` (override with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TASK_YAML = {
    "hellaswag": """\
task: smollab_hellaswag
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    validation: {data}/hellaswag/hellaswag_val.jsonl.gz
output_type: multiple_choice
validation_split: validation
test_split: null
doc_to_text: "{{{{activity_label}}}}: {{{{ctx}}}}"
doc_to_target: "{{{{label}}}}"
doc_to_choice: "{{{{endings}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
""",
    # lm-eval 0.4.13's gsm8k.yaml, with the dataset pointed at the local files
    "gsm8k": """\
task: smollab_gsm8k
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    train: {data}/gsm8k/train.jsonl
    test: {data}/gsm8k/test.jsonl
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore:
      - ","
      - "\\\\$"
      - "(?s).*#### "
      - "\\\\.$"
generation_kwargs:
  until:
    - "Question:"
    - "</s>"
    - "<|im_end|>"
  do_sample: false
  temperature: 0.0
repeats: 1
num_fewshot: 5
filter_list:
  - name: "strict-match"
    filter:
      - function: "regex"
        regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: "take_first"
  - name: "flexible-extract"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: "take_first"
""",
}

# runs inside the lm-eval venv: evaluate, then dump per-item results as JSON
DRIVER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    lm = HFLM(pretrained=args["model"], batch_size=args["batch_size"], device=args["device"],
              dtype="float32")
    tm = TaskManager(include_path=args["include"])
    lo, hi = args["lo"], args["hi"]
    # every request of the --limit run is built (so few-shot draws are those of that run), but
    # only items with lo <= doc_id < hi are computed; the others get a placeholder and are dropped
    for name, blank in (("generate_until", ""), ("loglikelihood", (0.0, False))):
        def wrapped(reqs, disable_tqdm=False, _orig=getattr(lm, name), _blank=blank):
            keep = [r for r in reqs if lo <= r.doc_id < hi]
            got = iter(_orig(keep, disable_tqdm=disable_tqdm) if keep else [])
            return [next(got) if lo <= r.doc_id < hi else _blank for r in reqs]
        setattr(lm, name, wrapped)
    out = {}
    for task in args["tasks"]:
        t0, c0 = time.perf_counter(), time.process_time()
        res = simple_evaluate(model=lm, tasks=["smollab_" + task], task_manager=tm,
                              limit=args["limit"], log_samples=True, fewshot_random_seed=1234,
                              random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                              bootstrap_iters=0)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        samples = res["samples"]["smollab_" + task]
        items = []
        for s in samples:
            if not lo <= s["doc_id"] < hi:
                continue
            items.append({"doc_id": s["doc_id"], "filter": s.get("filter"),
                          "resps": s["resps"], "filtered_resps": s["filtered_resps"],
                          "metrics": {k: s[k] for k in ("acc", "acc_norm", "exact_match")
                                      if k in s}})
        out[task] = {"seconds": dt, "cpu_seconds": cpu, "items": items, "results": res["results"],
                     "partial": (lo, hi) != (0, args["limit"])}
    json.dump(out, open(args["dump"], "w"))
    """
)


def prepare_models(names: list[str], data: Path, work: Path) -> dict[str, str]:
    """Local model dirs both harnesses load: the SmolLM2 safetensors cache, a tiny GPT-2."""
    import torch

    from smollab.models import load_model

    dirs: dict[str, str] = {}
    for name in names:
        if name == "smollm2":
            dirs[name] = load_model("smollm2-135m").info["cache"]
        elif name == "tiny-gpt2":
            d = work / "tiny-gpt2"
            if not (d / "config.json").exists():
                m = load_model(
                    "scratch:gpt2",
                    tokenizer=str(data / "gpt2-tokenizer"),
                    config={"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 1024},
                    seed=0,
                )
                with torch.no_grad():  # a less flat random model: fewer exact ties
                    for p in m.model.parameters():
                        p.mul_(4.0)
                m.model.save_pretrained(d)
                m.tokenizer.save_pretrained(d)
            dirs[name] = str(d)
        else:
            raise SystemExit(f"unknown model {name!r}; use smollm2 or tiny-gpt2")
    return dirs


def run_ours(model_dir: str, tasks: list[str], args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from smollab.eval.harness import make_task
    from smollab.eval.lm import HFLM
    from smollab.eval.runner import run_task
    from smollab.models import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(model_dir, device=args.device)
    lm = HFLM(loaded.model, loaded.tokenizer, batch_size=args.batch_size)
    out = {}
    for t in tasks:
        with tempfile.TemporaryDirectory() as tmp:
            # data loading included, as in lm-eval's timing
            t0, c0 = time.perf_counter(), time.process_time()
            task = make_task(t, limit=args.limit, data_dir=str(args.data_dir))
            if args.start:  # the --limit run's prompts (few-shot draws), items [start, limit)
                docs = task.docs()[args.start :]
                task.docs = lambda docs=docs: docs  # type: ignore[method-assign]
            records, _ = run_task(lm, task, Path(tmp))
            out[t] = {
                "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - c0,
                "records": records,
            }
    return out


def lmeval_env(work: Path, threads: int) -> dict[str, str]:
    """The environment lm-eval runs in (its own venv): offline, its HF cache under ``work``,
    ``threads`` OpenMP threads, and no PYTHONPATH (smollab's src must not shadow its imports)."""
    env = dict(os.environ)
    env.update(
        HF_DATASETS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(work / "hf"),
        OMP_NUM_THREADS=str(threads),
        TOKENIZERS_PARALLELISM="false",
    )
    env.pop("PYTHONPATH", None)
    return env


def start_lmeval(
    model_dir: str, tasks: list[str], args: argparse.Namespace, work: Path
) -> list[tuple[subprocess.Popen[str], Path]]:
    """Start lm-eval on items [start, limit), split into ``--lm-eval-procs`` contiguous ranges
    that run as concurrent processes (each with ``--threads`` threads)."""
    include = work / "lmeval_tasks"
    include.mkdir(parents=True, exist_ok=True)
    for t in tasks:
        (include / f"smollab_{t}.yaml").write_text(
            TASK_YAML[t].format(data=args.data_dir.resolve())
        )
    env = lmeval_env(work, args.threads)
    k = max(1, args.lm_eval_procs)
    n = args.limit - args.start
    bounds = [args.start + n * i // k for i in range(k + 1)]
    procs = []
    for i in range(k):
        dump = work / f"lmeval_out_{i}.json"
        payload = {
            "model": model_dir,
            "tasks": tasks,
            "limit": args.limit,
            "lo": bounds[i],
            "hi": bounds[i + 1],
            "batch_size": args.lm_eval_batch_size or args.batch_size,
            "device": args.device,
            "threads": args.threads,
            "include": str(include),
            "dump": str(dump),
        }
        log = open(work / f"lmeval_{i}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [args.lm_eval_python, "-c", DRIVER, json.dumps(payload)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append((proc, dump))
    return procs


def finish_lmeval(procs: list[tuple[subprocess.Popen[str], Path]], work: Path) -> Any:
    """Wait for the lm-eval processes and merge their items; the timings are summed (CPU) and
    taken as the slowest process (wall)."""
    merged: dict[str, Any] = {}
    for i, (proc, dump) in enumerate(procs):
        if proc.wait() != 0:
            tail = (work / f"lmeval_{i}.log").read_text()[-4000:]
            raise SystemExit(f"lm-eval failed:\n{tail}")
        for t, r in json.loads(dump.read_text()).items():
            m = merged.setdefault(t, {"seconds": 0.0, "cpu_seconds": 0.0, "items": [], "parts": []})
            m["partial"] = r["partial"]
            m["seconds"] = max(m["seconds"], r["seconds"])
            m["cpu_seconds"] += r["cpu_seconds"]
            m["items"] += r["items"]
            m["parts"].append(r["results"])
    for m in merged.values():
        # lm-eval's own aggregate also counts the placeholder items outside [start, limit)
        parts = m.pop("parts")
        m["results"] = parts[0] if len(parts) == 1 and not m.get("partial") else None
    return merged


def item_scores(ref_items: list[dict[str, Any]], ours: list[dict[str, Any]]) -> dict[str, Any]:
    """Each harness's scores over the compared items, computed from its per-item metrics."""
    ids = {str(s["doc_id"]) for s in ref_items}
    ours = [r for r in ours if r["id"] in ids]
    ref: dict[str, list[float]] = {}
    for s in ref_items:
        for k, v in s["metrics"].items():
            name = k if s["filter"] in (None, "none") else f"{k},{s['filter']}"
            ref.setdefault(name, []).append(float(v))
    names = {"acc": "acc", "acc_norm": "acc_norm",
             "exact_match,strict-match": "strict_match",
             "exact_match,flexible-extract": "flexible_extract"}  # fmt: skip
    return {
        "lm_eval": {k: sum(v) / len(v) for k, v in ref.items()},
        "ours": {k: sum(float(r[names[k]]) for r in ours) / len(ours) for k in ref},
    }


def _argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def compare_hellaswag(ours: list[dict[str, Any]], ref: list[dict[str, Any]]) -> dict[str, Any]:
    mism, max_diff = [], 0.0
    by_id = {r["id"]: r for r in ours}
    for s in ref:
        doc_id = s["doc_id"]
        lls = [float(r[0]) for r in s["filtered_resps"]]
        o = by_id[str(doc_id)]
        max_diff = max(max_diff, max(abs(a - b) for a, b in zip(lls, o["logprobs"], strict=True)))
        ref_acc, ref_norm = s["metrics"]["acc"], s["metrics"]["acc_norm"]
        if (o["acc"], o["acc_norm"]) != (ref_acc, ref_norm) or o["pred"] != _argmax(lls):
            mism.append(
                {
                    "doc_id": doc_id,
                    "ours": {"pred": o["pred"], "acc": o["acc"], "acc_norm": o["acc_norm"]},
                    "lm_eval": {"pred": _argmax(lls), "acc": ref_acc, "acc_norm": ref_norm},
                    "ours_logprobs": o["logprobs"],
                    "lm_eval_logprobs": lls,
                }
            )
    return {"n": len(ref), "mismatches": mism, "max_abs_logprob_diff": max_diff}


def compare_gsm8k(ours: list[dict[str, Any]], ref: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {r["id"]: r for r in ours}
    key = {"strict-match": ("strict_pred", "strict_match"),
           "flexible-extract": ("flexible_pred", "flexible_extract")}  # fmt: skip
    mism, completions_differ = [], 0
    seen = set()
    for s in ref:
        o = by_id[str(s["doc_id"])]
        completion = s["resps"][0][0]
        if s["doc_id"] not in seen:
            seen.add(s["doc_id"])
            completions_differ += completion != o["completion"]
        pred_key, metric = key[s["filter"]]
        ref_pred = s["filtered_resps"][0]
        if o[pred_key] != ref_pred or o[metric] != s["metrics"]["exact_match"]:
            mism.append(
                {
                    "doc_id": s["doc_id"],
                    "filter": s["filter"],
                    "ours": {"pred": o[pred_key], "correct": o[metric]},
                    "lm_eval": {"pred": ref_pred, "correct": s["metrics"]["exact_match"]},
                    "ours_completion": o["completion"],
                    "lm_eval_completion": completion,
                }
            )
    return {"n": len(seen), "mismatches": mism, "completions_differ": completions_differ}


def compare_saved(args: argparse.Namespace) -> None:
    """``--compare-files``: the per-item comparison from saved results of one model and task
    (e.g. a run stopped before all of lm-eval's processes finished). Our timing is not in the
    samples file and is left out; lm-eval's is summed over the given dumps."""
    from smollab.io import read_jsonl

    (name,), (t,) = args.models, args.tasks
    ours_path, *dumps = args.compare_files
    ours = read_jsonl(ours_path)
    ref_items: list[dict[str, Any]] = []
    seconds = cpu = 0.0
    for d in dumps:
        r = json.loads(d.read_text())[t]
        ref_items += r["items"]
        seconds, cpu = seconds + r["seconds"], cpu + r["cpu_seconds"]
    cmp = (compare_hellaswag if t == "hellaswag" else compare_gsm8k)(ours, ref_items)
    cmp.update(
        lm_eval_seconds=seconds,
        lm_eval_cpu_seconds=cpu,
        doc_ids=[min(s["doc_id"] for s in ref_items), max(s["doc_id"] for s in ref_items)],
        scores=item_scores(ref_items, ours),
        from_files=[str(f) for f in args.compare_files],
    )
    report = {"limit": args.limit, "batch_size": args.batch_size, "threads": args.threads,
              "models": {name: {t: cmp}}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"{name} {t}: n={cmp['n']} doc_ids {cmp['doc_ids']} "
        f"mismatches={len(cmp['mismatches'])} scores={cmp['scores']}; written {args.out}"
    )
    sys.exit(0 if not cmp["mismatches"] else 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["smollm2", "tiny-gpt2"])
    ap.add_argument("--tasks", nargs="+", default=["hellaswag", "gsm8k"])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument(
        "--start",
        type=int,
        default=0,
        help="evaluate only items [start, limit) of the --limit run (same prompts and few-shot "
        "draws), e.g. to extend an earlier run",
    )
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--lm-eval-batch-size",
        type=int,
        default=None,
        help="lm-eval's batch size (default: --batch-size; lm-eval's own default is 1)",
    )
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--lm-eval-procs", type=int, default=1, help="split lm-eval's items over K processes"
    )
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="run lm-eval concurrently with ours (timings then share the cores; the CPU "
        "seconds stay comparable)",
    )
    ap.add_argument(
        "--same-core",
        action="store_true",
        help="pin ours and lm-eval to one CPU core, run them at the same time and ours again "
        "until lm-eval ends: the scheduler time-slices them, so this machine's speed drift "
        "hits both alike, and the speed-up is the ratio of CPU seconds (implies --parallel)",
    )
    ap.add_argument(
        "--bracket",
        action="store_true",
        help="run ours again after lm-eval and time ours as the mean of the two runs, which "
        "bracket lm-eval's in time (this machine's speed drifts by 15-40%% over minutes)",
    )
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SMOLLAB_DATA_DIR", "../shared/data"))
    )
    ap.add_argument("--lm-eval-python", default="/work/venvs/lmeval/bin/python")
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/eval_parity.json")
    ap.add_argument(
        "--compare-files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="compare saved results instead of running: our samples_<task>.jsonl, then "
        "lm-eval dumps (lmeval_out_<i>.json in --work) for the items they cover",
    )
    args = ap.parse_args()
    if args.compare_files:
        compare_saved(args)
        return
    if args.bracket and (args.parallel or args.same_core):
        ap.error("--bracket times runs one after the other: drop --parallel and --same-core")
    if args.same_core:
        if args.lm_eval_procs != 1 or args.threads != 1:
            ap.error("--same-core needs --threads 1 and one lm-eval process")
        args.parallel = True
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # lm-eval inherits it
    work = args.work or Path(tempfile.mkdtemp(prefix="smollab-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    dirs = prepare_models(args.models, args.data_dir, work)
    if not 0 <= args.start < args.limit:
        raise SystemExit(f"--start {args.start} must be in [0, --limit {args.limit})")
    report: dict[str, Any] = {
        "limit": args.limit,
        "start": args.start,
        "lm_eval_procs": args.lm_eval_procs,
        "parallel": args.parallel,
        "bracket": args.bracket,
        "same_core": args.same_core,
        "batch_size": args.batch_size,
        "lm_eval_batch_size": args.lm_eval_batch_size or args.batch_size,
        "threads": args.threads,
        "device": args.device,
        "models": {},
    }
    ok = True
    for name, d in dirs.items():
        (work / name).mkdir(parents=True, exist_ok=True)
        procs = start_lmeval(d, args.tasks, args, work / name) if args.parallel else []
        runs = [run_ours(d, args.tasks, args)]
        # --same-core: keep running ours while lm-eval runs, so both share the core throughout
        while args.same_core and any(p.poll() is None for p, _ in procs):
            runs.append(run_ours(d, args.tasks, args))
        for t in args.tasks:
            print(f"{name}: ours {t}: {runs[0][t]['seconds']:.1f} s", flush=True)
        procs = procs or start_lmeval(d, args.tasks, args, work / name)
        ref = finish_lmeval(procs, work / name)
        if args.bracket:
            runs.append(run_ours(d, args.tasks, args))
        ours = runs[0]
        for t in args.tasks:
            if any(r[t]["records"] != ours[t]["records"] for r in runs[1:]):
                raise SystemExit(f"{name} {t}: our runs gave different records")
            ours[t]["runs_seconds"] = [r[t]["seconds"] for r in runs]
            ours[t]["runs_cpu_seconds"] = [r[t]["cpu_seconds"] for r in runs]
            ours[t]["seconds"] = sum(ours[t]["runs_seconds"]) / len(runs)
            ours[t]["cpu_seconds"] = sum(ours[t]["runs_cpu_seconds"]) / len(runs)
            if len(runs) > 1:
                print(f"{name}: ours {t}, {len(runs)} runs: {ours[t]['runs_seconds']} s")
        rep: dict[str, Any] = {}
        for t in args.tasks:
            cmp = (compare_hellaswag if t == "hellaswag" else compare_gsm8k)(
                ours[t]["records"], ref[t]["items"]
            )
            n = cmp["n"]
            o_s, r_s = ours[t]["seconds"], ref[t]["seconds"]
            o_c, r_c = ours[t]["cpu_seconds"], ref[t]["cpu_seconds"]
            cmp.update(
                ours_runs_seconds=ours[t]["runs_seconds"],
                ours_runs_cpu_seconds=ours[t]["runs_cpu_seconds"],
                ours_cpu_seconds=o_c,
                lm_eval_cpu_seconds=r_c,
                cpu_speedup=r_c / o_c,
                ours_items_per_s=n / o_s,
                lm_eval_items_per_s=n / r_s,
                speedup=r_s / o_s,
                ours_seconds=o_s,
                lm_eval_seconds=r_s,
                lm_eval_results=ref[t]["results"],
                scores=item_scores(ref[t]["items"], ours[t]["records"]),
            )
            rep[t] = cmp
            ok &= not cmp["mismatches"]
            print(
                f"{name:10s} {t:10s} n={n:4d} mismatches={len(cmp['mismatches']):3d} "
                f"ours {n / o_s:7.2f} it/s  lm-eval {n / r_s:7.2f} it/s  x{r_s / o_s:.2f} "
                f"(CPU time: x{r_c / o_c:.2f})"
            )
            for m in cmp["mismatches"][:20]:
                print("   mismatch:", json.dumps({k: m[k] for k in m if "completion" not in k}))
            if t == "hellaswag":  # time-sliced on one core, only CPU time compares
                ok &= (r_c / o_c if args.same_core else r_s / o_s) >= 3.0
        report["models"][name] = rep
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}; bar {'MET' if ok else 'NOT MET'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
