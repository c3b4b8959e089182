"""Expected hypervolume improvement (EHVI) of candidate points over a front, for one or two
minimised objectives, each either modelled (a Gaussian mean and standard deviation) or
known before the trial (standard deviation 0, e.g. an analytic energy).

Two objectives: the front's attainment function g(x) (the lowest second objective among
front points whose first objective is <= x; the reference where there is none) is a step
function, so a point (a, b) adds

    HVI(a, b) = sum over the steps [lo, hi) of |[lo, hi) n [a, r0)| * max(0, g - b).

With b ~ N(mu, sigma), E[max(0, g - b)] is the expected improvement EI(g) in closed form;
so it is for a log-normal b (`log`: mu and sigma are those of log b, for a positive
objective such as an error, which a GP models better on the log scale):
E[max(0, g - b)] = g Phi(d) - exp(mu + sigma^2 / 2) Phi(d - sigma), d = (log g - mu) / sigma.
The first axis is the objective with the smaller standard deviation (a known one when there
is one: then the expectation is exact); a modelled first axis is averaged over fixed normal
quantiles (the same for every candidate, so their ranking is smooth). One objective: EI
below min(best, reference).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ._pareto import pareto_mask

QUANTILES = 32  # normal quantiles for a modelled first axis


def expected_improvement(
    threshold: np.ndarray, mean: np.ndarray, std: np.ndarray, log: bool = False
) -> np.ndarray:
    """E[max(0, threshold - Y)], Y ~ N(mean, std), or log Y ~ N(mean, std) with `log`
    (std 0: Y = mean, or exp(mean)); broadcasts."""
    threshold, mean, std = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (threshold, mean, std))
    )
    noisy = std > 0
    sigma = np.where(noisy, std, 1.0)
    if not log:
        gap = threshold - mean
        z = gap / sigma
        return np.where(noisy, gap * norm.cdf(z) + std * norm.pdf(z), np.maximum(gap, 0.0))
    positive = threshold > 0
    d = (np.log(np.where(positive, threshold, 1.0)) - mean) / sigma
    lognormal = threshold * norm.cdf(d) - np.exp(mean + std**2 / 2) * norm.cdf(d - std)
    exact = np.maximum(threshold - np.exp(mean), 0.0)
    return np.where(positive, np.maximum(np.where(noisy, lognormal, exact), 0.0), 0.0)


def expected_hvi(
    front: np.ndarray,
    reference: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    log: tuple[bool, ...] | None = None,
) -> np.ndarray:
    """EHVI of each candidate (rows of mean, std: shape (n, k), k = 1 or 2) over the points
    `front` (shape (m, k), any points: the dominated and those outside the box add
    nothing) in the box bounded by `reference`. `log[i]`: objective i is log-normal (its
    mean and std are those of its log)."""
    reference = np.asarray(reference, dtype=float)
    mean, std = np.atleast_2d(mean).astype(float), np.atleast_2d(std).astype(float)
    front = np.asarray(front, dtype=float).reshape(-1, len(reference))
    log = tuple(log or (False,) * len(reference))
    front = front[np.all(front < reference, axis=1)]
    if len(reference) == 1:
        best = min(float(front.min()), reference[0]) if len(front) else reference[0]
        return expected_improvement(best, mean[:, 0], std[:, 0], log[0])
    if len(reference) != 2:
        raise ValueError(f"expected_hvi handles 1 or 2 objectives, got {len(reference)}")
    if np.sum(std[:, 1]) < np.sum(std[:, 0]):  # the better-known objective on the first axis
        return expected_hvi(front[:, ::-1], reference[::-1], mean[:, ::-1], std[:, ::-1], log[::-1])
    if len(front):
        front = front[pareto_mask(front)]
        front = front[np.argsort(front[:, 0])]
    # steps [lo_j, hi_j) with attainment g_j: (-inf, x_1) at r1, then each front point's
    lo = np.concatenate([[-np.inf], front[:, 0]])
    hi = np.concatenate([front[:, 0], [reference[0]]])
    g = np.concatenate([[reference[1]], front[:, 1]])
    # the first axis: exact where known, else the normal quantiles
    if np.any(std[:, 0] > 0):
        z = norm.ppf((np.arange(QUANTILES) + 0.5) / QUANTILES)
        firsts = mean[:, :1] + std[:, :1] * z[None, :]  # (n, S)
    else:
        firsts = mean[:, :1]  # (n, 1)
    if log[0]:
        firsts = np.exp(firsts)
    widths = np.clip(hi[None, None, :] - np.maximum(lo[None, None, :], firsts[:, :, None]), 0, None)
    gains = expected_improvement(g[None, :], mean[:, 1:2], std[:, 1:2], log[1])  # (n, steps)
    return np.einsum("nsj,nj->n", widths, gains) / firsts.shape[1]
