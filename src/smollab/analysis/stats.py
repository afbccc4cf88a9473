"""Statistics for small-LM experiments: the single home of all statistics in ``smollab``.

Every function here is deterministic given its inputs (bootstraps take an explicit ``seed``),
and every result is a plain frozen dataclass of Python floats/ints/strings with a ``to_dict()``
so it serialises straight to JSON (note: ``nan`` serialises as the non-standard ``NaN`` token
with :func:`json.dumps` defaults; :mod:`smollab.io`, which writes every results file, writes it
as ``null``).

Conventions
-----------
* ``level`` is the two-sided confidence level, strictly between 0 and 1 (default 0.95).
* Correctness matrices are 0/1 (or boolean) arrays shaped ``[n_seeds, n_items]``; the same
  items (columns) are used by every seed (row), i.e. seeds and items are *crossed*.
* Bootstrap intervals are percentile intervals (``numpy.quantile``, linear interpolation) of
  the bootstrap distribution; the point estimate is always the statistic on the original data.
* Invalid input raises :class:`ValueError`; statistically undefined quantities (e.g. the SEM
  of a single value) are ``nan`` rather than errors.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as _sps

__all__ = [
    "MCNEMAR_EXACT_BELOW",
    "Interval",
    "McNemarResult",
    "bootstrap_interval",
    "censored_ranks",
    "censored_shift_interval",
    "describe_seeds",
    "describe_steps",
    "hierarchical_bootstrap_accuracy",
    "holm_bonferroni",
    "hull",
    "mann_whitney_min_p",
    "mann_whitney_p",
    "mcnemar",
    "mean_sem",
    "paired_bootstrap_diff",
    "pass_at_k",
    "ratio_bootstrap_interval",
    "score_interval",
    "seed_pvalue",
    "seed_t_interval",
    "seed_t_pvalue",
    "shift_interval",
    "t_interval",
    "verdict",
    "widen_with_seeds",
    "wilson_interval",
]

#: Max number of array elements materialised per bootstrap chunk (bounds peak memory).
_CHUNK_ELEMENTS = 1 << 22

#: Discordant-pair count at or above which McNemar switches from exact to chi-square.
MCNEMAR_EXACT_BELOW = 25


# --------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval.

    Attributes:
        estimate: point estimate (statistic on the original data; may be ``nan``).
        low: lower bound.
        high: upper bound.
        level: confidence level in (0, 1), e.g. 0.95.
        method: how the interval was computed, e.g. ``"wilson"``, ``"t"``, ``"t(n=1)"``,
            ``"bootstrap-percentile"``, ``"bootstrap-seeds-items"``,
            ``"paired-bootstrap-seeds-items"``.

    All numeric fields are coerced to Python ``float`` so the object serialises to JSON.
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str

    def __post_init__(self) -> None:
        for name in ("estimate", "low", "high", "level"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "method", str(self.method))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"estimate", "low", "high", "level", "method"}`` with plain Python types."""
        return asdict(self)

    def contains(self, x: float) -> bool:
        """Return True iff ``low <= x <= high`` (closed interval; False if anything is nan)."""
        return bool(self.low <= x <= self.high)

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


@dataclass(frozen=True)
class McNemarResult:
    """Result of McNemar's test on paired 0/1 outcomes.

    Attributes:
        b01: number of pairs where A is wrong and B is right.
        b10: number of pairs where A is right and B is wrong.
        statistic: for ``"exact"``: ``min(b01, b10)`` (the binomial test statistic); for
            ``"chi2-cc"``: the continuity-corrected chi-square statistic.
        p_value: two-sided p-value in [0, 1].
        method: ``"exact"`` (two-sided binomial, used when ``b01 + b10 < 25``) or
            ``"chi2-cc"`` (continuity-corrected chi-square with 1 df).
    """

    b01: int
    b10: int
    statistic: float
    p_value: float
    method: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "b01", int(self.b01))
        object.__setattr__(self, "b10", int(self.b10))
        object.__setattr__(self, "statistic", float(self.statistic))
        object.__setattr__(self, "p_value", float(self.p_value))
        object.__setattr__(self, "method", str(self.method))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"b01", "b10", "statistic", "p_value", "method"}`` with plain Python types."""
        return asdict(self)


# --------------------------------------------------------------------------- validation helpers


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return level


def _check_n_boot(n_boot: int) -> int:
    n_boot = operator.index(n_boot)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return n_boot


def _as_1d_finite(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no nan/inf)")
    return arr


def _as_binary(x: Any, ndim: int, name: str) -> np.ndarray:
    """Validate a 0/1 (or bool) array of the given ndim, non-empty; return it as float64."""
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0 or 0 in arr.shape:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    try:
        arr = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric 0/1") from exc
    if not np.all((arr == 0.0) | (arr == 1.0)):
        raise ValueError(f"{name} must contain only 0/1 values")
    return arr


def _z(level: float) -> float:
    return float(_sps.norm.ppf(0.5 + level / 2.0))


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _counts(rng: np.random.Generator, n_rows: int, n: int) -> np.ndarray:
    """Resample-with-replacement counts: ``[n_rows, n]`` array, each row sums to ``n``.

    Row ``r`` holds how many times each of ``n`` units was drawn in one bootstrap replicate.
    """
    idx = rng.integers(0, n, size=(n_rows, n))
    flat = (idx + (np.arange(n_rows)[:, None] * n)).ravel()
    return np.bincount(flat, minlength=n_rows * n).reshape(n_rows, n).astype(float)


def _chunk_rows(n_boot: int, width: int) -> int:
    return max(1, min(n_boot, _CHUNK_ELEMENTS // max(1, width)))


# --------------------------------------------------------------------------- proportions


def _count(name: str, value: Any) -> int:
    """``value`` as an int (Python or NumPy integers); a TypeError naming ``name`` otherwise, so
    a float count (``3.0``, ``mean * n``) is not silently rounded."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer count, got {value!r} ({type(value).__name__}); pass "
            f"int({name}) if it is a whole number."
        ) from None


