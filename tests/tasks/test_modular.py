"""Grokking tasks: the pairs, their answers, the seeded split, and bad configs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from smollab.errors import ConfigError
from smollab.tasks import build_task, validate_task_config


def task(name: str, **kw):
    return build_task(validate_task_config({"id": name, "task": f"grok.{name}", **kw}))


@pytest.mark.parametrize(
    ("name", "n_pairs"),
    [("x_plus_y", 97 * 97), ("x_minus_y", 97 * 97), ("x_div_y", 97 * 96), ("permutation", 14400)],
)
def test_pair_counts_and_vocab(name: str, n_pairs: int) -> None:
    t = task(name)
    assert t.n_pairs == n_pairs
    toks = t.tokens()
    assert toks.shape == (n_pairs, 4)
    assert (toks[:, 1] == t.op_token).all() and (toks[:, 3] == t.eq_token).all()
    assert toks.max() < t.vocab_size
    assert t.labels().max() < t.n_classes


def test_answers_are_the_operation() -> None:
    p = 13
    for name, check in (
        ("x_plus_y", lambda x, y, a: (x + y) % p == a),
        ("x_minus_y", lambda x, y, a: (x - y) % p == a),
        ("x_div_y", lambda x, y, a: (a * y) % p == x and y != 0),
    ):
        rows = task(name, p=p).pairs
        assert all(check(int(x), int(y), int(a)) for x, y, a in rows), name


def test_permutation_is_composition_in_s5() -> None:
    t = task("permutation")
    perms = list(itertools.permutations(range(5)))
    assert t.n_classes == 120
    for x, y, a in t.pairs[::997]:
        px, py = perms[x], perms[y]
        assert perms[a] == tuple(px[py[i]] for i in range(5))


def test_split_is_seeded_disjoint_and_complete() -> None:
    t = task("x_plus_y", p=11, train_fraction=0.3)
    a, b, c = t.split(0), t.split(0), t.split(1)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert not np.array_equal(a.train, c.train)
    assert len(a.train) == round(0.3 * 121)
    assert set(a.train).isdisjoint(a.val)
    assert sorted([*a.train, *a.val]) == list(range(121))


@pytest.mark.parametrize("p", [4, 91, 100])
def test_division_needs_a_prime(p: int) -> None:
    with pytest.raises(ConfigError, match="prime") as e:
        task("x_div_y", p=p)
    assert "x_div_y" in str(e.value) and "p" in str(e.value)


def test_addition_accepts_a_composite_modulus() -> None:
    assert task("x_plus_y", p=10).n_pairs == 100


@pytest.mark.parametrize("frac", [0, 1, 1.5, -0.2])
def test_train_fraction_outside_open_interval(frac: float) -> None:
    with pytest.raises(ConfigError, match="train_fraction"):
        task("x_plus_y", train_fraction=frac)


def test_fraction_leaving_an_empty_side_is_refused() -> None:
    t = task("x_plus_y", p=3, train_fraction=0.01)
    with pytest.raises(ConfigError, match="both sides"):
        t.split(0)
