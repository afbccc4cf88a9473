"""arith_probe: ``limit`` keeps every stratum (lm-eval's --limit applies per arithmetic_* task)."""

from __future__ import annotations

from collections import Counter

from smollab.tasks import build_task, validate_task_config


def probe(**kw):
    return build_task(validate_task_config({"id": "arith_probe", "task": "arith_probe", **kw}))


def test_limit_takes_the_first_items_of_every_stratum() -> None:
    task = probe(strata=["2da", "2dm"], n_per_stratum=6, limit=2)
    docs = task.docs()
    assert Counter(d["stratum"] for d in docs) == {"2da": 2, "2dm": 2}
    assert task.strata == ["2da", "2dm"]
    assert {e.stratum for e in task.test_set()} == {"2da", "2dm"}
    # a prefix of each stratum: the items n_per_stratum = 2 gives, and the same as unlimited
    assert docs == probe(strata=["2da", "2dm"], n_per_stratum=2).docs()
    full = probe(strata=["2da", "2dm"], n_per_stratum=6).docs()
    assert docs == [d for d in full if int(d["id"].rsplit("-", 1)[1]) < 2]


def test_limit_of_n_per_stratum_keeps_every_stratum() -> None:
    # the reported case: the first 6 items overall were all 2da
    docs = probe(strata=["2da", "2dm"], n_per_stratum=6, limit=6).docs()
    assert Counter(d["stratum"] for d in docs) == {"2da": 6, "2dm": 6}
    # a limit above n_per_stratum evaluates everything
    assert probe(limit=500).docs() == probe().docs()
    assert len(probe(limit=3).docs()) == 5 * 3