def wilson_interval(successes: int, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: number of successes, an integer with ``0 <= successes <= n``.
        n: number of trials, an integer ``>= 0``.
        level: confidence level in (0, 1).

    Returns:
        ``Interval(estimate=successes/n, low, high, level, method="wilson")`` with
        ``0 <= low <= high <= 1``. ``successes == 0`` gives ``low == 0.0`` exactly and
        ``successes == n`` gives ``high == 1.0`` exactly. ``n == 0`` gives
        ``estimate=nan, low=0.0, high=1.0`` (no information).

    Raises:
        ValueError: if ``n < 0``, ``successes`` is outside ``[0, n]``, or ``level`` is invalid.
        TypeError: if ``successes`` or ``n`` is not an integer.
    """
    successes, n = _count("successes", successes), _count("n", n)
    level = _check_level(level)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    if n == 0:
        return Interval(math.nan, 0.0, 1.0, level, "wilson")
    p = successes / n
    low, high = _wilson_bounds(p, n, level)
    return Interval(p, low, high, level, "wilson")


def _wilson_bounds(p: float, n: int, level: float) -> tuple[float, float]:
    """The Wilson score bounds at an observed proportion ``p`` of ``n`` (``p`` need not be
    ``k / n`` for an integer ``k``: the hull of a fractional score uses it as it is)."""
    z = _z(level)
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(max(p * (1.0 - p), 0.0) / n + z2 / (4.0 * n * n))
    low = 0.0 if p <= 0.0 else max(0.0, center - half)
    high = 1.0 if p >= 1.0 else min(1.0, center + half)
    return low, high


def hull(intervals: Sequence[Interval], method: str) -> Interval:
    """The smallest interval holding every one of ``intervals`` (same estimate and level as the
    first), named ``method``: how a study combines an item-level bootstrap with a seed-level
    interval, each of which misses a source of variance the other sees."""
    first = intervals[0]
    return Interval(
        first.estimate,
        min(i.low for i in intervals),
        max(i.high for i in intervals),
        first.level,
        method,
    )


def _seed_t(b_means: Any, a_means: Any) -> tuple[float, float, float] | None:
    """(estimate, squared standard error, degrees of freedom) of the t statistic over seeds
    behind :func:`seed_t_interval` and :func:`seed_t_pvalue`; None when ``b`` has one seed."""
    b = _as_1d_finite(b_means, "b_means")
    if b.size < 2:
        return None
    a = _as_1d_finite(a_means, "a_means") if a_means is not None else np.zeros(1)
    va, vb = (float(a.var(ddof=1)) if a.size > 1 else 0.0), float(b.var(ddof=1))
    se2 = vb / b.size + va / a.size
    est = float(b.mean() - (a.mean() if a_means is not None else 0.0))
    if se2 > 0.0 and va > 0.0:  # Welch-Satterthwaite degrees of freedom
        df = se2**2 / ((vb / b.size) ** 2 / (b.size - 1) + (va / a.size) ** 2 / (a.size - 1))
    else:
        df = float(b.size - 1)
    return est, se2, df


def seed_t_interval(
    b_means: Sequence[float] | np.ndarray,
    a_means: Sequence[float] | np.ndarray | None = None,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Interval | None:
    """A t interval over training seeds: of the mean of ``b_means`` (one score per seed), or,
    with ``a_means``, of ``mean(b_means) - mean(a_means)`` (Welch's interval over the two sets of
    seed means; a one-seed ``a`` counts as a constant). ``bounds`` clips the result (``(0, 1)``
    for an accuracy, ``(-1, 1)`` for a difference of accuracies). ``None`` when there is no
    seed variance to estimate (``b`` has one seed).

    Seed-to-seed variation of a trained model is a variance component that an item bootstrap
    does not see, and a percentile bootstrap over 2-3 seeds cannot reach past the seeds it saw:
    with two seeds the true mean lies outside their range half of the time. A study reports the
    hull of the two-level bootstrap and this interval, so that neither source is left out.
    """
    level = _check_level(level)
    t = _seed_t(b_means, a_means)
    if t is None:
        return None
    est, se2, df = t
    if se2 <= 0.0:
        return Interval(est, est, est, level, "seed-t")
    half = float(_sps.t.ppf(0.5 + level / 2.0, df=df)) * math.sqrt(se2)
    low, high = est - half, est + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return Interval(est, low, high, level, "seed-t")


def seed_t_pvalue(
    b_means: Sequence[float] | np.ndarray,
    a_means: Sequence[float] | np.ndarray | None = None,
) -> float | None:
    """The two-sided p-value of the t test behind :func:`seed_t_interval` (a mean of 0, or no
    difference between the two sets of seed means): 0 or 1 when the seeds do not vary (the
    estimate is or is not 0), None when ``b`` has one seed. A study whose interval is the
    hull of an item bootstrap and the seed interval tests with the larger of the two tests'
    p-values, so a difference is called only where both sources of variance allow it."""
    t = _seed_t(b_means, a_means)
    if t is None:
        return None
    est, se2, df = t
    if se2 <= 0.0:
        return 1.0 if est == 0.0 else 0.0
    return float(2.0 * _sps.t.sf(abs(est) / math.sqrt(se2), df=df))


def widen_with_seeds(
    diff: Interval,
    a_seeds: Sequence[float] | np.ndarray,
    b_seeds: Sequence[float] | np.ndarray,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """``diff`` (an item-level interval of ``mean(b) - mean(a)``) widened to its hull with the
    t interval over seeds (one value per seed on each side): Welch's when both sides have
    several seeds, a one-sample t over the other side's differences from a side that ran once,
    nothing when both ran once. See :func:`seed_t_interval` for why."""
    a, b = np.asarray(a_seeds, dtype=float), np.asarray(b_seeds, dtype=float)
    if b.size > 1:
        seed = seed_t_interval(b, a, level=diff.level, bounds=bounds)
    elif a.size > 1:  # b ran once: the t interval of mean(a) - b, turned around
        rev = seed_t_interval(a, b, level=diff.level, bounds=bounds)
        assert rev is not None  # two or more seeds
        seed = Interval(-rev.estimate, -rev.high, -rev.low, rev.level, rev.method)
    else:
        seed = None
    return diff if seed is None else hull([diff, seed], f"{diff.method}+seed-t-hull")


def seed_pvalue(
    a_seeds: Sequence[float] | np.ndarray, b_seeds: Sequence[float] | np.ndarray
) -> float | None:
    """:func:`seed_t_pvalue` of ``mean(b) - mean(a)`` with the sides arranged as
    :func:`widen_with_seeds` arranges them; None when both ran once."""
    a, b = np.asarray(a_seeds, dtype=float), np.asarray(b_seeds, dtype=float)
    if b.size > 1:
        return seed_t_pvalue(b, a)
    if a.size > 1:
        return seed_t_pvalue(a, b)
    return None


# --------------------------------------------------------------------------- seed-level summaries


def mean_sem(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean.

    Args:
        values: 1-D non-empty sequence of finite numbers (e.g. one metric per seed).

    Returns:
        ``(mean, sem)`` with ``sem = std(values, ddof=1) / sqrt(n)``; ``sem`` is ``nan``
        when ``n == 1``.

    Raises:
        ValueError: if ``values`` is empty, not 1-D, or contains nan/inf.
    """
    arr = _as_1d_finite(values)
    n = arr.size
    mean = float(arr.mean())
    if n == 1:
        return mean, math.nan
    return mean, float(arr.std(ddof=1) / math.sqrt(n))


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Student-t confidence interval for a mean: ``mean +- t_{n-1, (1+level)/2} * sem``.

    Args:
        values: 1-D non-empty sequence of finite numbers (independent units, e.g. seeds).
        level: confidence level in (0, 1).

    Returns:
        ``Interval(method="t")``. With ``n == 1`` the interval is degenerate,
        ``low == high == mean``, and ``method == "t(n=1)"`` flags that no uncertainty could be
        estimated. If all values are equal (sem 0) the interval is also degenerate.

    Raises:
        ValueError: as :func:`mean_sem`, or invalid ``level``.
    """
    level = _check_level(level)
    mean, sem = mean_sem(values)
    n = np.asarray(values).size
    if n == 1:
        return Interval(mean, mean, mean, level, "t(n=1)")
    half = float(_sps.t.ppf(0.5 + level / 2.0, df=n - 1)) * sem
    return Interval(mean, mean - half, mean + half, level, "t")


def describe_seeds(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Descriptive summary of one metric across seeds.

    Args:
        values: 1-D non-empty sequence of finite numbers.

    Returns:
        ``{"n": int, "mean": float, "std": float, "sem": float, "min": float, "max": float,
        "values": list[float]}`` where ``std`` uses ``ddof=1`` and ``std``/``sem`` are ``nan``
        for ``n == 1``. ``values`` preserves input order.

    Raises:
        ValueError: as :func:`mean_sem`.
    """
    arr = _as_1d_finite(values)
    mean, sem = mean_sem(arr)
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return {
        "n": int(arr.size),
        "mean": mean,
        "std": std,
        "sem": sem,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "values": [float(v) for v in arr],
    }


def describe_steps(values: Sequence[float | None]) -> dict[str, Any]:
    """Summary of a "first step at which X happened" metric across seeds, where ``None`` means
    X never happened within the run.

    Returns:
        ``{"n", "n_reached", "median", "mean", "sem", "min", "max", "values"}``. ``median`` counts
        an unreached seed as later than every reached one, so it is ``None`` when half or more
        of the seeds never reached it (for an even count: when the two middle values are not
        both reached). ``mean``/``sem``/``min``/``max`` are over the reached seeds only
        (``sem = std(ddof=1)/sqrt(n_reached)``; ``nan`` for one; ``None`` for none).
    """
    vals = list(values)
    if not vals:
        raise ValueError("values must be non-empty")
    reached = sorted(float(v) for v in vals if v is not None)
    n = len(vals)
    ordered = reached + [math.inf] * (n - len(reached))
    mid = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    out: dict[str, Any] = {
        "n": n,
        "n_reached": len(reached),
        "median": None if math.isinf(mid) else float(mid),
        "mean": None,
        "sem": None,
        "min": None,
        "max": None,
        "values": [None if v is None else float(v) for v in vals],
    }
    if reached:
        mean, sem = mean_sem(reached)
        out.update(mean=mean, sem=sem, min=reached[0], max=reached[-1])
    return out


# --------------------------------------------------------------------------- bootstraps


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    level: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
    statistic: Callable[..., Any] = np.mean,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over independent units (e.g. seeds).

    Args:
        values: 1-D non-empty sequence of finite numbers, one per independent unit.
        level: confidence level in (0, 1).
        n_boot: number of bootstrap replicates (>= 1).
        seed: seed for ``numpy.random.default_rng``; identical arguments give identical output.
        statistic: maps a 1-D array to a scalar. If it accepts ``axis=`` (numpy reductions
            such as ``np.mean``/``np.median``) it is evaluated vectorised on a
            ``[rows, n]`` array with ``axis=1``; otherwise it is called once per replicate.
            Both paths use the same resamples, so results agree.

    Returns:
        ``Interval(estimate=statistic(values), method="bootstrap-percentile")``. With a single
        value the interval is degenerate at that value.

    Raises:
        ValueError: if ``values`` is empty/non-1-D/non-finite, or ``level``/``n_boot`` invalid.
    """
    arr = _as_1d_finite(values)
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    n = arr.size
    estimate = float(statistic(arr))
    boot = np.empty(n_boot)
    rows = _chunk_rows(n_boot, n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        sample = arr[rng.integers(0, n, size=(stop - start, n))]
        try:
            out = np.asarray(statistic(sample, axis=1), dtype=float)
            if out.shape != (stop - start,):
                raise TypeError("statistic did not reduce along axis=1")
        except TypeError:
            out = np.array([float(statistic(row)) for row in sample])
        boot[start:stop] = out
    low, high = _percentiles(boot, level)
    return Interval(estimate, low, high, level, "bootstrap-percentile")


def _ratios(counts: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per bootstrap replicate (a row of unit counts), ``sum(num) / sum(den)`` over the units
    it drew; nan where it drew only zero-denominator units."""
    d = counts @ den
    return np.where(d > 0, (counts @ num) / np.where(d > 0, d, 1.0), np.nan)


def ratio_bootstrap_interval(
    numerators: Sequence[float] | np.ndarray,
    denominators: Sequence[float] | np.ndarray,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Interval:
    """Percentile bootstrap over units of a ratio of sums, ``sum(numerators) / sum(denominators)``
    (optionally ``transform`` ed, e.g. ``np.exp``): a corpus-level metric whose units are
    documents, such as perplexity (``exp(sum NLL / sum tokens)``), where the mean of per-unit
    ratios would weight a short document like a long one.

    Units are resampled with replacement, keeping each numerator with its denominator. A
    monotone ``transform`` maps the percentile interval of the ratio onto the transformed
    scale exactly (percentiles commute with monotone maps); the estimate is the transformed
    ratio on the original data. One unit gives a degenerate interval at the estimate.

    Raises:
        ValueError: if the inputs differ in length, are empty or non-finite, a denominator is
            negative or they sum to 0, or ``level``/``n_boot`` are invalid.
    """
    num = _as_1d_finite(numerators, "numerators")
    den = _as_1d_finite(denominators, "denominators")
    if num.size != den.size:
        raise ValueError(f"numerators and denominators differ in length ({num.size} vs {den.size})")
    if (den < 0).any() or den.sum() <= 0:
        raise ValueError("denominators must be >= 0 with a positive sum")
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    n = num.size
    boot = np.empty(n_boot)
    rows = _chunk_rows(n_boot, n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        boot[start:stop] = _ratios(_counts(rng, stop - start, n), num, den)
    estimate = float(num.sum() / den.sum())
    # a replicate that drew only zero-denominator units has no ratio: it takes the
    # whole-data ratio (possible only when some denominators are 0)
    boot = np.where(np.isnan(boot), estimate, boot)
    low, high = _percentiles(boot, level)
    if transform is not None:
        estimate, low, high = (float(transform(np.asarray(x))) for x in (estimate, low, high))
    return Interval(estimate, low, high, level, "bootstrap-percentile-ratio")


def paired_ratio_bootstrap_diff(
    num_a: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    den_a: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    num_b: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    den_b: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[Interval, float]:
    """Paired percentile bootstrap over shared units (documents) of the difference of two
    ratios of sums, ``r_b - r_a`` with ``r = sum(num) / sum(den)``: two conditions' corpus-level
    metrics (``bits_per_byte`` is NLL / bytes / ln 2) on the same held-out documents.

    Each argument is ``[n_seeds, n_units]`` (or 1-D: one seed); the units (columns) are the
    same documents in the same order for ``a`` and ``b``, the seed counts may differ. Seeds are
    pooled by summing over them: a condition's ratio is its NLL summed over seeds and documents
    over its denominator summed likewise, which for a denominator every seed shares (bytes, or
    the tokens of one tokenizer) is the mean of its seeds' ratios. Each replicate draws one
    resample of the units, shared by both conditions (the pairing), and recomputes both pooled
    ratios; seeds are not resampled, so the interval is over documents, not over seeds.

    A monotone increasing ``transform`` is applied to the difference and its bounds
    (percentiles commute with it): ``x / ln 2`` turns a difference of NLL per byte into one
    of bits per byte, ``np.exp`` a difference of NLL per token into a perplexity ratio.

    Returns:
        ``(Interval(estimate, low, high, level, "paired-bootstrap-ratio-units"), p_value)``;
        ``p_value`` is the two-sided bootstrap p-value of "no difference",
        ``min(1, 2 * (1 + k) / (n_boot + 1))`` with ``k`` the number of replicates on the far
        side of 0 (at or beyond it) from the estimate, so it is never 0, and never below
        ``2 / 2**n`` for ``n`` units: the smallest two-sided p-value an exact test on ``n``
        paired units can give (a sign-flip permutation test has ``2**n`` equally likely
        assignments, and the observed one and its mirror image are the two most extreme),
        where a bootstrap of a handful of documents would otherwise claim ``p < 0.001``
        (4 documents: 0.125; the floor is below the bootstrap's own from 12 units on). One
        unit gives a degenerate interval at the estimate and p = 1.

    Raises:
        ValueError: if the shapes disagree, inputs are empty or non-finite, a denominator is
            negative or a condition's denominators sum to 0, or ``level``/``n_boot`` are invalid.
    """
    cols = []
    for name, x in (("num_a", num_a), ("den_a", den_a), ("num_b", num_b), ("den_b", den_b)):
        arr = np.asarray(x, dtype=float)
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty [n_seeds, n_units] array")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (no nan/inf)")
        cols.append(arr)
    if cols[0].shape != cols[1].shape or cols[2].shape != cols[3].shape:
        raise ValueError("each condition's numerators and denominators must have one shape")
    if cols[0].shape[1] != cols[2].shape[1]:
        raise ValueError(
            f"a and b must have the same units: {cols[0].shape[1]} != {cols[2].shape[1]}"
        )
    if (cols[1] < 0).any() or (cols[3] < 0).any() or cols[1].sum() <= 0 or cols[3].sum() <= 0:
        raise ValueError("denominators must be >= 0 with a positive sum")
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    # pooled over seeds: one numerator and one denominator per unit and condition
    na, da, nb, db = (c.sum(axis=0) for c in cols)
    estimate = float(nb.sum() / db.sum() - na.sum() / da.sum())
    rng = np.random.default_rng(seed)
    n = na.size
    boot = np.empty(n_boot)
    rows = _chunk_rows(n_boot, n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        counts = _counts(rng, stop - start, n)
        diff = _ratios(counts, nb, db) - _ratios(counts, na, da)
        # a replicate that drew only zero-denominator units has no ratio: it takes the estimate
        boot[start:stop] = np.where(np.isnan(diff), estimate, diff)
    low, high = _percentiles(boot, level)
    far = (boot <= 0).sum() if estimate > 0 else (boot >= 0).sum() if estimate < 0 else n_boot
    # every replicate alike (one unit): the data cannot tell a difference from none
    p_value = 1.0 if low == high else min(1.0, 2.0 * (1 + int(far)) / (n_boot + 1))
    p_value = max(p_value, min(1.0, 2.0 ** (1 - n)))  # no test on n pairs goes lower
    if transform is not None:
        estimate, low, high = (float(transform(np.asarray(x))) for x in (estimate, low, high))
    return Interval(estimate, low, high, level, "paired-bootstrap-ratio-units"), p_value


def score_interval(
    values: Sequence[float] | np.ndarray, binary: bool = True, level: float = 0.95
) -> Interval:
    """Interval of the mean per-item score ``values`` (one per item): Wilson when ``binary``
    and every value is 0 or 1; otherwise the hull of the percentile bootstrap over items and
    the Student t interval over items (method ``bootstrap-percentile+t-hull``; the percentile
    bootstrap of a mean alone covers too little below about 20 items: 87% at 5). A bootstrap
    over identical values (one item, or items all alike) is a point, not a 95% interval: for
    scores in [0, 1] it is then widened to its hull with the Wilson interval at that mean and
    the item count (method ``bootstrap-percentile+wilson-hull``). Scores in [0, 1] keep their
    interval in [0, 1]. The eval harness and the study analysis (fractional per-item metrics
    such as digit accuracy) both use it."""
    arr = _as_1d_finite(values)
    if binary and np.isin(arr, (0.0, 1.0)).all():
        return wilson_interval(int(arr.sum()), arr.size, level)
    iv = bootstrap_interval(arr, level=level, n_boot=2000)
    unit = bool(0.0 <= arr.min() and arr.max() <= 1.0)
    if iv.low < iv.high:
        t = t_interval(arr, level)
        low, high = min(iv.low, t.low), max(iv.high, t.high)
        if unit:
            low, high = max(0.0, low), min(1.0, high)
        return Interval(iv.estimate, low, high, level, f"{iv.method}+t-hull")
    if not unit:
        return iv
    w_low, w_high = _wilson_bounds(iv.estimate, arr.size, level)
    return Interval(
        iv.estimate, min(iv.low, w_low), max(iv.high, w_high), level, f"{iv.method}+wilson-hull"
    )


def hierarchical_bootstrap_accuracy(
    correct: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> Interval:
    """Two-level (seeds x items) percentile bootstrap of mean accuracy.

    Each replicate resamples seeds (rows) with replacement and items (columns) with
    replacement; because every seed is evaluated on the same items (crossed design), one item
    resample is drawn per replicate and shared by all resampled seeds, so between-item
    variance is not averaged away across seeds. The replicate statistic is the mean of the
    resampled ``[n_seeds, n_items]`` matrix. Fully vectorised via resampling counts.

    Args:
        correct: 2-D 0/1 (or bool) array ``[n_seeds, n_items]``, both dimensions >= 1.
        level: confidence level in (0, 1).
        n_boot: number of replicates (>= 1).
        seed: RNG seed; identical arguments give identical output.

    Returns:
        ``Interval(estimate=correct.mean(), method="bootstrap-seeds-items")``. With
        ``n_seeds == 1`` this is a plain item bootstrap. All-ones (all-zeros) input gives the
        degenerate interval ``[1, 1]`` (``[0, 0]``).

    Raises:
        ValueError: if ``correct`` is not a non-empty 2-D 0/1 array, or ``level``/``n_boot``
            are invalid.
    """
    mat = _as_binary(correct, 2, "correct")
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    n_seeds, n_items = mat.shape
    boot = np.empty(n_boot)
    rows = _chunk_rows(n_boot, n_seeds + n_items)
    for start in range(0, n_boot, rows):
        m = min(n_boot, start + rows) - start
        seed_w = _counts(rng, m, n_seeds)  # [m, n_seeds]
        item_w = _counts(rng, m, n_items)  # [m, n_items]
        per_seed = item_w @ mat.T  # [m, n_seeds]: correct count of each seed on resampled items
        boot[start : start + m] = (seed_w * per_seed).sum(axis=1) / (n_seeds * n_items)
    low, high = _percentiles(boot, level)
    return Interval(float(mat.mean()), low, high, level, "bootstrap-seeds-items")


def paired_bootstrap_diff(
    a: np.ndarray, b: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> Interval:
    """Paired two-level bootstrap of the accuracy difference ``mean(b) - mean(a)``.

    Each replicate draws one item resample (shared by both conditions, keeping the pairing
    of columns) and independently resamples the seeds of ``a`` and the seeds of ``b``; the
    replicate statistic is ``mean(b_resampled) - mean(a_resampled)``.

    Args:
        a: 2-D 0/1 array ``[n_seeds_a, n_items]`` (baseline condition).
        b: 2-D 0/1 array ``[n_seeds_b, n_items]`` (treatment), same items in the same column
            order as ``a``; ``n_seeds_a`` and ``n_seeds_b`` may differ.
        level: confidence level in (0, 1).
        n_boot: number of replicates (>= 1).
        seed: RNG seed; identical arguments give identical output.

    Returns:
        ``Interval(estimate=b.mean() - a.mean(), method="paired-bootstrap-seeds-items")``.
        Positive values mean ``b`` is more accurate. Pass it to :func:`verdict`.

    Raises:
        ValueError: if either array is not a non-empty 2-D 0/1 array, the item counts
            (columns) differ, or ``level``/``n_boot`` are invalid.
    """
    ma = _as_binary(a, 2, "a")
    mb = _as_binary(b, 2, "b")
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(
            f"a and b must have the same number of items (columns): {ma.shape[1]} != {mb.shape[1]}"
        )
    level = _check_level(level)
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    sa, n_items = ma.shape
    sb = mb.shape[0]
    boot = np.empty(n_boot)
    rows = _chunk_rows(n_boot, sa + sb + n_items)
    for start in range(0, n_boot, rows):
        m = min(n_boot, start + rows) - start
        item_w = _counts(rng, m, n_items)
        wa = _counts(rng, m, sa)
        wb = _counts(rng, m, sb)
        acc_a = (wa * (item_w @ ma.T)).sum(axis=1) / (sa * n_items)
        acc_b = (wb * (item_w @ mb.T)).sum(axis=1) / (sb * n_items)
        boot[start : start + m] = acc_b - acc_a
    low, high = _percentiles(boot, level)
    estimate = float(mb.mean() - ma.mean())
    if low == high:
        # Every replicate is the same: every item (and seed) differs by the same amount,
        # typically none at all (0/12 against 0/12), and the percentile interval has zero
        # width. Bound it instead: at least a Wilson-lower-bound share of items is like these,
        # and the rest may differ by anything in [-1, 1].
        d = estimate
        q = 1.0 - wilson_interval(n_items, n_items, level).low
        low, high = max(-1.0, d * (1 - q) - q), min(1.0, d * (1 - q) + q)
        return Interval(estimate, low, high, level, "paired-wilson-bound")
    return Interval(estimate, low, high, level, "paired-bootstrap-seeds-items")


# --------------------------------------------------------------------------- tests & decisions


def mcnemar(
    a_correct: Sequence[int] | np.ndarray, b_correct: Sequence[int] | np.ndarray
) -> McNemarResult:
    """McNemar's test for paired 0/1 outcomes of two systems on the same items.

    Uses the exact two-sided binomial test (``p = min(1, 2 * Binom(n, 0.5).cdf(min(b01, b10)))``
    with ``n = b01 + b10``) when ``n < 25``, else the continuity-corrected chi-square
    ``max(|b01 - b10| - 1, 0)^2 / n`` with 1 degree of freedom. (The ``max(., 0)`` only matters
    when ``b01 == b10``, where it gives statistic 0 and p = 1.)

    Args:
        a_correct: 1-D 0/1 (or bool) vector for system A.
        b_correct: 1-D 0/1 (or bool) vector for system B, same length and item order.

    Returns:
        :class:`McNemarResult`. No discordant pairs gives ``statistic=0.0, p_value=1.0,
        method="exact"``.

    Raises:
        ValueError: if the inputs are not non-empty 1-D 0/1 vectors of equal length.
    """
    va = _as_binary(a_correct, 1, "a_correct").astype(bool)
    vb = _as_binary(b_correct, 1, "b_correct").astype(bool)
    if va.shape != vb.shape:
        raise ValueError(f"a_correct and b_correct differ in length: {va.size} != {vb.size}")
    b01 = int(np.sum(~va & vb))
    b10 = int(np.sum(va & ~vb))
    n = b01 + b10
    if n == 0:
        return McNemarResult(0, 0, 0.0, 1.0, "exact")
    if n < MCNEMAR_EXACT_BELOW:
        k = min(b01, b10)
        p = min(1.0, 2.0 * float(_sps.binom.cdf(k, n, 0.5)))
        return McNemarResult(b01, b10, float(k), p, "exact")
    stat = max(abs(b01 - b10) - 1.0, 0.0) ** 2 / n
    p = float(_sps.chi2.sf(stat, df=1))
    return McNemarResult(b01, b10, stat, p, "chi2-cc")


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (controls family-wise error rate).

    For ascending-sorted p-values ``p_(1) <= ... <= p_(m)`` the adjusted value is
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. Reject hypothesis i at level alpha iff its
    adjusted p-value ``<= alpha``.

    Args:
        p_values: p-values in [0, 1] (any order; ties allowed).

    Returns:
        Adjusted p-values as Python floats, in the same order as the input, each in [0, 1].
        Empty input gives ``[]``.

    Raises:
        ValueError: if any p-value is nan or outside [0, 1], or the input is not 1-D.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if p.size == 0:
        return []
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("p_values must all lie in [0, 1] (no nan)")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted_sorted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted_sorted
    return [float(x) for x in out]


def verdict(
    diff: Interval,
    higher_is_better: bool = True,
    p_value: float | None = None,
    alpha: float = 0.05,
) -> str:
    """Classify a difference interval (e.g. from :func:`paired_bootstrap_diff`).

    Args:
        diff: interval for a difference ``treatment - baseline``.
        higher_is_better: True if larger metric values are better (accuracy); False for
            losses/perplexity.
        p_value: the p-value of a test of the same difference (e.g. McNemar's exact test,
            Holm-adjusted). Given, a difference counts only if the test also rejects at
            ``alpha``: with few discordant items a percentile bootstrap interval is too narrow
            (4 of 12 items flipped gives an interval above 0 where McNemar's p is 0.125).
        alpha: the test's level.

    Returns:
        ``"improvement"`` if the whole interval lies strictly on the good side of 0 (and the
        test rejects, when ``p_value`` is given), ``"degradation"`` if it lies strictly on the
        bad side (likewise), else ``"no detectable difference"`` (including when 0 is inside or
        on the boundary, and when bounds are nan). The point estimate alone never yields an
        improvement.
    """
    if p_value is not None and not p_value <= alpha:
        return "no detectable difference"
    if diff.low > 0.0:
        return "improvement" if higher_is_better else "degradation"
    if diff.high < 0.0:
        return "degradation" if higher_is_better else "improvement"
    return "no detectable difference"


# --------------------------------------------------------------------------- two-sample shift

#: Largest ``m * n`` for which :func:`shift_interval` uses the exact null distribution of U.
_SHIFT_EXACT_MAX_MN = 2500


def _mwu_null_cdf(m: int, n: int) -> np.ndarray:
    """``P(U <= u)`` for ``u = 0..m*n`` under the null (no ties), U = #{(i, j): a_i > b_j}.

    Uses the recurrence ``P_{m,n}(u) = m/(m+n) P_{m-1,n}(u-n) + n/(m+n) P_{m,n-1}(u)``.
    """
    # row[j] holds the pmf for sizes (i, j) while i grows; sizes (0, j) and (i, 0) give U = 0.
    rows = [np.ones(1) for _ in range(n + 1)]
    for i in range(1, m + 1):
        new = [np.ones(1)]
        for j in range(1, n + 1):
            pmf = np.zeros(i * j + 1)
            prev_a = rows[j]  # sizes (i-1, j): the largest value is one of a's -> U += j
            pmf[j : j + prev_a.size] += i / (i + j) * prev_a
            prev_b = new[j - 1]  # sizes (i, j-1): the largest value is one of b's
            pmf[: prev_b.size] += j / (i + j) * prev_b
            new.append(pmf)
        rows = new
    return np.cumsum(rows[n])


def shift_interval(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = 0.95
) -> Interval:
    """Hodges-Lehmann estimate of the location shift ``a - b`` with its distribution-free
    confidence interval (the Mann-Whitney test inverted), for two independent samples such as
    the steps-to-99% of two configurations over seeds.

    The estimate is the median of the ``m * n`` differences ``a_i - b_j``. With sorted
    differences ``D_(1) <= ... <= D_(mn)`` the interval is ``[D_(c+1), D_(mn-c)]``, where ``c``
    is the largest U with ``P(U <= c) <= (1 - level) / 2`` under the null. ``P`` is exact
    (``method="hodges-lehmann-exact"``) for ``m * n <= 2500`` or a one-observation side, and the
    normal approximation with continuity correction (``"hodges-lehmann-normal"``) otherwise;
    ties make the exact
    coverage approximate, as in R's ``wilcox.test(conf.int=TRUE)``. When the samples are too
    small for the level (no ``c >= 0``), the bounds are ``-inf`` and ``inf``.

    Raises:
        ValueError: if either sample is empty, not 1-D or not finite, or ``level`` is invalid.
    """
    level = _check_level(level)
    x = _as_1d_finite(a, "a")
    y = _as_1d_finite(b, "b")
    m, n = x.size, y.size
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    estimate = float(np.median(diffs))
    c, method = _shift_rank(m, n, level)
    if c < 0:
        return Interval(estimate, -math.inf, math.inf, level, method)
    return Interval(estimate, float(diffs[c]), float(diffs[m * n - c - 1]), level, method)


def _shift_rank(m: int, n: int, level: float) -> tuple[int, str]:
    """``c``, the largest U with ``P(U <= c) <= (1 - level) / 2`` under the null for samples of
    ``m`` and ``n`` (``-1``: none), and the method that gave it (see :func:`shift_interval`)."""
    alpha_half = (1.0 - level) / 2.0
    if m * n <= _SHIFT_EXACT_MAX_MN or min(m, n) == 1:
        # one observation on a side: U is uniform on 0..m*n (the normal approximation is poor)
        cdf = np.arange(1, m * n + 2) / (m * n + 1) if min(m, n) == 1 else _mwu_null_cdf(m, n)
        below = np.nonzero(cdf <= alpha_half + 1e-12)[0]
        return (int(below[-1]) if below.size else -1), "hodges-lehmann-exact"
    sd = math.sqrt(m * n * (m + n + 1) / 12.0)
    return math.floor(m * n / 2.0 - _z(level) * sd - 0.5), "hodges-lehmann-normal"


def _censored(
    values: Sequence[float | None], last: Sequence[float], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The bounds ``[low, high]`` of right-censored observations: a value is itself; ``None``
    is later than its ``last`` (``[last, inf]``)."""
    vals = list(values)
    ends = _as_1d_finite(last, f"{name}_last")
    if len(vals) != ends.size:
        raise ValueError(f"{name} and {name}_last differ in length ({len(vals)}, {ends.size})")
    low = np.array([e if v is None else v for v, e in zip(vals, ends, strict=True)], float)
    high = np.array([math.inf if v is None else v for v in vals], float)
    _as_1d_finite(low, name)
    return low, high


def censored_shift_interval(
    a: Sequence[float | None],
    b: Sequence[float | None],
    a_last: Sequence[float],
    b_last: Sequence[float],
    level: float = 0.95,
) -> Interval:
    """:func:`shift_interval` of ``a - b`` when some observations are right-censored: ``None``
    means "later than ``a_last[i]``" (``b_last[j]``), e.g. a seed that never reached 99% within
    its run, whose run ended at that step.

    Each difference ``a_i - b_j`` is then only known to lie between bounds (``a_i`` censored:
    above ``a_last[i] - b_j``; ``b_j`` censored: below ``a_i - b_last[j]``; both: anywhere), and
    so is each order statistic of the differences. The interval is the widest that any
    completion of the censored values gives: its low end the ``(c+1)``-th smallest lower bound,
    its high end the ``(m*n-c)``-th smallest upper bound (``-inf``/``inf`` where unbounded), so
    it covers at least as often as :func:`shift_interval` on the uncensored values would. The
    estimate is the Hodges-Lehmann median where the censoring leaves it determined, else
    ``nan``. ``method`` is :func:`shift_interval`'s with ``"-censored"`` appended.

    Raises:
        ValueError: if a sample is empty, a value or last step is not finite, or a sample and
            its last steps differ in length.
    """
    level = _check_level(level)
    a_low, a_high = _censored(a, a_last, "a")
    b_low, b_high = _censored(b, b_last, "b")
    m, n = a_low.size, b_low.size
    lower = np.sort((a_low[:, None] - b_high[None, :]).ravel())
    upper = np.sort((a_high[:, None] - b_low[None, :]).ravel())
    med_low, med_high = float(np.median(lower)), float(np.median(upper))
    estimate = med_low if med_low == med_high and math.isfinite(med_low) else math.nan
    c, method = _shift_rank(m, n, level)
    method += "-censored"
    if c < 0:
        return Interval(estimate, -math.inf, math.inf, level, method)
    return Interval(estimate, float(lower[c]), float(upper[m * n - c - 1]), level, method)


#: Largest number of splits of the pooled sample that :func:`mann_whitney_p` enumerates.
_MWU_EXACT_MAX_SPLITS = 50_000


def mann_whitney_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of the Mann-Whitney U test that ``a`` and ``b`` (two independent samples,
    e.g. the steps-to-99% of two configurations over seeds) come from the same distribution.

    Exact when the pooled sample has at most 50,000 splits into groups of ``len(a)`` and
    ``len(b)`` (every split is enumerated, with mid-ranks for ties, so ties are exact too; 12
    against 12 seeds is 2.7 million splits and is not); above that, the normal approximation with
    tie and continuity corrections. All values equal gives 1.0. With 3 against 3 seeds the
    smallest possible p is 0.1: such a comparison can never reject at 0.05.

    Raises:
        ValueError: if either sample is empty, not 1-D or not finite.
    """
    x = _as_1d_finite(a, "a")
    y = _as_1d_finite(b, "b")
    m, n = x.size, y.size
    ranks = _sps.rankdata(np.concatenate([x, y]))
    u = float(ranks[:m].sum() - m * (m + 1) / 2.0)
    mu = m * n / 2.0
    if math.comb(m + n, m) <= _MWU_EXACT_MAX_SPLITS:
        idx = np.array(list(itertools.combinations(range(m + n), m)), dtype=np.int64)
        us = ranks[idx].sum(axis=1) - m * (m + 1) / 2.0
        return float(np.mean(np.abs(us - mu) >= abs(u - mu) - 1e-9))
    big_n = m + n
    _, t = np.unique(ranks, return_counts=True)
    var = m * n / 12.0 * ((big_n + 1) - float((t**3 - t).sum()) / (big_n * (big_n - 1)))
    if var <= 0.0:
        return 1.0
    z = max(abs(u - mu) - 0.5, 0.0) / math.sqrt(var)
    return float(min(1.0, 2.0 * _sps.norm.sf(z)))


def mann_whitney_min_p(m: int, n: int) -> float:
    """The smallest two-sided p-value :func:`mann_whitney_p` can give for samples of ``m`` and
    ``n`` (every value of one below every value of the other, no ties): ``2 / C(m + n, m)``
    where exact. 2 against 2 seeds give 0.33 and 3 against 3 give 0.1, so neither can ever
    reject at 0.05.

    Raises:
        ValueError: if ``m`` or ``n`` is not a positive integer.
    """
    m, n = _count("m", m), _count("n", n)
    if m < 1 or n < 1:
        raise ValueError(f"m and n must be >= 1, got {m} and {n}")
    return mann_whitney_p(np.arange(m), np.arange(m, m + n))


def censored_ranks(
    a: Sequence[float | None],
    b: Sequence[float | None],
    a_last: Sequence[float],
    b_last: Sequence[float],
) -> tuple[list[float], list[float]] | None:
    """Values that rank like right-censored samples, for :func:`mann_whitney_p`: ``None`` means
    "later than ``a_last[i]``" (``b_last[j]``), as in :func:`censored_shift_interval`.

    The ranks are defined when every censored observation's last step is at least every
    observed value of either sample: then it is later than all of them, and censored
    observations, whose order is unknown, tie with each other. Returns the samples with each
    censored value replaced by one value above every observed value, or ``None`` when the
    ranks are not defined (a censored observation ended before an observed value: its order
    against that value is unknown).

    Raises:
        ValueError: as :func:`censored_shift_interval`.
    """
    a_low, a_high = _censored(a, a_last, "a")
    b_low, b_high = _censored(b, b_last, "b")
    low, high = np.concatenate([a_low, b_low]), np.concatenate([a_high, b_high])
    seen = low[np.isfinite(high)]
    cut = low[~np.isfinite(high)]
    if seen.size and cut.size and cut.min() < seen.max():
        return None
    later = float(seen.max()) + 1.0 if seen.size else 0.0
    return (
        [later if math.isinf(h) else float(v) for v, h in zip(a_low, a_high, strict=True)],
        [later if math.isinf(h) else float(v) for v, h in zip(b_low, b_high, strict=True)],
    )


# --------------------------------------------------------------------------- code benchmarks


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from ``n`` samples of which ``c`` passed (Chen et al. 2021).

    ``1 - C(n-c, k) / C(n, k)``, computed as a stable product. Requires ``1 <= k <= n`` and
    ``0 <= c <= n``; with ``n - c < k`` every draw of k samples holds a pass, so it is 1.0.
    """
    n, c, k = _count("n", n), _count("c", c), _count("k", k)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got {c}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
