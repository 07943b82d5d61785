"""Online A/B reads: fixed-horizon tests of two independent arms, always-valid inference, and the SRM check.

`two_proportion_ztest`, `welch_test`, `welch_interval` and `is_significant` are for a test read once, at its
planned size (`promptlab.stats._planning` sizes it): a fixed-horizon p-value is valid once, at the planned sample
size; read it at 10 looks and the false positive rate is about 19% at a nominal 5%. The normal-mixture
martingale (mSPRT; GrowthBook's ``SequentialTwoSidedTTest``, confseq's ``normal_log_mixture``) gives a p-value
and a confidence sequence that hold at every look, at the price of wider intervals. Formulas (two-sided), with θ̂ the
estimate, v = Var(θ̂), N the units in both arms and S the tuning ("expected sample size", default 5,000)::

    ρ² = (−2 ln α + ln(1 − 2 ln α)) / S          τ² = N·v·ρ²
    Λ  = sqrt(v/(v+τ²)) · exp(θ̂²·τ² / (2·v·(v+τ²)))          p = min(1, 1/Λ), running minimum over looks
    CS = θ̂ ± sqrt(v·N) · sqrt(2(Nρ²+1)·ln(sqrt(Nρ²+1)/α) / (N²ρ²))

Every read of a live test should also run `srm_check` (sample ratio mismatch) before anything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as st

from ..errors import StatsError
from ._checks import _check_alternative, _check_confidence, _check_counts, _p_from_z
from ._intervals import Interval
from ._lift import LiftInterval, relative_lift, welch_df

if TYPE_CHECKING:
    from ._srm import SequentialSRM

DEFAULT_TUNING = 5000
"""GrowthBook's default S: the sample size around which the test is most sensitive."""
SRM_THRESHOLD = 0.001
SEQUENTIAL_COLUMNS = ["look", "n", "estimate", "variance", "p_look", "p_value", "ci_low", "ci_high"]
"""Columns of the per-look frame: ``p_look`` is that look's own p, ``p_value`` the running minimum."""


# ---- fixed-horizon tests of two independent arms ----------------------------------------------------------
@dataclass(frozen=True)
class TwoArmResult:
    """A test of B against A.

    Attributes:
        statistic: z or t.
        p_value: the p-value for ``alternative``.
        estimate: the difference B − A.
        alternative: ``"two-sided"``, ``"greater"`` (B > A) or ``"less"``.
        method: the test's name.
        df: degrees of freedom for t tests (NaN for z tests).
    """

    statistic: float
    p_value: float
    estimate: float
    alternative: str
    method: str
    df: float = math.nan


@dataclass(frozen=True)
class SignificanceResult:
    """The answer of `is_significant`; truthy when significant and unpacks as ``(significant, p_value)``.

    Attributes:
        significant: p_value < alpha.
        p_value: the test's p-value.
        z: the pooled z statistic (B − A).
        diff: treatment rate − control rate.
        alternative: the alternative tested.
    """

    significant: bool
    p_value: float
    z: float
    diff: float
    alternative: str

    def __bool__(self) -> bool:
        return self.significant

    def __iter__(self) -> Iterator:
        return iter((self.significant, self.p_value))


def two_proportion_ztest(x_a: int, n_a: int, x_b: int, n_b: int, alternative: str = "two-sided",
                         pooled: bool = True) -> TwoArmResult:
    """z-test for p_B − p_A from counts (statsmodels ``proportions_ztest([x_b, x_a], [n_b, n_a])``).

    Args:
        x_a, n_a: baseline successes and trials.
        x_b, n_b: variant successes and trials.
        alternative: ``"two-sided"`` (default); ``"greater"`` or ``"less"`` only when declared in advance.
        pooled: pooled variance under the null (the classic test); False uses the unpooled (Wald) variance.
    """
    _check_counts(x_a, n_a, "x_a")
    _check_counts(x_b, n_b, "x_b")
    _check_alternative(alternative)
    if n_a == 0 or n_b == 0:
        raise StatsError(f"two_proportion_ztest needs trials in both arms; got n_a={n_a!r}, n_b={n_b!r}.")
    pa, pb = x_a / n_a, x_b / n_b
    if pooled:
        p = (x_a + x_b) / (n_a + n_b)
        var = p * (1 - p) * (1 / n_a + 1 / n_b)
    else:
        var = pa * (1 - pa) / n_a + pb * (1 - pb) / n_b
    if var == 0:
        return TwoArmResult(0.0, 1.0, pb - pa, alternative, "two-proportion z")
    z = (pb - pa) / math.sqrt(var)
    return TwoArmResult(z, _p_from_z(z, alternative), pb - pa, alternative, "two-proportion z")


