"""Representation metrics of a grokking study: seeds aligned by step, undefined metrics kept
undefined (Fourier top-k share for small p, centroid metrics when class centroids coincide)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smollab.analysis.grokking import _notes, _representations
from smollab.analysis.representations import (
    CENTROIDS_COINCIDE,
    analyse_run,
    centroids_coincide,
    cluster_metrics,
    fourier_sparsity,
    top_k_share_undefined,
)

LAYERS = ("embed", "first", "last")
METRICS = ("silhouette", "davies_bouldin", "variance_ratio", "probe_acc")


def run_rep(steps: list[int], val: list[float], undefined: dict[str, Any] | None = None):
    """An analyse_run output whose every metric equals the validation accuracy at its step."""
    return {
        "steps": steps,
        "val_acc": val,
        "layers": {lay: {m: list(val) for m in METRICS} for lay in LAYERS},
        "fourier": {"top_k_share": list(val), "gini": list(val)},
        "undefined": undefined or {},
        "pca": [],
    }


def test_seeds_are_averaged_only_at_the_same_step() -> None:
    # QA's case: snapshot_steps = [0, 300], stop_after_99 stops seed 0 at 240 (its last
    # snapshot); position alignment reported steps [0, 240] with mean(1.0, 0.667) = 0.833
    reps = [run_rep([0, 240], [0.1, 1.0]), run_rep([0, 300], [0.2, 2 / 3])]
    agg = _representations(reps, [0, 1])
    assert agg is not None
    assert agg["aligned_by"] == "step"
    assert agg["steps"] == [0]
    assert agg["val_acc"]["mean"] == [pytest.approx(0.15)]
    assert agg["val_acc"]["n"] == [2]
    assert agg["layers"]["last"]["probe_acc"]["mean"] == [pytest.approx(0.15)]
    assert agg["fourier"]["gini"]["mean"] == [pytest.approx(0.15)]
    assert agg["not_averaged"] == {"0": [240], "1": [300]}
    assert agg["per_seed"]["0"]["steps"] == [0, 240]
    assert agg["per_seed"]["1"]["layers"]["last"]["probe_acc"] == [0.2, 2 / 3]
    assert "in per_seed only" in agg["averaged"]
    (note,) = _notes({"conditions": {}, "representations": {"ref": {"add": agg}}})
    assert "only at the 1 step every seed snapshotted, up to step 0" in note
    assert "seed 0: 240; seed 1: 300" in note


def test_same_step_at_different_positions_is_matched_by_step() -> None:
    # 'auto' snapshot steps are absolute; a seed that stops early adds its own last step
    reps = [
        run_rep([0, 50, 100, 200], [0.0, 0.5, 0.7, 0.9]),
        run_rep([0, 100, 200], [0.0, 0.3, 0.5]),
    ]
    agg = _representations(reps, [3, 4])
    assert agg is not None
    assert agg["steps"] == [0, 100, 200]
    assert agg["val_acc"]["mean"] == pytest.approx([0.0, 0.5, 0.7])
    assert agg["layers"]["embed"]["silhouette"]["mean"] == pytest.approx([0.0, 0.5, 0.7])
    assert agg["not_averaged"] == {"3": [50], "4": []}
    assert "in per_seed only" in agg["averaged"]


def test_a_none_value_is_left_out_and_counted() -> None:
    a, b = run_rep([0, 10], [0.2, 0.4]), run_rep([0, 10], [0.6, 0.8])
    b["layers"]["embed"]["davies_bouldin"] = [None, None]
    a["layers"]["embed"]["davies_bouldin"] = [None, 1.5]
    agg = _representations([a, b], [0, 1])
    assert agg is not None
    db = agg["layers"]["embed"]["davies_bouldin"]
    assert db["mean"] == [None, 1.5] and db["n"] == [0, 1]
    assert agg["not_averaged"] == {"0": [], "1": []}
    assert "in per_seed" not in agg["averaged"]


def test_no_common_step_averages_nothing() -> None:
    agg = _representations([run_rep([0, 10], [0.1, 0.2]), run_rep([5, 20], [0.3, 0.4])], [0, 1])
    assert agg is not None
    assert agg["steps"] == [] and agg["val_acc"]["mean"] == []
    assert agg["averaged"].startswith("nothing")


def test_undefined_metrics_are_merged_over_seeds_and_noted() -> None:
    why = {"reason": "r", "steps": [0]}
    reps = [
        run_rep([0, 10], [0.1, 0.2], {"layers.embed.davies_bouldin": why}),
        run_rep(
            [0, 10], [0.1, 0.2], {"layers.embed.davies_bouldin": {"reason": "r", "steps": [10]}}
        ),
    ]
    agg = _representations(reps, [0, 1])
    assert agg is not None
    assert agg["undefined"] == {"layers.embed.davies_bouldin": {"reason": "r", "steps": [0, 10]}}
    (note,) = _notes({"conditions": {}, "representations": {"c": {"t": agg}}})
    assert note == (
        "c / t: layers.embed.davies_bouldin undefined (None, left out of the means and figures) "
        "at 2 snapshot step(s): r."
    )


def test_fourier_top_k_share_is_undefined_for_p_up_to_11() -> None:
    rng = np.random.default_rng(0)
    assert top_k_share_undefined(13) is None
    assert "100% by construction" in (top_k_share_undefined(11) or "")
    assert "p > 11" in (top_k_share_undefined(7) or "")
    small = fourier_sparsity(rng.normal(size=(11, 8)))
    assert small["top_k_share"] is None and small["gini"] is not None
    big = fourier_sparsity(rng.normal(size=(13, 8)))
    assert big["top_k_share"] is not None and big["top_k_share"] < 1.0


def all_pairs_embed(p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 'embed' layer of every pair of x + y mod p: the concatenated input embeddings."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(p + 2, 16)).astype(np.float32)
    x, y = np.divmod(np.arange(p * p), p)
    op, eq = np.full_like(x, p), np.full_like(x, p + 1)
    return np.concatenate([e[x], e[op], e[y], e[eq]], 1), (x + y) % p


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_centroid_metrics_are_undefined_when_class_centroids_coincide(seed: int) -> None:
    # before the fix: davies_bouldin 0.0 for seed 0 and ~1e8 for seeds 1-3, variance_ratio 0.0
    x, labels = all_pairs_embed(7, seed)
    assert centroids_coincide(x, labels)
    m = cluster_metrics(x, labels, np.arange(len(x)) % 2 == 0)
    assert math.isnan(m["davies_bouldin"]) and math.isnan(m["variance_ratio"])
    assert -1 <= m["silhouette"] <= 1  # not centroid-based: still defined


def test_centroid_metrics_stay_defined_with_class_structure() -> None:
    x, labels = all_pairs_embed(7)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(x), size=30, replace=False)  # a sample of pairs: centroids differ
    assert not centroids_coincide(x[sample], labels[sample])
    shifted = x + 1e-3 * labels[:, None]  # a little class structure, far above rounding
    assert not centroids_coincide(shifted, labels)
    m = cluster_metrics(shifted, labels, np.arange(len(x)) % 2 == 0)
    assert m["variance_ratio"] > 0 and math.isfinite(m["davies_bouldin"])


def test_analyse_run_stores_none_with_reasons(tmp_path: Path) -> None:
    p = 7
    x, labels = all_pairs_embed(p)
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(p, 8))[labels] + 0.1 * rng.normal(size=(len(x), 8))
    (tmp_path / "snapshots").mkdir()
    for step in (0, 20):
        np.savez(
            tmp_path / "snapshots" / f"step_{step:06d}.npz",
            step=step,
            val_acc=0.5,
            labels=labels,
            is_train=np.arange(len(x)) % 2 == 0,
            embed=x,
            first=hidden,
            last=hidden,
            token_embeddings=rng.normal(size=(p, 8)),
        )
    res = analyse_run(tmp_path, fourier="additive")
    assert res["steps"] == [0, 20]
    assert res["layers"]["embed"]["davies_bouldin"] == [None, None]
    assert res["layers"]["embed"]["variance_ratio"] == [None, None]
    assert all(v is not None and v > 0 for v in res["layers"]["last"]["variance_ratio"])
    assert res["fourier"]["top_k_share"] == [None, None]
    assert res["undefined"]["layers.embed.davies_bouldin"] == {
        "reason": CENTROIDS_COINCIDE,
        "steps": [0, 20],
    }
    assert "p = 7" in res["undefined"]["fourier.top_k_share"]["reason"]
    assert set(res["undefined"]) == {
        "layers.embed.davies_bouldin",
        "layers.embed.variance_ratio",
        "fourier.top_k_share",
    }
    json.dumps(res, allow_nan=False)  # no NaN reaches results


def test_division_is_read_in_the_fourier_basis_of_its_own_group() -> None:
    """QA: x / y embeddings built from 3 frequencies of Z_p^* scored like random ones (12% top-5
    share) in the additive basis over Z_p; in the discrete-log basis they score 100%."""
    from smollab.analysis.representations import (
        fourier_basis_of,
        fourier_sparsity,
        primitive_root,
    )

    p = 97
    g = primitive_root(p)
    assert sorted(pow(g, k, p) for k in range(p - 1)) == list(range(1, p))
    assert [primitive_root(q) for q in (3, 5, 7, 11, 13)] == [2, 2, 3, 2, 2]
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 32))
    emb = np.zeros((p, 32))
    for k in range(p - 1):
        t = 2 * np.pi * np.array([3, 11, 20]) * k / (p - 1)
        emb[pow(g, k, p)] = np.concatenate([np.cos(t), np.sin(t)]) @ w
    assert fourier_sparsity(emb, basis="multiplicative")["top_k_share"] > 0.999
    assert fourier_sparsity(emb)["top_k_share"] < 0.2
    assert [fourier_basis_of(o) for o in ("x_plus_y", "x_minus_y", "x_div_y", "permutation")] == [
        "additive",
        "additive",
        "multiplicative",
        None,
    ]


def test_pca_points_are_a_seeded_sample_of_all_pairs_not_the_first_rows(tmp_path: Path) -> None:
    """QA: the PCA panels kept the first 600 of 2,000 snapshot pairs, which are sorted by x:
    only x < 30 of 97 was drawn."""
    p = 7
    x, labels = all_pairs_embed(p)
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(len(x), 8))
    (tmp_path / "snapshots").mkdir()
    for step in (0, 20):
        np.savez(
            tmp_path / "snapshots" / f"step_{step:06d}.npz",
            step=step,
            val_acc=0.5,
            labels=labels,
            is_train=np.arange(len(x)) % 2 == 0,
            embed=x,
            first=hidden,
            last=hidden,
            token_embeddings=rng.normal(size=(p, 8)),
        )
    res = analyse_run(tmp_path, fourier=None, pca_points=20, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(len(labels), 20, replace=False))
    assert rows.max() >= 20  # not the first 20 rows
    for entry in res["pca"]:
        assert entry["labels"] == labels[rows].tolist() and len(entry["xy"]) == 20
    assert res["fourier"] is None


GROK_SPEC = """
[study]
name = "grok-pca"
kind = "grok"
seeds = [0, 1]

