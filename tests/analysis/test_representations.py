"""Representation metrics on constructed data, and describe_steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smollab.analysis.representations import (
    cluster_metrics,
    fourier_sparsity,
    pca_2d,
    tsne_2d,
    variance_ratio,
)
from smollab.analysis.stats import describe_steps
from smollab.errors import DataError

rng = np.random.default_rng(0)


def blobs(spread: float, k: int = 5, n: int = 200):
    labels = np.arange(n) % k
    centres = rng.normal(size=(k, 8)) * 5
    return centres[labels] + spread * rng.normal(size=(n, 8)), labels


def test_separable_clusters_score_well_and_noise_scores_badly() -> None:
    x, y = blobs(0.1)
    is_train = np.arange(len(y)) % 2 == 0
    good = cluster_metrics(x, y, is_train)
    bad = cluster_metrics(rng.normal(size=x.shape), y, is_train)
    assert good["silhouette"] > 0.8 > bad["silhouette"]
    assert good["davies_bouldin"] < 0.3 < bad["davies_bouldin"]
    assert good["variance_ratio"] > 100 * bad["variance_ratio"]
    assert good["probe_acc"] == 1.0 and bad["probe_acc"] < 0.5


def test_variance_ratio_is_calinski_harabasz() -> None:
    from sklearn.metrics import calinski_harabasz_score

    x, y = blobs(1.0)
    assert variance_ratio(x, y) == pytest.approx(calinski_harabasz_score(x, y))
    assert math.isnan(variance_ratio(x, np.zeros(len(x), int)))


def test_pca_recovers_the_main_axis() -> None:
    x = np.c_[np.linspace(-10, 10, 50), 0.01 * rng.normal(size=50), np.zeros(50)]
    coords, share = pca_2d(x)
    assert coords.shape == (50, 2) and share[0] > 0.99


def test_tsne_asks_for_more_points_than_exist() -> None:
    x, _ = blobs(0.5, n=20)
    with pytest.raises(DataError, match="asked for 25 points but the representations hold 20"):
        tsne_2d(x, 25)
    coords, idx = tsne_2d(x, 10)
    assert coords.shape == (10, 2) and len(set(idx)) == 10


def test_fourier_sparsity_of_a_single_frequency() -> None:
    p, d = 97, 16
    t = np.arange(p)[:, None]
    one_freq = np.cos(2 * np.pi * 7 * t / p + rng.uniform(0, 6, size=(1, d)))
    sparse = fourier_sparsity(one_freq)
    dense = fourier_sparsity(rng.normal(size=(p, d)))
    assert sparse["top_k_share"] > 0.99 and sparse["gini"] > 0.95
    assert dense["top_k_share"] < 0.3 and dense["gini"] < 0.6


def test_describe_steps_keeps_unreached_seeds_unreached() -> None:
    d = describe_steps([100, None, 300])
    assert d["n_reached"] == 2 and d["median"] == 300.0
    assert d["mean"] == 200.0 and d["sem"] == pytest.approx(100.0)  # std 141.4 / sqrt(2)
    assert describe_steps([100, None, None])["median"] is None
    assert describe_steps([None])["mean"] is None
    assert describe_steps([10, 20, 30, 40])["median"] == 25.0
    with pytest.raises(ValueError):
        describe_steps([])