def welch_test(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int,
               alternative: str = "two-sided") -> TwoArmResult:
    """Welch's t test for mean_B − mean_A from per-arm summaries (scipy ``ttest_ind_from_stats``).

    Args:
        mean_a, var_a, n_a: baseline mean, variance and count (for a proportion p, var = p(1 − p)).
        mean_b, var_b, n_b: the same for the variant.
        alternative: ``"two-sided"``, ``"greater"`` (B > A) or ``"less"``.
    """
    _check_alternative(alternative)
    if n_a < 2 or n_b < 2:
        raise StatsError(f"welch_test needs at least 2 units per arm; got n_a={n_a!r}, n_b={n_b!r}.")
    if var_a + var_b == 0:  # no spread: the difference is certain, so p is 0 or 1 by its direction
        diff = mean_b - mean_a
        agrees = {"two-sided": diff != 0, "greater": diff > 0, "less": diff < 0}[alternative]
        return TwoArmResult(0.0, 0.0 if agrees else 1.0, diff, alternative, "welch t")
    res = st.ttest_ind_from_stats(mean_b, math.sqrt(var_b), n_b, mean_a, math.sqrt(var_a), n_a,
                                  equal_var=False, alternative=alternative)
    df = welch_df(var_a, n_a, var_b, n_b)
    return TwoArmResult(float(res.statistic), float(res.pvalue), mean_b - mean_a, alternative, "welch t", df)


@dataclass(frozen=True)
class WelchInterval(Interval):
    """mean_B − mean_A with its fixed-horizon Welch t interval, and the relative lift beside it.

    Attributes:
        se: sqrt(var_A/n_A + var_B/n_B).
        df: Welch–Satterthwaite degrees of freedom (inf when neither arm varies).
        p_value: two-sided Welch p of "no difference".
        relative: (mean_B − mean_A)/mean_A with its delta-method interval (`promptlab.stats.relative_lift`;
            NaN with a note when mean_A is 0).
    """

    se: float = math.nan
    df: float = math.nan
    p_value: float = math.nan
    relative: LiftInterval | None = None


def welch_interval(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, *,
                   confidence: float = 0.95) -> WelchInterval:
    """Fixed-horizon interval for mean_B − mean_A from per-arm summaries (Welch's t, unequal variances), with
    the relative lift and its delta-method interval.

    ``diff ± t_{df, 1−α/2} · sqrt(var_A/n_A + var_B/n_B)``, df by Welch–Satterthwaite. Read once, at the
    planned size; while the test runs use `always_valid_means`. Reference: scipy
    ``ttest_ind(b, a, equal_var=False).confidence_interval(confidence)`` on the raw values.

    Args:
        mean_a, var_a, n_a: baseline mean, per-unit variance (ddof 1) and count.
        mean_b, var_b, n_b: the same for the variant.
        confidence: coverage of both intervals.
    """
    _check_confidence(confidence)
    if n_a < 2 or n_b < 2:
        raise StatsError(f"welch_interval needs at least 2 units per arm; got n_a={n_a!r}, n_b={n_b!r}.")
    if min(var_a, var_b) < 0 or not all(map(math.isfinite, (mean_a, var_a, mean_b, var_b))):
        raise StatsError(f"welch_interval needs finite means and variances >= 0; got var_a={var_a!r}, "
                         f"var_b={var_b!r}, mean_a={mean_a!r}, mean_b={mean_b!r}. Drop NaN values first.")
    diff, se, df = mean_b - mean_a, math.sqrt(var_a / n_a + var_b / n_b), welch_df(var_a, n_a, var_b, n_b)
    relative = relative_lift(mean_a, var_a, n_a, mean_b, var_b, n_b, confidence=confidence)
    if se == 0:  # no spread in either arm: the difference is known exactly
        return WelchInterval(diff, diff, diff, confidence, "welch t", 0.0, df, float(diff == 0), relative)
    half = float(st.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * st.t.sf(abs(diff) / se, df))
    return WelchInterval(diff, diff - half, diff + half, confidence, "welch t", se, df, p, relative)


def is_significant(control_successes: int, control_n: int, treatment_successes: int, treatment_n: int,
                   alpha: float = 0.05, alternative: str = "two-sided") -> SignificanceResult:
    """Is the treatment's rate different from the control's? A drop-in for the starting document's helper.

    What changed: the article computed a one-sided pooled z-test with ``p = 1 - norm.cdf(z)``. This is
    two-sided by default — a one-sided test is valid only when its direction was declared before the data
    were seen, and it halves p (doubling false positives against a two-sided reading). Pass
    ``alternative="greater"`` to get the article's test; p comes from ``norm.sf``, which stays accurate in
    the tail where ``1 - cdf`` rounds to 0.

    The result is truthy when significant and unpacks as ``significant, p_value = is_significant(...)``.
    """
    res = two_proportion_ztest(control_successes, control_n, treatment_successes, treatment_n,
                               alternative=alternative, pooled=True)
    return SignificanceResult(bool(res.p_value < alpha), res.p_value, res.statistic, res.estimate,
                              alternative)