[[models]]
name = "tiny"
source = "small:decoder"
config = {{ n_layer = {n_layer}, d_model = 32, n_head = 2 }}

[[tasks]]
id = "add"
task = "grok.x_plus_y"
p = 7

[[conditions]]
name = "ref"
[conditions.config]
steps = 900
eval_every = 100
snapshot_steps = [0, 300, 600, 800, 900]
"""


def _aggregate(tmp_path: Path, n_layer: int, runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """:func:`aggregate` over fake finished runs: per seed its memorisation step (``mem``), its
    step of 99% validation accuracy (``gen``) and the validation accuracy at each snapshot."""
    from smollab.analysis.grokking import aggregate
    from smollab.io import atomic_write_json
    from smollab.study.spec import loads_spec

    spec = loads_spec(GROK_SPEC.format(n_layer=n_layer), "s.toml")
    steps = [0, 300, 600, 800, 900]
    records, dirs = [], {}
    for seed, r in runs.items():
        d = tmp_path / f"run{seed}"
        d.mkdir()
        rows = [
            {
                "step": s,
                "train_acc": 1.0,
                "val_acc": v,
                "train_loss": 0.1,
                "val_loss": 0.1,
                "weight_norm": 10.0,
            }
            for s, v in zip(steps, r["val"], strict=True)
        ]
        (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
        rep = run_rep(steps, r["val"])
        rep["pca"] = [
            {"step": s, "xy": [[0.0, 1.0]], "labels": [0], "variance_share": [0.5, 0.1]}
            for s in steps
        ]
        atomic_write_json(d / "representations.json", rep)
        dirs[f"h{seed}"] = d
        gap = None if r["gen"] is None or r["mem"] is None else r["gen"] - r["mem"]
        records.append(
            {
                "condition": "ref",
                "task": "add",
                "seed": seed,
                "hash": f"h{seed}",
                "train": {
                    "step_val_acc_99": r["gen"],
                    "memorisation_step": r["mem"],
                    "grokking_gap": gap,
                    "final_val_acc": r["val"][-1],
                    "final_train_acc": 1.0,
                    "steps": 900,
                    "ms_per_step": 1.0,
                    "final_weight_norm": 10.0,
                },
            }
        )
    return aggregate(spec, records, dirs, "s")


def test_pca_shows_the_first_seed_that_grokked_and_a_snapshot_after_it(tmp_path: Path) -> None:
    """QA: only seed 1 grokked, and its validation accuracy fell again before the run ended
    (27% at step 900): the panels are seed 1's, 'after' is a snapshot from its step of 99%
    on that still had 99%, with its validation accuracy; one block: first is last."""
    out = _aggregate(
        tmp_path,
        1,
        {
            0: {"mem": 300, "gen": None, "val": [0.0, 0.1, 0.3, 0.5, 0.6]},
            1: {"mem": 300, "gen": 600, "val": [0.0, 0.5, 0.995, 1.0, 0.27]},
        },
    )
    pca = out["pca"]["ref"]["add"]
    assert pca["seed"] == 1 and pca["phases_of_grokking"] is True
    assert [(p["phase"], p["step"], p["val_acc"]) for p in pca["panels"]] == [
        ("before", 0, 0.0),
        ("during", 300, 0.5),  # the snapshot nearest (300 + 600) / 2 = 450
        ("after", 800, 1.0),  # not the last snapshot (900, at 27%)
    ]
    assert out["representations"]["ref"]["add"]["first_is_last"] is True


def test_pca_after_panel_when_no_snapshot_kept_99_percent(tmp_path: Path) -> None:
    out = _aggregate(
        tmp_path,
        2,
        {
            0: {"mem": 300, "gen": 800, "val": [0.0, 0.2, 0.5, 0.98, 0.27]},
            1: {"mem": 300, "gen": 600, "val": [0.0, 0.5, 0.995, 1.0, 1.0]},
        },
    )
    pca = out["pca"]["ref"]["add"]
    # seed 0 is the first that grokked; none of its snapshots from step 800 on had 99%: the
    # first of them, at its validation accuracy
    assert pca["seed"] == 0 and pca["phases_of_grokking"] is True
    assert (pca["panels"][2]["step"], pca["panels"][2]["val_acc"]) == (800, 0.98)
    assert out["representations"]["ref"]["add"]["first_is_last"] is False


def test_pca_without_a_grokked_seed_shows_seed_0_as_snapshots(tmp_path: Path) -> None:
    out = _aggregate(
        tmp_path,
        2,
        {
            0: {"mem": 300, "gen": None, "val": [0.0, 0.1, 0.3, 0.5, 0.6]},
            1: {"mem": None, "gen": None, "val": [0.0, 0.1, 0.2, 0.3, 0.4]},
        },
    )
    pca = out["pca"]["ref"]["add"]
    assert pca["seed"] == 0 and pca["phases_of_grokking"] is False
    assert [p["step"] for p in pca["panels"]] == [0, 600, 900]
