"""The vectorised TPE kernels return bit-identical results to hyperopt's own functions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hyperopt import tpe

from hyperhive import tpe_kernels


def mixture(rng: np.random.Generator, k: int, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """A Parzen mixture as hyperopt's adaptive_parzen_normal builds it from ``k`` observations."""
    return tpe.adaptive_parzen_normal(rng.uniform(lo, hi, k), 1.0, (lo + hi) / 2, hi - lo)


def same(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Equal bit for bit (NaN and infinities included), same shape."""
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs, strict=True)


GMM_CASES: list[dict[str, Any]] = [
    {},
    {"low": -2.0, "high": 3.0},
    {"q": 1.0},
    {"q": 0.5, "low": -2.0, "high": 3.0},
    {"q": 3.0, "low": 0.0, "high": 10.0},
]


@pytest.mark.parametrize("k", [0, 1, 2, 7, 400])
@pytest.mark.parametrize(
    "case", GMM_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain"
)
def test_gmm1_lpdf_equals_hyperopt(k: int, case: dict[str, Any]) -> None:
    rng = np.random.default_rng(k)
    weights, mus, sigmas = mixture(rng, k, -2.0, 3.0)
    for samples in (
        rng.uniform(-2, 3, 24),
        np.round(rng.uniform(-2, 3, (3, 5))),
        np.asarray([0.5]),
        np.asarray([]),
    ):
        ours = tpe_kernels.gmm1_lpdf(samples, weights, mus, sigmas, **case)
        theirs = tpe.GMM1_lpdf(samples, weights, mus, sigmas, **case)
        same(ours, theirs)


LGMM_CASES: list[dict[str, Any]] = [
    {},
    {"low": -4.0, "high": 1.0},
    {"q": 1.0},
    {"q": 0.5, "low": -4.0, "high": 1.0},
    {"q": 2.0, "low": 0.0, "high": 3.0},
]


@pytest.mark.parametrize("k", [0, 1, 3, 300])
@pytest.mark.parametrize(
    "case", LGMM_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain"
)
def test_lgmm1_lpdf_equals_hyperopt(k: int, case: dict[str, Any]) -> None:
    rng = np.random.default_rng(100 + k)
    weights, mus, sigmas = mixture(rng, k, -4.0, 1.0)
    for samples in (
        np.exp(rng.uniform(-4, 1, 24)),
        np.round(np.exp(rng.uniform(-4, 3, (4, 6)))),
        np.asarray([0.0, 1.0]),
    ):
        with np.errstate(all="ignore"):
            ours = tpe_kernels.lgmm1_lpdf(samples, weights, mus, sigmas, **case)
            theirs = tpe.LGMM1_lpdf(samples, weights, mus, sigmas, **case)
        same(ours, theirs)


@pytest.mark.parametrize("bounds", [{"low": -2.0}, {"high": 3.0}])
def test_one_sided_truncation_is_refused_as_by_hyperopt(bounds: dict[str, float]) -> None:
    weights, mus, sigmas = mixture(np.random.default_rng(0), 5, -2.0, 3.0)
    for fn in (tpe_kernels.gmm1_lpdf, tpe.GMM1_lpdf):
        with pytest.raises(TypeError):
            fn([0.5], weights, mus, sigmas, q=1.0, **bounds)


def test_cdfs_equal_hyperopt_elementwise() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 5, 50)
    mus, sigmas = rng.uniform(-1, 1, 7), rng.uniform(0, 2, 7)
    table = tpe_kernels.normal_cdf(x[None, :], mus[:, None], sigmas[:, None])
    for j, (mu, sigma) in enumerate(zip(mus, sigmas, strict=True)):
        same(table[j], tpe.normal_cdf(x, mu, sigma))
    xp = np.abs(x)
    table = tpe_kernels.lognormal_cdf(xp, mus[:, None], sigmas[:, None])
    for j, (mu, sigma) in enumerate(zip(mus, sigmas, strict=True)):
        same(table[j], tpe.lognormal_cdf(xp, mu, sigma))
    with pytest.raises(ValueError, match="negative"):
        tpe_kernels.lognormal_cdf(np.asarray([-1.0]), 0.0, 1.0)


def test_mixture_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="weights"):
        tpe_kernels.gmm1_lpdf([1.0], [[1.0]], [0.0], [1.0])
    with pytest.raises(ValueError, match="length"):
        tpe_kernels.gmm1_lpdf([1.0], [0.5, 0.5], [0.0], [1.0])


@pytest.mark.parametrize("n", [0, 1, 5, 40, 1000])
@pytest.mark.parametrize("gamma", [0.25, 0.05, 1.0])
def test_split_equals_ap_split_trials(n: int, gamma: float) -> None:
    rng = np.random.default_rng(n)
    tids = np.sort(rng.choice(5 * n + 1, n, replace=False))
    # ties (including infinite losses of running trials) straddle the cut
    losses = np.where(rng.random(n) < 0.3, np.inf, np.round(rng.random(n), 1))
    has = rng.random(n) < 0.7  # a conditional parameter: some trials lack it
    obs_idxs = tids[has]
    for obs_vals in (rng.uniform(0, 1, has.sum()), rng.integers(0, 3, has.sum())):
        ours = tpe_kernels.split_below_above(obs_idxs, obs_vals, tids, losses, gamma)
        theirs = tpe.ap_split_trials(list(obs_idxs), list(obs_vals), list(tids), list(losses), gamma)
        for o, t in zip(ours, theirs, strict=True):
            same(o, t)


def test_split_drops_values_of_unknown_ids() -> None:
    below, above = tpe_kernels.split_below_above([1, 2, 9], [0.1, 0.2, 0.9], [1, 2, 3], [0.0, 1.0, 2.0], 0.5)
    theirs = tpe.ap_split_trials([1, 2, 9], [0.1, 0.2, 0.9], [1, 2, 3], [0.0, 1.0, 2.0], 0.5)
    same(below, theirs[0])
    same(above, theirs[1])
    assert list(below) == [0.1] and list(above) == [0.2]


@pytest.mark.parametrize(
    "case", GMM_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain"
)
def test_shortcuts_keep_every_bit_at_thousands_of_components(case: dict[str, Any]) -> None:
    """At 3,000 narrow components over a wide range most terms sit where ``erf`` is exactly +-1 and
    ``exp`` exactly 0 (the kernels skip those calls), and quantised candidates repeat (computed once):
    still hyperopt's bits, for every candidate, far ones and repeated ones included."""
    rng = np.random.default_rng(11)
    lo, hi = -2.0, 3.0
    weights, mus, sigmas = tpe.adaptive_parzen_normal(rng.uniform(lo, hi, 3000), 1.0, 0.5, hi - lo)
    samples = np.concatenate([rng.uniform(lo, hi, 20), np.round(rng.uniform(lo, hi, 20)), [lo, hi, 0.0, 0.0]])
    with np.errstate(all="ignore"):
        same(
            tpe_kernels.gmm1_lpdf(samples, weights, mus, sigmas, **case),
            tpe.GMM1_lpdf(samples, weights, mus, sigmas, **case),
        )
        lcase = {k: v for k, v in case.items() if k != "low" or v is None}
        if "high" in lcase:
            lcase["low"] = -4.0
        positive = np.exp(samples)
        same(
            tpe_kernels.lgmm1_lpdf(positive, weights, mus, sigmas, **lcase),
            tpe.LGMM1_lpdf(positive, weights, mus, sigmas, **lcase),
        )
    odd = np.asarray([[-np.inf, -np.inf, -np.inf], [np.nan, 0.0, -800.0], [0.0, -745.9, -746.1]])
    with np.errstate(all="ignore"):
        same(tpe_kernels.logsum_rows(odd), tpe.logsum_rows(odd))
