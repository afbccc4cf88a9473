"""Representation analysis: cluster metrics, probes, PCA/t-SNE and Fourier sparsity.

Inputs are the representations a run saved at chosen steps (``snapshots/step_XXXXXX.npz``, see
:mod:`smollab.train.grokking`): per pair, the first and last blocks' outputs at the last position
(``first``, ``last``) and the input embeddings of the whole sequence (``embed``), its answer
class, and whether the pair was in the training split. Metrics (per layer, per step):

* ``silhouette``: mean silhouette of the answer classes (cosine-free Euclidean; -1..1, higher =
  tighter, better separated classes);
* ``davies_bouldin``: Davies-Bouldin index (>= 0, lower = better separated);
* ``variance_ratio``: between-class / within-class variance (trace of the scatter matrices,
  each divided by its degrees of freedom: the Calinski-Harabasz statistic);
* ``probe_acc``: a multinomial logistic-regression probe trained on the representations of
  training pairs, scored on held-out pairs (the validation split): is the answer linearly
  decodable for pairs the model never trained on?

When the answer classes share one centroid (:func:`centroids_coincide`: the input embeddings of
a snapshot holding every pair of x + y, for instance, since each class holds every x and every y
once), ``davies_bouldin`` (a ratio over centroid distances of ~0: 0 or ~1e8 by rounding) and
``variance_ratio`` (0 by construction) say nothing about the representation; they are ``nan``
then (``None`` in :func:`analyse_run`'s output, with the reason under ``undefined``).

For modular arithmetic, :func:`fourier_sparsity` measures how concentrated the token embeddings
are in the Fourier basis of the task's group (grokked models use a few key frequencies): over
Z_p for x + y and x - y; for x / y over the multiplicative group Z_p^*, which is cyclic of order
p - 1, so the residues 1..p-1 are ordered by their discrete logarithm to a primitive root first
(:func:`fourier_basis_of`). A division model that uses a few frequencies of Z_p^* looks no
sparser than random embeddings in the additive basis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smollab.errors import DataError

LAYERS = ("embed", "first", "last")
METRICS = ("silhouette", "davies_bouldin", "variance_ratio", "probe_acc")
CENTROID_METRICS = ("davies_bouldin", "variance_ratio")
CENTROIDS_COINCIDE = (
    "the answer classes share one centroid (between-class variance ~0 against the within-class "
    "variance, as for the input embeddings when a snapshot holds every pair), so Davies-Bouldin "
    "(a ratio over centroid distances of ~0) and the variance ratio (0 by construction) are "
    "undefined"
)


def centroids_coincide(x: np.ndarray, labels: np.ndarray, rtol: float = 1e-12) -> bool:
    """True when the class centroids of ``x`` are numerically one point: the between-class sum
    of squares is at most ``rtol`` times the total (rounding leaves ~1e-30; sampled pairs with
    any class structure leave orders of magnitude more)."""
    x = np.asarray(x, np.float64)
    classes, inv = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        return False
    means = np.zeros((len(classes), x.shape[1]))
    np.add.at(means, inv, x)
    counts = np.bincount(inv, minlength=len(classes))
    means /= counts[:, None]
    mu = x.mean(0)
    between = float((counts * ((means - mu) ** 2).sum(1)).sum())
    total = float(((x - mu) ** 2).sum())
    return total > 0 and between <= rtol * total


def variance_ratio(x: np.ndarray, labels: np.ndarray) -> float:
    """Between-class over within-class variance (Calinski-Harabasz); nan if undefined."""
    classes, inv = np.unique(labels, return_inverse=True)
    k, n = len(classes), len(x)
    if k < 2 or n <= k:
        return float("nan")
    mu = x.mean(0)
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, inv, x)
    counts = np.bincount(inv, minlength=k)
    means /= counts[:, None]
    between = float((counts * ((means - mu) ** 2).sum(1)).sum()) / (k - 1)
    within = float(((x - means[inv]) ** 2).sum()) / (n - k)
    return between / within if within > 0 else float("inf")


def probe_accuracy(
    x: np.ndarray, labels: np.ndarray, is_train: np.ndarray, *, seed: int = 0
) -> float:
    """Accuracy on held-out pairs of a logistic-regression probe fit on the training pairs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tr, te = is_train, ~is_train
    if tr.sum() < 2 or te.sum() < 1 or len(np.unique(labels[tr])) < 2:
        return float("nan")
    scaler = StandardScaler().fit(x[tr])
    clf = LogisticRegression(max_iter=200, random_state=seed)
    clf.fit(scaler.transform(x[tr]), labels[tr])
    return float((clf.predict(scaler.transform(x[te])) == labels[te]).mean())


