"""``kill -9`` and Ctrl-C in the middle of training, through the real CLI.

A killed study, re-run with the same command, must finish with exactly the results of an
uninterrupted one (training resumes from its last checkpoint; finished runs are reused).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from smollab.io import read_json, read_jsonl
from tests.conftest import REPO, cli_env, find_processes, one_line, run_cli, smollab_cmd

STEPS = 300
SPEC = f"""\
# smollab study interrupt.toml
[study]
name = "intr"
seeds = [0]

[[models]]
name = "tiny"
source = "scratch:gpt2"
config = {{ n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }}

[[tasks]]
id = "add"
task = "arith.add"
strata = ["1x1", "1x2"]
n_test = 8

[[conditions]]
name = "baseline"
format = "compact"

[[conditions]]
name = "ft"
format = "compact"
[conditions.train]
steps = {STEPS}
lr = 3e-3
warmup_steps = 5
batch_size = 4
seq_len = 64
checkpoint_every = 20
eval_every = 50
eval_items = 2
threads = 1

[eval]
batch_size = 16
"""


def study_args(spec: Path, out: Path) -> list[str]:
    # two workers: the baseline evaluates while the fine-tune trains (halves the wall time)
    return ["study", str(spec), "--out", str(out), "--no-pdf", "--workers", "2"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "interrupt.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, spec_path: Path, home: Path) -> Path:
    """The session of an uninterrupted run."""
    out = tmp_path_factory.mktemp("ref")
    proc = run_cli(*study_args(spec_path, out), home=home, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "intr"


def ft_dir(session: Path) -> Path:
    spec = {p.parent.name: read_json(p) for p in (session / "runs").glob("*/spec.json")}
    return next(session / "runs" / h for h, s in spec.items() if s["condition"] == "ft")


def base_dir(session: Path) -> Path:
    spec = {p.parent.name: read_json(p) for p in (session / "runs").glob("*/spec.json")}
    return next(session / "runs" / h for h, s in spec.items() if s["condition"] == "baseline")


def start(spec: Path, out: Path, home: Path, workers: int = 2) -> subprocess.Popen[str]:
    args = study_args(spec, out)
    args[args.index("--workers") + 1] = str(workers)
    return subprocess.Popen(
        smollab_cmd(*args),
        env=cli_env(home),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the test can signal all of it
        preexec_fn=_sigint_default,
    )


def _sigint_default() -> None:
    # A job started with `&` by a non-interactive shell (CI scripts, `make test &`) inherits
    # SIGINT ignored, and Python keeps an inherited SIG_IGN, so the study would rightly ignore
    # the test's SIGINT. Give the child the disposition a terminal's foreground job has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(cond: Any, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the study ended (rc={proc.returncode}) before the condition:\n{out}{err}")
        if time.monotonic() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("timed out waiting for training to checkpoint")
        time.sleep(0.02)


def workers_of(out: Path) -> list[int]:
    """PIDs of worker processes running a run under ``out`` (they live in their own session)."""
    return find_processes(
        lambda _ppid, cmd: (
            b"smollab.study.worker" in cmd and any(str(out).encode() in c for c in cmd)
        )
    )


def wait_workers_gone(out: Path, timeout: float = 30) -> None:
    t0 = time.monotonic()
    while (pids := workers_of(out)) and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    for pid in pids:  # a worker this test started outlived its parent: stop it and fail
        os.kill(pid, signal.SIGKILL)
    assert not pids, f"worker(s) {pids} survived the death of the CLI"


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl")]


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """The parts of results.json that must not depend on interruptions (no timings, dates)."""
    conds = {}
    for name, c in results["conditions"].items():
        c = dict(c)
        ts = c.pop("train_summary")
        if ts:
            c["final_loss"] = ts["final_loss"]
            c["steps"] = ts["steps"]
        conds[name] = c
    return {"conditions": conds, "curves": results["curves"], "comparisons": results["comparisons"]}


@pytest.mark.slow  # ~50 s: an uninterrupted reference study, a killed one, and its re-run
def test_kill_9_mid_training_then_rerun_matches_uninterrupted(
    tmp_path: Path, spec_path: Path, home: Path, reference: Path
) -> None:
    out = tmp_path / "out"
    proc = start(spec_path, out, home)
    session = out / "intr"
    wait_for(
        lambda: (
            (session / "runs").exists() and any((session / "runs").glob("*/ckpt/last/state.pt"))
        ),
        proc,
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    wait_workers_gone(out)

    ft = ft_dir(session)
    # really killed mid-training: a checkpoint, no final model, no record
    assert (ft / "ckpt" / "last" / "state.pt").exists()
    assert not (ft / "train_summary.json").exists()
    assert not (ft / "record.json").exists()
    assert len(read_jsonl(ft / "metrics.jsonl")) < STEPS

    proc2 = run_cli(*study_args(spec_path, out), home=home, timeout=300)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    assert "resumed ft/seed0 from step" in one_line(proc2.stdout)

    assert losses(ft) == losses(ft_dir(reference))  # exact equality, step by step
    assert [r["step"] for r in read_jsonl(ft / "metrics.jsonl")] == list(range(1, STEPS + 1))
    got = read_json(session / "results" / "results.json")
    ref = read_json(reference / "results" / "results.json")
    assert comparable(got) == comparable(ref)
    for run in ("baseline", "ft"):
        d = base_dir(session) if run == "baseline" else ft
        r = base_dir(reference) if run == "baseline" else ft_dir(reference)
        assert read_jsonl(d / "predictions" / "add.jsonl") == read_jsonl(
            r / "predictions" / "add.jsonl"
        )


LONG = 2 * STEPS


@pytest.fixture(scope="module")
def long_spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same study with twice the training: the Ctrl-C test waits for the baseline to finish
    and for the fine-tune to be in the first half of its training."""
    p = tmp_path_factory.mktemp("spec-long") / "interrupt.toml"
    p.write_text(SPEC.replace(f"steps = {STEPS}", f"steps = {LONG}"))
    return p


