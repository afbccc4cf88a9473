"""The executor's warnings about plans that oversubscribe the CPU cores."""

from __future__ import annotations

import os

from smollab.study.executor import LocalProcessExecutor, busy_cores, cpu_plan_warnings


def test_oversubscribed_plan_is_named() -> None:
    (w,) = cpu_plan_warnings(2, 2, cpus=2, busy=0.0)
    assert "2 workers x 2 threads = 4 threads on 2 cores" in w
    assert "threads_per_worker <= 2" in w


def test_fitting_plans_are_quiet() -> None:
    assert cpu_plan_warnings(1, None, cpus=2, busy=0.1) == []
    assert cpu_plan_warnings(2, 1, cpus=2, busy=0.1) == []
    assert cpu_plan_warnings(2, None, cpus=4, busy=None) == []


def test_busy_machine_warns_multithreaded_runs_only() -> None:
    (w,) = cpu_plan_warnings(1, None, cpus=2, busy=1.3)
    assert "about 1.3 of the 2 cores busy" in w and "[execution] threads_per_worker = 1" in w
    assert cpu_plan_warnings(1, 1, cpus=2, busy=1.3) == []


def test_executor_reports_its_plan() -> None:
    ex = LocalProcessExecutor(workers=64, threads_per_worker=2)
    assert any("64 workers x 2 threads" in w for w in ex.warnings())


def test_busy_cores_is_a_core_count() -> None:
    busy = busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1) + 1e-6
