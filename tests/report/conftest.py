"""Shared fixtures: a session folder built from ``tests/fixtures/results_sample.json``."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parents[1] / "fixtures" / "results_sample.json"


def load_sample() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def make_session(root: Path, results: dict[str, Any] | None = None) -> Path:
    """A session folder with results/results.json, study.toml and problem.md."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    if results is None:
        shutil.copy(FIXTURE, root / "results" / "results.json")
    else:
        (root / "results" / "results.json").write_text(json.dumps(results, indent=1))
    (root / "study.toml").write_text('name = "multiplication"\n')
    (root / "problem.md").write_text("# Can a small LM multiply?\n")
    return root


def baseline_only(results: dict[str, Any]) -> dict[str, Any]:
    """The sample reduced to the baseline condition, with a nan metric."""
    out = copy.deepcopy(results)
    out["conditions"] = {"baseline": out["conditions"]["baseline"]}
    out["comparisons"] = []
    out.pop("curves")
    strata = out["conditions"]["baseline"]["tasks"]["mul"]["strata"]
    strata["3x3"]["digit_accuracy"]["estimate"] = float("nan")
    return out


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The full sample built once (no PDF): ``(session_dir, ReportPaths)``."""
    from smollab.report import build_report

    session = make_session(tmp_path_factory.mktemp("session"))
    return session, build_report(session, pdf=False)


@pytest.fixture(scope="session")
def built_baseline(tmp_path_factory: pytest.TempPathFactory):
    from smollab.report import build_report

    session = make_session(tmp_path_factory.mktemp("baseline"), baseline_only(load_sample()))
    return session, build_report(session, pdf=False)
