"""Tail probabilities and quantiles of the normal, Student t and chi-square distributions.

The readout and the sample-ratio test need a handful of them, computed here in plain
Python: importing scipy.special alone cost about half a second of every run that
reached the readout, more than the readout's own work on a day. The t and chi-square
tails come from the regularized incomplete beta and gamma functions, evaluated by
their continued fractions (with the power series for the gamma function's lower part);
the tests compare every figure computed here with scipy.stats and statsmodels.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()
# Continued fractions stop once a step changes the value by less than this, relatively.
_EPSILON = 1e-15
# Stands in for a zero denominator in the modified Lentz method.
_TINY = 1e-300
_MAX_TERMS = 100_000


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def normal_quantile(probability: float) -> float:
    """The z with P(Z <= z) = probability."""
    return _NORMAL.inv_cdf(probability)


def chi_square_sf(statistic: float, degrees_of_freedom: int) -> float:
    """P(X >= statistic) for X chi-square distributed with the given degrees of freedom."""
    if statistic <= 0:
        return 1.0
    if degrees_of_freedom == 1:
        # With one degree of freedom X is Z squared.
        return math.erfc(math.sqrt(statistic / 2))
    return _upper_gamma(degrees_of_freedom / 2, statistic / 2)


def t_two_sided_p(t: float, degrees_of_freedom: float) -> float:
    """P(|T| >= |t|) for Student's t with (possibly fractional) degrees of freedom."""
    if not math.isfinite(t):
        return 0.0 if math.isinf(t) else math.nan
    return _incomplete_beta(degrees_of_freedom / 2, 0.5, degrees_of_freedom / (degrees_of_freedom + t * t))


def t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """The t with P(T <= t) = probability."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be between 0 and 1, got {probability}")
    if probability == 0.5:
        return 0.0
    tail = 2 * min(probability, 1 - probability)  # the two-sided tail beyond |t|
    # The t quantile lies beyond the normal one; widen until the tail is bracketed.
    low, high = 0.0, max(abs(normal_quantile(tail / 2)), 1.0)
    while t_two_sided_p(high, degrees_of_freedom) > tail:
        low, high = high, high * 2
    # Newton steps on the tail, kept inside the bracket (bisection when a step leaves it).
    value = (low + high) / 2
    for _ in range(200):
        error = t_two_sided_p(value, degrees_of_freedom) - tail
        if error > 0:
            low = value
        else:
            high = value
        slope = -2 * _t_density(value, degrees_of_freedom)
        step = value - error / slope if slope else (low + high) / 2
        value = step if low < step < high else (low + high) / 2
        if high - low <= 1e-15 * max(1.0, high):
            break
    return value if probability > 0.5 else -value


def _t_density(t: float, degrees_of_freedom: float) -> float:
    v = degrees_of_freedom
    log_density = (
        math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)
        - (v + 1) / 2 * math.log1p(t * t / v)
    )
    return math.exp(log_density)


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges quickly on the side of the distribution's mean it is used on.
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""

    def guarded(value: float) -> float:
        return value if abs(value) >= _TINY else _TINY

    c, d = 1.0, 1 / guarded(1 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, _MAX_TERMS):
        # The even and the odd term of step m.
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 / guarded(1 + numerator * d)
            c = guarded(1 + numerator / c)
            change = c * d
            result *= change
        if abs(change - 1) < _EPSILON:
            return result
    raise ArithmeticError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def _upper_gamma(s: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(s, x)."""
    log_front = -x + s * math.log(x) - math.lgamma(s)
    if x < s + 1:
        # The power series of the lower part P converges here; Q = 1 - P is not small.
        term = total = 1 / s
        denominator = s
        for _ in range(_MAX_TERMS):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _EPSILON:
                return 1 - total * math.exp(log_front)
        raise ArithmeticError(f"the incomplete gamma series did not converge (s={s}, x={x})")
    # Otherwise Q's own continued fraction, by the modified Lentz method.
    b = x + 1 - s
    c, d = 1 / _TINY, 1 / b
    result = d
    for i in range(1, _MAX_TERMS):
        numerator = -i * (i - s)
        b += 2
        d = numerator * d + b
        d = 1 / (d if abs(d) >= _TINY else _TINY)
        c = b + numerator / c
        c = c if abs(c) >= _TINY else _TINY
        change = c * d
        result *= change
        if abs(change - 1) < _EPSILON:
            return result * math.exp(log_front)
    raise ArithmeticError(f"the incomplete gamma fraction did not converge (s={s}, x={x})")
