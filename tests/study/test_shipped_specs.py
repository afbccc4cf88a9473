"""Every study spec and problem file in the repository validates and expands into runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from smollab.study.kinds import RUN_KINDS
from smollab.study.problem import load_problem
from smollab.study.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "studies").glob("*.toml"))
PROBLEMS = sorted((REPO / "problems").glob("*.md"))


def _expand(spec) -> list:
    return RUN_KINDS.get(spec.study.kind).expand(spec)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_study_spec_expands(path: Path) -> None:
    spec = load_spec(path)
    runs = _expand(spec)
    assert runs and len({r.hash for r in runs}) == len(runs)


@pytest.mark.parametrize("path", PROBLEMS, ids=lambda p: p.name)
def test_problem_protocol_expands(path: Path) -> None:
    problem = load_problem(path)
    assert problem.title and problem.spec.study.question
    assert _expand(problem.spec)


def test_there_are_shipped_specs() -> None:
    assert len(SPECS) >= 4 and len(PROBLEMS) >= 2
