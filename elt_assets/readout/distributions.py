"""Tail probabilities and quantiles of the normal, Student t and chi-square distributions.

The readout and the sample-ratio test need a handful of them. They come from
scipy.special, which loads in about a tenth of a second, where scipy.stats (and
statsmodels, built on it) adds over half a second to every run that reaches them. The
tests compare every figure computed here with scipy.stats and statsmodels.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def normal_quantile(probability: float) -> float:
    """The z with P(Z <= z) = probability."""
    return _NORMAL.inv_cdf(probability)


def chi_square_sf(statistic: float, degrees_of_freedom: int) -> float:
    """P(X >= statistic) for X chi-square distributed with the given degrees of freedom."""
    if degrees_of_freedom == 1:
        # With one degree of freedom X is Z squared: no special function needed.
        return math.erfc(math.sqrt(max(statistic, 0.0) / 2))
    from scipy.special import chdtrc

    return float(chdtrc(degrees_of_freedom, statistic))


def t_two_sided_p(t: float, degrees_of_freedom: float) -> float:
    """P(|T| >= |t|) for Student's t with (possibly fractional) degrees of freedom."""
    from scipy.special import stdtr

    return float(2 * stdtr(degrees_of_freedom, -abs(t)))


def t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """The t with P(T <= t) = probability."""
    from scipy.special import stdtrit

    return float(stdtrit(degrees_of_freedom, probability))
