"""``kill -9`` in the middle of a grokking run, through the real CLI: the re-run resumes from
the last checkpoint with the same split and ends with exactly the uninterrupted metrics."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from smollab.io import read_json, read_jsonl
from tests.cli.test_interrupt import start, wait_for, wait_workers_gone
from tests.conftest import one_line, run_cli
from tests.study.test_grok_study import spec_text

STEPS = 600


@pytest.mark.slow  # ~1 min: an uninterrupted study, a killed one, and its re-run
def test_kill_9_mid_grokking_run_then_rerun_matches(tmp_path: Path) -> None:
    spec = tmp_path / "grok.toml"
    text = spec_text(steps=STEPS, snaps='"none"').replace("seeds = [0, 1]", "seeds = [0]")
    spec.write_text(text.replace("checkpoint_every = 10", "checkpoint_every = 50\nthreads = 1"))
    home = tmp_path / "home"
    ref_out, out = tmp_path / "ref", tmp_path / "out"
    args = ["study", str(spec), "--no-pdf"]
    ref = run_cli(*args, "--out", str(ref_out), home=home, timeout=300)
    assert ref.returncode == 0, ref.stdout + ref.stderr

    proc = start(spec, out, home)  # the same command, killed once a checkpoint exists
    session = out / "grok-tiny"
    wait_for(lambda: any(session.glob("runs/*/ckpt/last.pt")), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_workers_gone(out)
    run = next(session.glob("runs/*"))
    assert not (run / "record.json").exists()
    assert read_jsonl(run / "metrics.jsonl")[-1]["step"] < STEPS

    again = run_cli(*args, "--out", str(out), home=home, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed" in one_line(again.stdout)
    ref_run = next((ref_out / "grok-tiny").glob("runs/*"))
    assert run.name == ref_run.name
    assert read_json(run / "split.json") == read_json(ref_run / "split.json")

    def rows(d: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if k != "time_s"} for r in read_jsonl(d / "metrics.jsonl")
        ]

    assert rows(run) == rows(ref_run)
    assert (
        read_json(run / "record.json")["train"]["final_val_acc"]
        == read_json(ref_run / "record.json")["train"]["final_val_acc"]
    )
