"""How long bad input takes to be refused: spec checks and two CLI errors, each in a new process.

    python benchmarks/bench_cli_fail_fast.py --repeats 3
    python benchmarks/bench_cli_fail_fast.py --src /tmp/old-worktree/src --repeats 3

Each case runs in a fresh Python (``PYTHONPATH=<src>``, the interpreter running this script), so
import time counts, as it does for a user:
- ``load_spec``: checking the tiny test study spec (scratch GPT-2, ``arith.add``), in process;
- ``study --session-name a/b``: ``smollab study`` refusing a session name (exit 2);
- ``eval --task nope``: ``smollab eval`` refusing an unknown task (exit 2).
Prints the wall seconds of every repeat per case, and whether torch got imported by load_spec.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - t0, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the smollab src/ to time")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, help="write the timings as JSON here")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.conftest import TINY_SPEC  # the spec the test suite checks

    env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "tiny.toml"
        spec.write_text(TINY_SPEC)
        cli = [sys.executable, "-m", "smollab.cli.main"]
        load = (
            "import sys; from smollab.study.spec import load_spec; "
            f"load_spec({str(spec)!r}); print('torch' in sys.modules)"
        )
        cases = {
            "load_spec": ([sys.executable, "-c", load], 0),
            "study --session-name a/b": (
                [*cli, "study", str(spec), "--out", f"{tmp}/o", "--session-name", "a/b"],
                2,
            ),
            "eval --task nope": (
                [*cli, "eval", "--model", "scratch:gpt2", "--task", "nope", "--out", f"{tmp}/e"],
                2,
            ),
        }
        results: dict[str, dict[str, object]] = {}
        for name, (cmd, code) in cases.items():
            times, extra = [], None
            for _ in range(args.repeats):
                dt, proc = _timed(cmd, env)
                if proc.returncode != code:
                    sys.exit(f"{name}: exit {proc.returncode}, expected {code}\n{proc.stderr}")
                times.append(round(dt, 3))
                if name == "load_spec":
                    extra = proc.stdout.strip() == "True"
            results[name] = {
                "seconds": times,
                **({"torch_imported": extra} if extra is not None else {}),
            }
            print(f"{name:28s} " + " ".join(f"{t:.2f}" for t in times) + " s"
                  + (f"  (torch imported: {extra})" if extra is not None else ""))  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"src": str(args.src), "cases": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
