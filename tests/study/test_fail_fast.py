"""Executors stop starting runs once two have failed with the same error; the study says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from smollab.errors import ConfigError, RunFailed
from smollab.study import worker
from smollab.study.executor import InlineExecutor, Job, LocalProcessExecutor
from smollab.study.session import run_study
from smollab.study.spec import loads_spec
from tests.conftest import TINY_SPEC


def _jobs(tmp_path: Path, n: int) -> list[Job]:
    jobs = []
    for i in range(n):
        d = tmp_path / f"run{i}"
        d.mkdir()
        jobs.append(Job(d, f"run{i}"))
    return jobs


def test_local_workers_stop_after_the_same_error_twice(tmp_path: Path) -> None:
    # an empty run folder has no spec.json: each worker fails with the same message, but for
    # its own folder (the folder is masked when failures are compared)
    jobs = _jobs(tmp_path, 4)
    outcomes = LocalProcessExecutor(workers=1).run(jobs, lambda e: None)
    assert [o.ok for o in outcomes] == [False] * 4
    assert [bool(o.details.get("not_started")) for o in outcomes] == [False, False, True, True]
    assert "spec.json" in (outcomes[0].error or "")
    assert outcomes[2].error == "not started: 2 runs had already failed with the same error"
    assert not (jobs[2].run_dir / "worker.log").exists()  # never started


def test_different_errors_do_not_stop_the_others(tmp_path, monkeypatch) -> None:
    jobs = _jobs(tmp_path, 3)

    def execute_run(run_dir: Path, on_event):
        raise ConfigError(f"fault number {run_dir.name}")

    monkeypatch.setattr(worker, "execute_run", execute_run)
    outcomes = InlineExecutor().run(jobs, lambda e: None)
    assert [o.details.get("not_started", False) for o in outcomes] == [False] * 3
    assert [o.error for o in outcomes] == [f"fault number run{i}" for i in range(3)]


def test_a_study_whose_runs_fail_alike_stops_and_says_so(tmp_path, monkeypatch) -> None:
    """3 runs (one baseline, two fine-tunes); the first two fail alike, the third never starts,
    and the message counts them."""
    started: list[str] = []

    def execute_run(run_dir: Path, on_event):
        started.append(run_dir.name)
        raise ConfigError("the data folder /nowhere does not exist")

    monkeypatch.setattr(worker, "execute_run", execute_run)
    text = TINY_SPEC.replace('name = "baseline"\n', 'name = "baseline"\nseeds = [0]\n')
    spec = loads_spec(text)
    with pytest.raises(RunFailed) as err:
        run_study(spec, text, out_root=tmp_path, session_name="s", executor=InlineExecutor())
    assert len(started) == 2
    msg = err.value.render()
    assert "2 of 3 runs failed, and the other run was not started, since the same error" in msg
    assert "the data folder /nowhere does not exist. Fix the cause" in msg
    assert err.value.exit_code == 2
    log = (tmp_path / "s" / "session_log.jsonl").read_text()
    assert log.count('"run_not_started"') == 1


def test_lora_targets_naming_no_module_fail_before_any_run(tmp_path, monkeypatch) -> None:
    """A LoRA target that matches no module is refused before the session starts, naming
    the field and the modules there are; no run starts (it failed in peft after every earlier
    run had trained)."""
    started: list[str] = []
    monkeypatch.setattr(worker, "execute_run", lambda d, e: started.append(d.name))
    text = TINY_SPEC.replace(
        "steps = 4\n", 'steps = 4\nmethod = "lora"\nlora_targets = ["c_attnn"]\n'
    )
    with pytest.raises(ConfigError) as err:
        run_study(loads_spec(text), text, out_root=tmp_path, session_name="s")
    msg = str(err.value)
    assert "conditions[1].train.lora_targets" in msg and "'c_attnn' names no module" in msg
    assert "'c_attn'" in msg and "'c_proj'" in msg and "condition 'ft'" in msg
    # refused before the session folder is made (an existing one is left as it was)
    assert started == [] and not (tmp_path / "s").exists()


def test_lora_targets_by_suffix_are_accepted(tmp_path) -> None:
    """peft's rule: a target is a module's name or a dotted suffix of it."""
    from smollab.models.loader import model_skeleton
    from smollab.train.trainer import check_lora_targets

    cfg = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 64}
    model = model_skeleton("scratch:gpt2", tokenizer="char", config=cfg)
    assert next(model.parameters()).device.type == "meta"
    check_lora_targets(model, ["c_attn", "attn.c_proj", "mlp.c_fc"], "lora_targets")
    check_lora_targets(model, ["all-linear"], "lora_targets")
    with pytest.raises(ConfigError, match=r"'attn\.c_fcx' names no module"):
        check_lora_targets(model, ["c_attn", "attn.c_fcx"], "lora_targets")


def test_a_worker_killed_by_a_signal_is_named(tmp_path: Path) -> None:
    (job,) = _jobs(tmp_path, 1)
    out = LocalProcessExecutor._outcome(job, -9, {})
    assert not out.ok and out.error == "the worker was killed by signal 9 (SIGKILL)"
