"""Vectorised drop-in replacements for the density kernels of hyperopt's TPE (``hyperopt.tpe``).

hyperopt scores each of TPE's candidates under the Parzen mixtures of the "below" and "above" trials with
``GMM1_lpdf`` (normal mixtures, optionally truncated to ``[low, high)``) and ``LGMM1_lpdf`` (log-normal
mixtures). For quantised parameters (``quniform``, ``qnormal``, ``qloguniform``, ``qlognormal``) both
loop in Python over the mixture's components, one component per past trial, calling ``normal_cdf`` /
``lognormal_cdf`` twice per component: at 1,000 trials that loop is most of an ask.

The functions here compute the same quantities as one ``(components, candidates)`` array. They are
written to return *bit-identical* results to hyperopt 0.2.7-0.3.x, so that TPE keeps making exactly the
same suggestions:

- every elementwise step is the same IEEE operation on the same operands as in hyperopt (``erf`` of the
  same ``z``, the same ``w * cdf(upper)`` then ``- w * cdf(lower)``);
- the sum over components is sequential in component order (``np.cumsum`` along the component axis), as
  hyperopt's ``prob += inc_amt`` loop is, rather than numpy's pairwise ``sum``, whose rounding differs.

The unquantised branches were already vectorised in hyperopt and are kept as they are, including its
quirks (``LGMM1_lpdf`` does not divide by the truncated mass when ``q`` is None).

Three shortcuts skip work without changing a bit: ``erf`` is called only where it is not exactly +-1
(:data:`ERF_IS_ONE`), ``exp`` in ``logsum_rows`` only where it is not exactly 0 (:data:`EXP_IS_ZERO`;
the same array is summed), and a quantised kernel computes each distinct candidate once (every
candidate's column is computed on its own). At 3,000 components most terms are in those regions.
``tests/engine/test_tpe_kernels.py`` checks equality with hyperopt's functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import erf

EPS = 1e-12  # hyperopt.tpe.EPS

ArrayLike = Any


ERF_IS_ONE = 8.0
"""``erf(z)`` is exactly 1.0 for ``z > ERF_IS_ONE`` and -1.0 below its negative (it is from about 5.92 on:
``1 - erfc(z)`` with ``erfc(z) < 2**-54``); checked when this module is imported."""
EXP_IS_ZERO = -746.0
"""``exp(x)`` is exactly 0.0 for ``x < EXP_IS_ZERO`` (the smallest subnormal is ``exp(-744.44)``);
checked when this module is imported."""


def _erf(z: np.ndarray) -> np.ndarray:
    """``erf(z)``, calling it only where ``|z| <= ERF_IS_ONE`` (elsewhere it is exactly +-1): same bits."""
    z = np.asarray(z, dtype=float)
    inside = ~(np.abs(z) > ERF_IS_ONE)  # NaN goes through erf
    if inside.all():
        return np.asarray(erf(z))
    out = np.sign(z)
    out[inside] = erf(z[inside])  # (scipy's ufuncs abort on ``where=`` here)
    return out


def normal_cdf(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """The normal CDF, broadcasting ``x`` against ``mu`` and ``sigma`` (hyperopt's formula)."""
    top = np.asarray(x) - mu
    bottom = np.maximum(np.sqrt(2) * np.asarray(sigma), EPS)
    z = top / bottom
    return np.asarray(0.5 * (1 + _erf(z)))


def lognormal_cdf(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """The log-normal CDF, broadcasting ``x`` against ``mu`` and ``sigma``; ``x`` must be >= 0."""
    x = np.asarray(x)
    if x.size == 0:
        return np.asarray([])
    if x.min() < 0:
        raise ValueError("negative arg to lognormal_cdf", x)
    with np.errstate(divide="ignore"):
        top = np.log(np.maximum(x, EPS)) - mu
    bottom = np.maximum(np.sqrt(2) * np.asarray(sigma), EPS)
    z = top / bottom
    return np.asarray(0.5 + 0.5 * _erf(z))


def logsum_rows(x: np.ndarray) -> np.ndarray:
    """``log(sum(exp(x), axis=1))``, stabilised by each row's maximum (hyperopt's ``logsum_rows``);
    ``exp`` is called only where it is not exactly 0 (same bits: the same array is summed)."""
    m = x.max(axis=1)
    y = x - m[:, None]
    e = np.zeros_like(y)
    np.exp(y, out=e, where=~(y < EXP_IS_ZERO))  # NaN goes through exp
    return np.asarray(np.log(e.sum(axis=1)) + m)


def _unique_columns(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The distinct values of ``flat`` and the map back (None when all are distinct): every kernel
    computes each candidate's column on its own, so equal candidates need computing once."""
    if flat.size < 2:
        return flat, None
    values, inverse = np.unique(flat, return_inverse=True)
    if len(values) == len(flat) or np.isnan(values).any():
        return flat, None
    return values, inverse


def _mixture_mass(weights: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``sum_j w_j * (upper[j] - lower[j])`` per column, summed over ``j`` in order, as hyperopt does.

    ``upper`` and ``lower`` are ``(components, candidates)`` CDF values."""
    w = weights[:, None]
    terms = w * upper
    terms -= w * lower
    return np.asarray(np.cumsum(terms, axis=0, out=terms)[-1])


def _check_mixture(weights: np.ndarray, mus: np.ndarray, sigmas: np.ndarray) -> None:
    if weights.ndim != 1:
        raise TypeError("need vector of weights", weights.shape)
    if mus.ndim != 1:
        raise TypeError("need vector of mus", mus.shape)
    if sigmas.ndim != 1:
        raise TypeError("need vector of sigmas", sigmas.shape)
    if not len(weights) == len(mus) == len(sigmas):
        raise ValueError("weights, mus and sigmas differ in length", (len(weights), len(mus), len(sigmas)))


def _accept_mass(
    weights: np.ndarray, mus: np.ndarray, sigmas: np.ndarray, low: float | None, high: float | None
) -> Any:
    """The mixture's mass inside ``[low, high)`` (1 when unbounded), as in hyperopt."""
    if low is None and high is None:
        return 1
    return np.sum(weights * (normal_cdf(high, mus, sigmas) - normal_cdf(low, mus, sigmas)))


def gmm1_lpdf(
    samples: ArrayLike,
    weights: ArrayLike,
    mus: ArrayLike,
    sigmas: ArrayLike,
    low: float | None = None,
    high: float | None = None,
    q: float | None = None,
) -> np.ndarray:
    """Log-density of ``samples`` under a 1-D normal mixture truncated to ``[low, high)``; with ``q``,
    the log-probability of the quantisation bin ``[x - q/2, x + q/2]`` (clipped to the bounds).

    Same arguments and results as ``hyperopt.tpe.GMM1_lpdf``."""
    samples, weights, mus, sigmas = (np.asarray(a) for a in (samples, weights, mus, sigmas))
    if samples.size == 0:
        return np.asarray([])
    _check_mixture(weights, mus, sigmas)
    shape = samples.shape
    flat = samples.flatten()
    p_accept = _accept_mass(weights, mus, sigmas, low, high)

    if q is None:
        x = flat[:, None] - mus  # hyperopt's steps, in place: (dist / sigma) ** 2 * -0.5 + log(coef)
        x /= np.maximum(sigmas, EPS)
        np.square(x, out=x)
        x *= -0.5
        z = np.sqrt(2 * np.pi * sigmas**2)
        coef = weights / z / p_accept
        x += np.log(coef)
        rval = logsum_rows(x)
    else:
        flat, inverse = _unique_columns(flat)
        ubound = flat + q / 2 if high is None else np.minimum(flat + q / 2, high)
        lbound = flat - q / 2 if low is None else np.maximum(flat - q / 2, low)
        mu, sigma = mus[:, None], sigmas[:, None]
        prob = _mixture_mass(weights, normal_cdf(ubound, mu, sigma), normal_cdf(lbound, mu, sigma))
        rval = np.log(prob) - np.log(p_accept)
        if inverse is not None:
            rval = rval[inverse]
    return np.asarray(rval).reshape(shape)


def lognormal_lpdf(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """Log-density of the log-normal distribution (hyperopt's ``lognormal_lpdf``), broadcasting."""
    sigma = np.asarray(sigma)
    if not np.all(sigma >= 0):
        raise ValueError("negative sigma", sigma)
    sigma = np.maximum(sigma, EPS)
    z = sigma * x * np.sqrt(2 * np.pi)
    e = 0.5 * ((np.log(x) - mu) / sigma) ** 2
    return np.asarray(-e - np.log(z))


def lgmm1_lpdf(
    samples: ArrayLike,
    weights: ArrayLike,
    mus: ArrayLike,
    sigmas: ArrayLike,
    low: float | None = None,
    high: float | None = None,
    q: float | None = None,
) -> np.ndarray:
    """Log-density of ``samples`` under a mixture of log-normals (``mus``/``sigmas`` in log space, the
    truncation ``[low, high)`` too); with ``q``, the log-probability of the quantisation bin.

    Same arguments and results as ``hyperopt.tpe.LGMM1_lpdf``."""
    samples, weights, mus, sigmas = (np.asarray(a) for a in (samples, weights, mus, sigmas))
    if weights.ndim != 1 or mus.ndim != 1 or sigmas.ndim != 1:
        raise TypeError("need vectors of weights, mus and sigmas", (weights.shape, mus.shape, sigmas.shape))
    shape = samples.shape
    flat = samples.flatten() if samples.ndim != 1 else samples
    p_accept = _accept_mass(weights, mus, sigmas, low, high)

    if q is None:
        lpdfs = lognormal_lpdf(flat[:, None], mus, sigmas)
        rval = logsum_rows(lpdfs + np.log(weights))
    else:
        flat, inverse = _unique_columns(flat)
        ubound = flat + q / 2 if high is None else np.minimum(flat + q / 2, np.exp(high))
        lbound = flat - q / 2 if low is None else np.maximum(flat - q / 2, np.exp(low))
        lbound = np.maximum(0, lbound)
        mu, sigma = mus[:, None], sigmas[:, None]
        if flat.size == 0:
            prob = np.zeros(0)
        else:
            prob = _mixture_mass(weights, lognormal_cdf(ubound, mu, sigma), lognormal_cdf(lbound, mu, sigma))
        rval = np.log(prob) - np.log(p_accept)
        if inverse is not None:
            rval = rval[inverse]
    return np.asarray(rval).reshape(shape)


def _check_shortcuts() -> None:
    big = np.array([ERF_IS_ONE, ERF_IS_ONE * 1.5, 40.0, np.inf])
    if not ((erf(big) == 1.0).all() and (erf(-big) == -1.0).all()):
        raise ImportError(f"scipy's erf is not exactly +-1 beyond {ERF_IS_ONE}: the TPE kernels would differ")
    if not (np.exp(np.array([EXP_IS_ZERO, EXP_IS_ZERO - 1, -1e4, -np.inf])) == 0.0).all():
        raise ImportError(f"exp is not exactly 0 below {EXP_IS_ZERO}: the TPE kernels would differ")


_check_shortcuts()


def below_mask(losses: np.ndarray, gamma: float, gamma_cap: int = 25) -> np.ndarray:
    """Which of the trials (in the order of ``losses``) are TPE's "below" group: the
    ``ceil(gamma * sqrt(n))`` lowest losses, at most ``gamma_cap``, ties broken by ``np.argsort`` as in
    ``hyperopt.tpe.ap_split_trials``."""
    n_below = min(int(np.ceil(gamma * np.sqrt(len(losses)))), gamma_cap)
    is_below = np.zeros(len(losses), dtype=bool)
    is_below[np.argsort(losses)[:n_below]] = True
    return is_below


def split_observations(
    obs_idxs: np.ndarray, obs_vals: np.ndarray, loss_idxs: np.ndarray, is_below: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One parameter's observed values (``obs_vals`` of trials ``obs_idxs``) split into those of the
    trials marked in ``is_below`` (aligned with ``loss_idxs``, which must be sorted and unique) and those
    of the other trials, each in observation order; values of ids not in ``loss_idxs`` are dropped.

    ``hyperopt.tpe.ap_split_trials`` with its Python set-membership loops replaced by an index lookup."""
    if len(loss_idxs) == 0 or len(obs_idxs) == 0:
        return np.asarray([]), np.asarray([])
    pos = np.minimum(np.searchsorted(loss_idxs, obs_idxs), len(loss_idxs) - 1)
    known = loss_idxs[pos] == obs_idxs
    below_mask = known & is_below[pos]
    above_mask = known & ~is_below[pos]
    below = obs_vals[below_mask] if below_mask.any() else np.asarray([])
    above = obs_vals[above_mask] if above_mask.any() else np.asarray([])
    return below, above


def split_below_above(
    obs_idxs: ArrayLike,
    obs_vals: ArrayLike,
    loss_idxs: ArrayLike,
    losses: ArrayLike,
    gamma: float,
    gamma_cap: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """``hyperopt.tpe.ap_split_trials`` (same arguments and results) for ids ``loss_idxs`` sorted
    ascending and unique, as hyperopt's TPE passes them."""
    loss_idxs, losses = np.asarray(loss_idxs), np.asarray(losses)
    return split_observations(
        np.asarray(obs_idxs), np.asarray(obs_vals), loss_idxs, below_mask(losses, gamma, gamma_cap)
    )
