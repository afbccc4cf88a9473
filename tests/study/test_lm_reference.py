"""``[study] reference`` in a language-model study: a trained condition, or a clear error."""

from __future__ import annotations

import pytest

from smollab.errors import ConfigError
from smollab.study.spec import loads_spec
from tests.analysis.test_lm_comparisons import TWO_TRAINED


def _with(reference: str, text: str = TWO_TRAINED) -> str:
    return text.replace("seeds = [0, 1]\n", f'seeds = [0, 1]\nreference = "{reference}"\n', 1)


def test_a_trained_reference_is_accepted() -> None:
    """QA: `reference = "lr1e-3"` was refused as a grokking-only field."""
    assert loads_spec(_with("ft")).study.reference == "ft"


def test_a_baseline_reference_names_the_field_and_the_trained_conditions() -> None:
    with pytest.raises(ConfigError) as e:
        loads_spec(_with("baseline"))
    msg = e.value.message
    assert "field 'study.reference' is 'baseline', a baseline condition" in msg
    assert "['ft', 'ft_fast']" in msg


def test_an_unknown_reference_names_the_field_and_the_conditions() -> None:
    with pytest.raises(ConfigError) as e:
        loads_spec(_with("ft_slow"))
    msg = e.value.message
    assert "study.reference names condition 'ft_slow', which this study does not have" in msg
    assert "['baseline', 'ft', 'ft_fast']" in msg and "(top level)" not in msg


def test_a_reference_with_nothing_to_compare_is_refused() -> None:
    from tests.conftest import TINY_SPEC

    with pytest.raises(ConfigError) as e:
        loads_spec(_with("ft", TINY_SPEC))
    assert "field 'study.reference' is 'ft', the only trained condition" in e.value.message