@pytest.fixture(scope="module")
def long_reference(
    tmp_path_factory: pytest.TempPathFactory, long_spec_path: Path, home: Path
) -> Path:
    out = tmp_path_factory.mktemp("ref-long")
    proc = run_cli(*study_args(long_spec_path, out), home=home, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "intr"


def test_ctrl_c_exits_130_keeps_finished_runs_and_resumes(
    tmp_path: Path, long_spec_path: Path, home: Path, long_reference: Path
) -> None:
    out = tmp_path / "out"
    # one worker: the baseline finishes before the fine-tune starts, so "baseline done, fine-tune
    # in the first half of its training" is a state the study is sure to pass through
    proc = start(long_spec_path, out, home, workers=1)
    session = out / "intr"

    def mid_training() -> bool:
        try:
            ft, base = ft_dir(session), base_dir(session)
        except (StopIteration, FileNotFoundError, ValueError):
            return False
        metrics = ft / "metrics.jsonl"
        return (
            (base / "record.json").exists()
            and (ft / "ckpt" / "last" / "state.pt").exists()
            and metrics.exists()
            and len(metrics.read_text().splitlines()) < LONG // 2
        )

    wait_for(mid_training, proc)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    wait_workers_gone(out)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    msg = one_line(stderr)
    assert "interrupted" in msg and "run the same command again to resume" in msg
    assert (base_dir(session) / "record.json").exists()  # the finished baseline is kept
    ft = ft_dir(session)
    assert (ft / "ckpt" / "last" / "state.pt").exists()  # and the last checkpoint
    assert not (ft / "record.json").exists()
    assert read_json(session / "session.json")["stage"] == "runs"

    # the same command again resumes the fine-tune and ends as an uninterrupted study
    proc2 = run_cli(*study_args(long_spec_path, out), home=home, timeout=300)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    assert "resumed ft/seed0 from step" in one_line(proc2.stdout)
    assert losses(ft) == losses(ft_dir(long_reference))
    got = read_json(session / "results" / "results.json")
    assert comparable(got) == comparable(read_json(long_reference / "results" / "results.json"))
