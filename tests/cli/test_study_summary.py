"""What `smollab study` prints at the end of a language-model study."""

from __future__ import annotations

import copy

import pytest
from rich.console import Console

from smollab.cli import study as study_cli
from smollab.cli.common import results_table
from tests.report.conftest import load_sample


def _printed(results: dict, monkeypatch: pytest.MonkeyPatch) -> str:
    con = Console(record=True, width=200)
    monkeypatch.setattr(study_cli, "console", con)
    study_cli._print_lm_summary(results)
    return con.export_text()


def test_the_summary_prints_the_comparisons_with_the_reference(monkeypatch) -> None:
    r = copy.deepcopy(load_sample())
    ref = {k: v for k, v in r["comparisons"][-1].items() if k != "baseline"}
    ref.update(reference="finetune_full", condition="lora", verdict="no detectable difference")
    r["vs_reference"] = [ref]
    text = _printed(r, monkeypatch)
    assert "finetune_full vs baseline on mul (all strata):" in text
    assert "lora vs finetune_full (reference) on mul (all strata):" in text


def test_a_task_with_one_stratum_prints_one_row(monkeypatch) -> None:
    """QA: hellaswag printed `hs / all` and `hs / overall`, the same numbers twice."""
    r = copy.deepcopy(load_sample())
    r["tasks"]["mul"]["strata"] = ["all"]
    for cond in r["conditions"].values():
        t = cond["tasks"]["mul"]
        t["strata"] = {"all": t["overall"]}
    con = Console(record=True, width=200)
    con.print(results_table(r))
    text = con.export_text()
    assert "mul / overall" in text and "mul / all" not in text