def cluster_metrics(
    x: np.ndarray, labels: np.ndarray, is_train: np.ndarray, *, seed: int = 0
) -> dict[str, float]:
    """The four metrics of the module docstring for one layer at one step (``nan`` where
    undefined, the centroid-based two included when :func:`centroids_coincide`)."""
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    x = np.asarray(x, np.float64)
    ok = len(np.unique(labels)) >= 2 and len(x) > len(np.unique(labels))
    centred = ok and not centroids_coincide(x, labels)
    return {
        "silhouette": float(silhouette_score(x, labels)) if ok else float("nan"),
        "davies_bouldin": float(davies_bouldin_score(x, labels)) if centred else float("nan"),
        "variance_ratio": variance_ratio(x, labels) if centred else float("nan"),
        "probe_acc": probe_accuracy(x, labels, is_train, seed=seed),
    }


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The first two principal components of ``x`` and their shares of the variance."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2
    share = (var / var.sum()).tolist() if var.sum() > 0 else [0.0] * len(var)
    coords = xc @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords, [float(v) for v in share[:2]]


def tsne_2d(x: np.ndarray, n_points: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE of ``n_points`` rows of ``x`` (a seeded sample); returns (coords, row indices).

    Raises:
        DataError: more points asked for than ``x`` has.
    """
    from sklearn.manifold import TSNE

    n = len(x)
    if n_points > n:
        raise DataError(
            f"t-SNE was asked for {n_points} points but the representations hold {n}. Ask for "
            f"at most {n} (tsne_points), or save more points per snapshot (snapshot_points)."
        )
    if n_points < 5:
        raise DataError(f"t-SNE needs at least 5 points, got {n_points}.")
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = np.sort(rng.choice(n, size=n_points, replace=False))
    perplexity = min(30.0, (n_points - 1) / 3)
    coords = TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(
        np.asarray(x[idx], np.float64)
    )
    return coords, idx


def top_k_share_undefined(p: int, top_k: int = 5) -> str | None:
    """Why the top-``top_k`` frequency share of ``p`` residues says nothing (``None`` if it can):
    with ``p // 2 <= top_k`` non-constant frequencies the top ``top_k`` hold all the power."""
    n_freq = p // 2
    if top_k < n_freq:
        return None
    return (
        f"p = {p} has {n_freq} non-constant frequencies, no more than the {top_k} strongest, so "
        f"their share is 100% by construction (informative only for p > {2 * top_k + 1})"
    )


def primitive_root(p: int) -> int:
    """The smallest generator of the multiplicative group mod the prime ``p``."""
    if p == 2:
        return 1
    n, factors, q = p - 1, set(), 2
    while q * q <= n:
        while n % q == 0:
            factors.add(q)
            n //= q
        q += 1
    if n > 1:
        factors.add(n)
    return next(g for g in range(2, p) if all(pow(g, (p - 1) // f, p) != 1 for f in factors))


def fourier_basis_of(operation: str) -> str | None:
    """Which group's Fourier basis the token embeddings of a grokking task are read in:
    ``"additive"`` (Z_p) for x + y and x - y, ``"multiplicative"`` (Z_p^* by discrete log) for
    x / y, ``None`` for the permutation group (not abelian: no such basis)."""
    return {"x_plus_y": "additive", "x_minus_y": "additive", "x_div_y": "multiplicative"}.get(
        operation
    )


def log_ordered(emb: np.ndarray) -> np.ndarray:
    """Rows 1..p-1 of ``emb`` (one per residue mod the prime p = len(emb)) in the order
    g^0, g^1, ..., g^(p-2) of a primitive root g: Z_p^* as the cyclic group Z_(p-1)."""
    p = len(emb)
    g = primitive_root(p)
    return np.asarray(emb)[[pow(g, k, p) for k in range(p - 1)]]


def fourier_sparsity(
    emb: np.ndarray, top_k: int = 5, basis: str = "additive"
) -> dict[str, float | None]:
    """How concentrated the rows of ``emb`` (one per residue 0..p-1) are in frequency.

    The embedding matrix is transformed along the residue axis: a real DFT over Z_p with
    ``basis="additive"``; over Z_p^* (rows 1..p-1 in discrete-log order, a DFT over Z_(p-1))
    with ``basis="multiplicative"``, for division. The power
    of each non-constant frequency ``1..p//2`` is summed over dimensions. Returns
    ``top_k_share`` (share of that power in the ``top_k`` strongest frequencies; ``top_k/(p//2)``
    for a flat spectrum, a little more for a random matrix from sampling noise (0.12 for a
    Gaussian 97 x 128 matrix), -> 1 for a few key frequencies; ``None`` when
    :func:`top_k_share_undefined`, 1 by construction) and ``gini`` (Gini coefficient of the
    power spectrum: 0 uniform, -> 1 concentrated). For an even ``p`` the Nyquist bin ``p/2``
    holds a whole frequency where every other bin holds half of one (its conjugate twin is
    not in the real DFT), so it is weighted by one half.
    """
    e = np.asarray(emb, np.float64)
    if basis == "multiplicative":
        e = log_ordered(e)
    elif basis != "additive":
        raise ValueError(f"basis must be 'additive' or 'multiplicative', got {basis!r}")
    spec = np.fft.rfft(e - e.mean(0), axis=0)
    power = (np.abs(spec[1:]) ** 2).sum(1)
    if len(e) % 2 == 0 and len(power):
        power[-1] *= 0.5
    total = power.sum()
    if total <= 0:
        return {"top_k_share": float("nan"), "gini": float("nan")}
    srt = np.sort(power)
    n = len(srt)
    gini = float((2 * np.arange(1, n + 1) - n - 1).dot(srt) / (n * srt.sum()))
    share = None if top_k_share_undefined(len(e), top_k) else float(srt[-top_k:].sum() / total)
    return {"top_k_share": share, "gini": gini}


def load_snapshots(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((Path(run_dir) / "snapshots").glob("step_*.npz")):
        with np.load(p) as z:
            out.append({k: z[k] for k in z.files})
    return out


def analyse_run(
    run_dir: Path,
    *,
    fourier: str | None,
    tsne_points: int | None = None,
    pca_points: int = 600,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics over time for every snapshot of a run, plus PCA (and t-SNE) coordinates of the
    last layer at each step (``pca_points`` of them, a seeded random sample of the snapshot's
    pairs, the same at every step, rounded to 4 digits). ``fourier`` is the basis of
    :func:`fourier_sparsity` (:func:`fourier_basis_of` the task), ``None`` for no Fourier metrics.

    Undefined values are ``None``; ``undefined`` maps a metric's path (``layers.embed.
    davies_bouldin``, ``fourier.top_k_share``) to ``{"reason", "steps"}`` for those that are
    undefined by construction (the cases of :func:`centroids_coincide` and
    :func:`top_k_share_undefined`)."""
    snaps = load_snapshots(run_dir)
    res: dict[str, Any] = {
        "steps": [],
        "val_acc": [],
        "layers": {lay: {m: [] for m in METRICS} for lay in LAYERS},
        "fourier": {"top_k_share": [], "gini": [], "basis": fourier} if fourier else None,
        "undefined": {},
        "pca": [],
    }

    def undefined(path: str, reason: str, step: int) -> None:
        res["undefined"].setdefault(path, {"reason": reason, "steps": []})["steps"].append(step)

    pca_rows: np.ndarray | None = None
    for z in snaps:
        labels, is_train = z["labels"], z["is_train"].astype(bool)
        step = int(z["step"])
        res["steps"].append(step)
        v = float(z["val_acc"])
        res["val_acc"].append(None if np.isnan(v) else v)
        for lay in LAYERS:
            for m, val in cluster_metrics(z[lay], labels, is_train, seed=seed).items():
                res["layers"][lay][m].append(None if not np.isfinite(val) else val)
            if centroids_coincide(z[lay], labels):
                for m in CENTROID_METRICS:
                    undefined(f"layers.{lay}.{m}", CENTROIDS_COINCIDE, step)
        if fourier:
            emb = z["token_embeddings"]
            for m, f in fourier_sparsity(emb, basis=fourier).items():
                res["fourier"][m].append(None if f is None or not np.isfinite(f) else f)
            why = top_k_share_undefined(len(emb) - (fourier == "multiplicative"))
            if why:
                undefined("fourier.top_k_share", why, step)
        # a seeded sample, not the first rows: the snapshot's pairs are sorted by x, so the first
        # 600 of 2,000 held only x < 30 of 97
        if len(labels) > pca_points and pca_rows is None:
            pca_rows = np.sort(
                np.random.default_rng(seed).choice(len(labels), pca_points, replace=False)
            )
        rows = pca_rows if len(labels) > pca_points else np.arange(len(labels))
        coords, share = pca_2d(z["last"])
        entry = {
            "step": int(z["step"]),
            "xy": np.round(coords[rows], 4).tolist(),
            "labels": labels[rows].tolist(),
            "variance_share": share,
        }
        if tsne_points is not None:
            tc, idx = tsne_2d(z["last"], tsne_points, seed=seed)
            entry["tsne"] = {"xy": np.round(tc, 3).tolist(), "labels": labels[idx].tolist()}
        res["pca"].append(entry)
    return res