# ---- always-valid inference --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SequentialResult:
    """An always-valid read of a running test.

    Attributes:
        estimate: θ̂ (e.g. p_B − p_A).
        variance: Var(θ̂).
        n: units in both arms.
        p_value: always-valid two-sided p (valid whenever you look).
        ci_low, ci_high: the confidence sequence at this look (±inf when there is no variance yet).
        alpha: the sequence's error rate.
        tuning: S.
    """

    estimate: float
    variance: float
    n: int
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    tuning: float

    @property
    def significant(self) -> bool:
        """The sequence excludes 0 (equivalently p_value < alpha)."""
        return self.p_value < self.alpha


def mixture_rho2(alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> float:
    """The mixing variance per unit, ρ² = (−2 ln α + ln(1 − 2 ln α)) / S."""
    if not 0 < alpha < 1 or tuning <= 0:
        raise StatsError(f"need 0 < alpha < 1 and tuning > 0; got alpha={alpha!r}, tuning={tuning!r}.")
    return (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tuning


def _look(estimate: np.ndarray, variance: np.ndarray, n: np.ndarray, alpha: float,
          tuning: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-look p-value and CS half-width (vectorised); degenerate looks give p 1 and width inf."""
    rho2 = mixture_rho2(alpha, tuning)
    ok = (variance > 0) & (n > 0)
    v, size, theta = np.where(ok, variance, 1.0), np.where(ok, n, 1.0), np.where(ok, estimate, 0.0)
    tau2 = size * v * rho2
    log_lambda = 0.5 * np.log(v / (v + tau2)) + theta ** 2 * tau2 / (2 * v * (v + tau2))
    p = np.minimum(1.0, np.exp(-log_lambda))
    nr = size * rho2
    half = np.sqrt(v * size) * np.sqrt(2 * (nr + 1) * np.log(np.sqrt(nr + 1) / alpha) / (size ** 2 * rho2))
    return np.where(ok, p, 1.0), np.where(ok, half, np.inf)


def always_valid(estimate: float | Sequence[float], variance: float | Sequence[float],
                 n: int | Sequence[int], *, alpha: float = 0.05,
                 tuning: float = DEFAULT_TUNING) -> SequentialResult | pd.DataFrame:
    """Always-valid p-value and confidence sequence for any asymptotically normal estimate.

    Scalars give one `SequentialResult`. Sequences (one entry per look, in time order) give a DataFrame
    with `SEQUENTIAL_COLUMNS`, where ``p_value`` is the running minimum of the per-look p (valid because the
    guarantee holds uniformly over looks).

    Args:
        estimate: θ̂ per look.
        variance: Var(θ̂) per look.
        n: units in both arms per look.
        alpha: error rate of the sequence, default 0.05 (two-sided).
        tuning: S, the sample size the mixture is tuned for (default 5,000).
    """
    theta = np.atleast_1d(np.asarray(estimate, dtype=float))
    var, size = np.atleast_1d(np.asarray(variance, dtype=float)), np.atleast_1d(np.asarray(n, dtype=float))
    if not theta.shape == var.shape == size.shape:
        raise StatsError(f"estimate, variance and n need one value per look; got lengths {theta.size}, "
                         f"{var.size} and {size.size}.")
    p, half = _look(theta, var, size, alpha, tuning)
    if np.ndim(estimate) == 0:
        return SequentialResult(float(theta[0]), float(var[0]), int(size[0]), float(p[0]),
                                float(theta[0] - half[0]), float(theta[0] + half[0]), alpha, tuning)
    return pd.DataFrame({"look": np.arange(1, theta.size + 1), "n": size.astype(np.int64), "estimate": theta,
                         "variance": var, "p_look": p, "p_value": np.minimum.accumulate(p),
                         "ci_low": theta - half, "ci_high": theta + half})


def always_valid_proportions(x_a: int | Sequence[int], n_a: int | Sequence[int], x_b: int | Sequence[int],
                             n_b: int | Sequence[int], *, alpha: float = 0.05,
                             tuning: float = DEFAULT_TUNING) -> SequentialResult | pd.DataFrame:
    """Always-valid read of p_B − p_A from cumulative counts (scalars: one look; sequences: every look).

    v = p_A(1 − p_A)/n_A + p_B(1 − p_B)/n_B, N = n_A + n_B. Reference (gbstats 0.8.0, confseq): T1 data
    200/1000 vs 240/1000, S = 5,000 → p 0.3456753217, sequence [−0.0178025758, 0.0978025758].
    """
    xa, na = np.asarray(x_a, dtype=float), np.asarray(n_a, dtype=float)
    xb, nb = np.asarray(x_b, dtype=float), np.asarray(n_b, dtype=float)
    if (xa < 0).any() or (xb < 0).any() or (xa > na).any() or (xb > nb).any():
        raise StatsError(f"counts must satisfy 0 <= x <= n; got x_a={x_a!r}, n_a={n_a!r}, x_b={x_b!r}, "
                         f"n_b={n_b!r}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        pa, pb = np.where(na > 0, xa / na, 0.0), np.where(nb > 0, xb / nb, 0.0)
        var = pa * (1 - pa) / np.maximum(na, 1) + pb * (1 - pb) / np.maximum(nb, 1)
        var = np.where((na > 0) & (nb > 0), var, 0.0)
    return always_valid(pb - pa if np.ndim(pa) else float(pb - pa), var if np.ndim(var) else float(var),
                        na + nb if np.ndim(na) else int(na + nb), alpha=alpha, tuning=tuning)


def always_valid_means(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, *,
                       alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> SequentialResult:
    """Always-valid read of mean_B − mean_A from per-arm summaries (v = var_A/n_A + var_B/n_B)."""
    if n_a <= 0 or n_b <= 0:
        return always_valid(mean_b - mean_a, 0.0, max(0, n_a) + max(0, n_b), alpha=alpha, tuning=tuning)
    return always_valid(mean_b - mean_a, var_a / n_a + var_b / n_b, n_a + n_b, alpha=alpha, tuning=tuning)


# ---- sample ratio mismatch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SRMResult:
    """Sample ratio mismatch check (chi-square goodness of fit of the arm counts to the planned split).

    Attributes:
        observed: units per arm.
        expected: units per arm under the planned weights.
        chi2: the chi-square statistic.
        df: degrees of freedom (arms − 1).
        p_value: its p-value.
        threshold: the p below which the split is flagged (0.001).
        mismatch: p_value < threshold — do not trust the test's results until the cause is found.
        sequential: the always-valid SRM test over the looks (`promptlab.stats.sequential_srm`) when the read
            had looks, else None.
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    threshold: float
    mismatch: bool
    sequential: SequentialSRM | None = None

    @property
    def flagged(self) -> bool:
        """The χ² check or the sequential test flags the split: either blocks shipping."""
        return self.mismatch or (self.sequential is not None and self.sequential.mismatch)

    @property
    def message(self) -> str:
        """One sentence saying whether the split looks as planned (both checks when the read had looks)."""
        if self.mismatch:
            text = (f"sample ratio mismatch: observed {list(self.observed)!r} vs expected "
                    f"{[round(e, 1) for e in self.expected]!r} (χ² p = {self.p_value:.2g} < {self.threshold})")
        else:
            text = f"no sample ratio mismatch (χ² p = {self.p_value:.3g} ≥ {self.threshold})"
        if self.sequential is not None:
            text += f"; {self.sequential.message}"
        if self.flagged:
            text += "; find the cause (assignment, logging, bot filtering) before reading the results."
        return text


def srm_check(observed_counts: Sequence[int], weights: Sequence[float] | None = None,
              threshold: float = SRM_THRESHOLD) -> SRMResult:
    """Sample ratio mismatch: do the arms' unit counts fit the planned split? (scipy ``chisquare``)

    χ² = Σ (o_k − e_k)²/e_k with e_k = w_k/Σw · Σo, df = K − 1. Run it on every read of an online test; a
    flag (p < 0.001) means assignment or logging is broken.

    Args:
        observed_counts: units per arm.
        weights: planned traffic shares (any scale); equal by default.
        threshold: p below which to flag; 0.001 by default.
    """
    obs = np.asarray(observed_counts, dtype=float)
    w = np.ones_like(obs) if weights is None else np.asarray(weights, dtype=float)
    if obs.size < 2 or w.shape != obs.shape or (w <= 0).any() or (obs < 0).any():
        raise StatsError(f"srm_check needs >= 2 arms, non-negative counts and one positive weight per arm; "
                         f"got counts {list(observed_counts)!r} and weights {weights!r}.")
    expected = w / w.sum() * obs.sum()
    observed = tuple(int(o) for o in obs)
    if obs.sum() == 0:
        return SRMResult(observed, tuple(expected.tolist()), 0.0, obs.size - 1, 1.0, threshold, False)
    res = st.chisquare(obs, expected)
    return SRMResult(observed, tuple(float(e) for e in expected), float(res.statistic), obs.size - 1,
                     float(res.pvalue), threshold, bool(res.pvalue < threshold))
