"""Notes that results.json carries for the reader: what the numbers alone do not say."""

from __future__ import annotations

from smollab.analysis.results import _notes
from smollab.study.spec import loads_spec
from smollab.tasks import build_task
from tests.conftest import TINY_SPEC


def _out(n_items: int) -> dict:
    return {
        "targets": [],
        "comparisons": [{"condition": "ft"}],
        "conditions": {},
        "tasks": {"add": {"n_items": {"1x1": n_items, "1x2": n_items}}},
    }


def test_a_condition_trained_zero_shot_and_tested_few_shot_is_noted() -> None:
    text = TINY_SPEC.replace('name = "ft"\nformat = "compact"', 'name = "ft"\nformat = "fewshot"')
    spec = loads_spec(text)
    tasks = [build_task(t) for t in spec.tasks]
    notes = _notes(spec, _out(200), tasks)
    assert notes == [
        "Condition ft trained on its questions without solved examples, and was evaluated with "
        "format fewshot's 3 solved examples before each question: the prompts it was trained "
        "and tested on differ."
    ]
    # the same format in training and test: nothing to say
    assert _notes(loads_spec(TINY_SPEC), _out(200), tasks) == []
