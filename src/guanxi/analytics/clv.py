"""Customer lifetime value: BG/NBD for repeat purchases and Gamma-Gamma for spend.

* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while a
  customer is alive they buy at a Poisson rate ``lambda ~ Gamma(r, alpha)``; after each
  repeat purchase they drop out with probability ``p ~ Beta(a, b)``. From a customer's
  ``(frequency, recency, T)`` it gives the expected number of purchases in the next ``t``
  periods and the probability the customer is still "alive".
* **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV"; Hardie's note 025): the mean
  spend per repeat purchase, shrunk towards the population mean by ``p, q, gamma``.
* **CLV** over a horizon in months with a monthly discount rate, defined as in ``lifetimes``'
  ``customer_lifetime_value`` so the two agree number for number.

Both models are fitted by maximum likelihood with scipy (BFGS in log-parameter space, the
same start, time scaling and tolerance as ``lifetimes``, so the estimates are the same) with
analytic gradients; customers with identical histories are folded into weighted rows first,
which on day-granular data shrinks a million customers to a few hundred thousand rows.
``lifetimes`` (unmaintained since 2020, built on autograd) is the test and benchmark
reference only.

The transaction summary runs as SQL (DuckDB dialect, portable to PostgreSQL through
sqlglot) so it can read ten million shipments without pulling them into Python. The CSV
reader behind ``guanxi analytics clv`` raises :class:`~guanxi.core.errors.ValidationFailed`
naming the option or column at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

import duckdb
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from guanxi.core.errors import DomainError, FieldError, ValidationFailed
from guanxi.core.i18n import N_

FloatArray = npt.NDArray[np.float64]
Period = Literal["day", "week", "month"]
PERIODS: tuple[str, ...] = get_args(Period)

# A "month" is 30 days, as lifetimes' freq "M" in customer_lifetime_value.
PERIOD_DAYS: dict[str, int] = {"day": 1, "week": 7, "month": 30}
# Periods per month in the CLV sum: lifetimes' factors for freq D / W / M.
PERIODS_PER_MONTH: dict[str, float] = {"day": 30.0, "week": 4.345, "month": 1.0}

# The roles of the transaction columns, and the column names they default to.
TRANSACTION_COLUMNS: tuple[str, ...] = ("customer_id", "date", "amount")

# Date formats accepted in a CSV, tried in order (ISO timestamps fall back to a cast).
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%d",
    "%Y.%m.%d",
    "%Y年%m月%d日",
)

# Messages of the input errors, by code; the CLI translates them with these params.
INPUT_MESSAGES: dict[str, str] = {
    "file_missing": N_("--transactions {path}: no such file."),
    "file_unreadable": N_("--transactions {path}: cannot read it as a CSV file ({reason})."),
    "empty_file": N_("--transactions {path}: the file has no transactions."),
    "missing_column": N_(
        "Column '{column}' (the {role}) is not in the file; its columns are {available}. "
        "Name it with --columns {role}=NAME."
    ),
    "bad_columns": N_(
        "--columns {value}: use ROLE=NAME pairs separated by commas, ROLE one of {roles}."
    ),
    "bad_date": N_(
        "Column '{column}': {count} values are not dates (first: '{value}' on line {line}). "
        "Use YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD."
    ),
    "bad_amount": N_(
        "Column '{column}': {count} values are not numbers (first: '{value}' on line {line})."
    ),
    "empty_customer": N_(
        "Column '{column}': {count} rows have no customer (first on line {line})."
    ),
    "bad_until": N_("--until {value}: use a date as YYYY-MM-DD."),
    "bad_period": N_("--period {value}: use one of {periods}."),
    "no_customers": N_("--until {until}: no transactions on or before this date."),
    "no_history": N_(
        "--until {until}: every customer bought first on that day; there is no history to fit."
    ),
    "fit_failed": N_(
        "The {model} model did not converge: the transactions are too few or too uniform "
        "to estimate it."
    ),
    "no_repeat_customers": N_(
        "No customer has a repeat purchase with a positive amount up to {until}: the spend "
        "model needs some."
    ),
}


class ClvFitError(DomainError):
    """The optimiser did not converge (too little or degenerate data); ``model`` names the
    model, the English text is ``INPUT_MESSAGES["fit_failed"]``."""

    status = 422
    code = "clv_fit_failed"

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(INPUT_MESSAGES["fit_failed"].format(model=model), model=model)
        self.reason = reason


def input_error(loc: tuple[str | int, ...], code: str, **params: Any) -> ValidationFailed:
    """A :class:`ValidationFailed` for one bad input, its English text from ``INPUT_MESSAGES``."""
    return ValidationFailed([FieldError(loc, code, INPUT_MESSAGES[code].format(**params), params)])


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; ``alpha`` in the period unit of the data, and the total
    log-likelihood of the data at the estimate (in the same unit, as published)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (``gamma`` is lifetimes' ``v``), and the total
    log-likelihood of the repeat customers' mean spends."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")


@dataclass(frozen=True)
class RfmSummary:
    """One row per customer: repeat purchase days, recency and age in periods, and the mean
    amount of the repeat purchase days (0 without repeats)."""

    customer_id: npt.NDArray[Any]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary: FloatArray

    def __len__(self) -> int:
        return int(self.frequency.shape[0])


@dataclass(frozen=True)
class ClvFit:
    """Both models fitted on one transaction summary."""

    customers: int
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of ``guanxi analytics clv``."""
        gg = asdict(self.gamma_gamma)
        gg.pop("log_likelihood")
        return {"customers": self.customers, "bgnbd": asdict(self.bgnbd), "gamma_gamma": gg}


# --------------------------------------------------------------------------------------
# Inputs


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product. einsum stays on one core: BLAS's threaded ddot spins and slows down
    badly when the machine is busy, and these vectors are too short to gain from threads."""
    return float(np.einsum("i,i->", a, b))


def _as_float(values: npt.ArrayLike) -> FloatArray:
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def _check_rft(frequency: FloatArray, recency: FloatArray, T: FloatArray) -> None:
    """The checks lifetimes makes, as ValueErrors (programming errors, not user input)."""
    if not frequency.shape == recency.shape == T.shape:
        raise ValueError("frequency, recency and T must have the same length")
    if frequency.size == 0:
        raise ValueError("no customers")
    if np.any(frequency != np.floor(frequency)) or np.any(frequency < 0):
        raise ValueError("frequency must be whole numbers >= 0")
    if np.any(recency < 0) or np.any(recency > T):
        raise ValueError("recency must lie between 0 and T")
    if np.any(recency[frequency == 0] != 0):
        raise ValueError("recency must be 0 when frequency is 0")


def aggregate(
    *columns: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> tuple[list[FloatArray], FloatArray, npt.NDArray[np.intp]]:
    """Fold identical rows of ``columns`` into unique rows with summed ``weights``.

    Returns the unique columns, their weights and, for each input row, the index of its
    unique row (so per-row results can be expanded back with ``result[inverse]``).
    """
    cols = [_as_float(c) for c in columns]
    n = cols[0].shape[0]
    w = np.ones(n) if weights is None else _as_float(weights)
    # Rank each column separately, then combine the small integer codes into one int64 key:
    # one fast integer sort instead of a lexicographic sort of float tuples.
    key = np.zeros(n, dtype=np.int64)
    for c in cols:
        uniq, code = np.unique(c, return_inverse=True)
        key = key * np.int64(uniq.shape[0]) + code
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    summed = np.asarray(np.bincount(inverse, weights=w), dtype=np.float64)
    return [c[first] for c in cols], summed, inverse.astype(np.intp)


# --------------------------------------------------------------------------------------
# BG/NBD


def _bgnbd_terms(
    params: tuple[float, float, float, float],
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    """Per-row log-likelihood (FHL 2005, section 7)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    pos = x > 0
    ll = a1 + a2 + a3
    xp = x[pos]
    a4 = np.log(a) - np.log(b + xp - 1) - (r + xp) * np.log(alpha + t_x[pos])
    ll[pos] = a1[pos] + a2[pos] + np.logaddexp(a3[pos], a4)
    return np.asarray(ll, dtype=np.float64)


def bgnbd_log_likelihood(
    params: BgNbdParams | tuple[float, float, float, float],
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> float:
    """Total BG/NBD log-likelihood of the customers at ``params`` (r, alpha, a, b)."""
    p = (params.r, params.alpha, params.a, params.b) if isinstance(params, BgNbdParams) else params
    x, t_x, age = _as_float(frequency), _as_float(recency), _as_float(T)
    w = np.ones_like(x) if weights is None else _as_float(weights)
    return _dot(w, _bgnbd_terms(p, x, t_x, age))


def _bgnbd_objective(
    x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray, penalizer: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """lifetimes' objective (mean negative log-likelihood per customer plus an L2 penalty
    on the parameters) and its gradient, both in log-parameter space.

    The gamma-function terms depend on the frequency alone, which takes few values, so they
    are computed once per distinct frequency and weighted by how many customers share it.
    """
    w_total = float(w.sum())
    xs, x_code = np.unique(x, return_inverse=True)
    wx = np.asarray(np.bincount(x_code.reshape(-1), weights=w), dtype=np.float64)
    pos = x > 0
    xp, tp, wp = x[pos], t_x[pos], w[pos]
    Tp, T0, w0, x0 = T[pos], T[~pos], w[~pos], x[~pos]
    # log(b + x - 1) only for x > 0: per distinct positive frequency.
    xpu, xp_code = np.unique(xp, return_inverse=True)
    xp_code = xp_code.reshape(-1)

    def f(log_params: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(log_params)
        r, alpha, a, b = params
        # Terms per distinct frequency.
        g1 = gammaln(r + xs) - gammaln(r)
        g2 = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
        d_r1 = digamma(r + xs) - digamma(r)
        d_ab = digamma(a + b) - digamma(a + b + xs)
        d_b = d_ab + digamma(b + xs) - digamma(b)
        ll = _dot(wx, g1 + g2) + w_total * r * np.log(alpha)
        g_r = _dot(wx, d_r1) + w_total * np.log(alpha)
        g_alpha = w_total * r / alpha
        g_a = _dot(wx, d_ab)
        g_b = _dot(wx, d_b)

        # Customers without repeat purchases: only the "still alive at T" term.
        if T0.size:
            lT0 = np.log(alpha + T0)
            ll -= _dot(w0, (r + x0) * lT0)
            g_r -= _dot(w0, lT0)
            g_alpha -= _dot(w0, (r + x0) / (alpha + T0))

        if xp.size:
            rx = r + xp
            lT = np.log(alpha + Tp)
            lR = np.log(alpha + tp)
            lb = np.log(b + xpu - 1)[xp_code]
            a3 = -rx * lT
            a4 = np.log(a) - lb - rx * lR
            ll += _dot(wp, np.logaddexp(a3, a4))
            # Share of the "dropped out after the last purchase" branch.
            pi4 = expit(a4 - a3)
            pi3 = 1.0 - pi4
            g_r -= _dot(wp, pi3 * lT + pi4 * lR)
            g_alpha -= _dot(wp, rx * (pi3 / (alpha + Tp) + pi4 / (alpha + tp)))
            wpi4 = wp * pi4
            g_a += float(wpi4.sum()) / a
            g_b -= _dot(wpi4, 1.0 / (b + xpu - 1)[xp_code])

        grad = np.array([g_r, g_alpha, g_a, g_b])
        value = -ll / w_total + penalizer * float(np.sum(params**2))
        # Chain rule to log-parameters: d/d(log theta) = theta * d/d(theta).
        grad_log = params * (-grad / w_total + 2.0 * penalizer * params)
        return value, grad_log

    return f


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    n_params: int,
    initial: npt.ArrayLike | None,
    tol: float,
    model: str,
) -> FloatArray:
    x0 = 0.1 * np.ones(n_params) if initial is None else np.log(_as_float(initial))
    result = minimize(objective, x0=x0, jac=True, method="BFGS", tol=tol)
    if not result.success:
        # BFGS stops with "precision loss" when it is already at the optimum; accept that
        # only when the gradient is flat.
        _, grad = objective(result.x)
        if not (np.all(np.isfinite(result.x)) and np.max(np.abs(grad)) < 1e-5):
            raise ClvFitError(model, str(result.message))
    return np.asarray(result.x, dtype=np.float64)


def fit_bgnbd(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    penalizer: float = 0.0,
    initial: tuple[float, float, float, float] | None = None,
    tol: float = 1e-7,
    fold: bool = True,
) -> BgNbdParams:
    """Fit BG/NBD by maximum likelihood.

    ``frequency`` is the number of repeat purchases, ``recency`` the time from the first to
    the last purchase and ``T`` the time from the first purchase to the end of the
    observation, all in one period unit. ``weights`` counts customers per row. The
    optimiser, its start (``exp(0.1)`` for every parameter), the time scaling (largest
    ``T`` = 1) and ``penalizer`` are lifetimes' ``BetaGeoFitter``'s, so the estimates match.
    ``initial`` is (r, alpha, a, b) in the data's unit. ``fold`` first merges identical
    customers into weighted rows (same result, much faster on day-granular data).
    """
    x, t_x, age = _as_float(frequency), _as_float(recency), _as_float(T)
    _check_rft(x, t_x, age)
    w = np.ones_like(x) if weights is None else _as_float(weights)
    if fold:
        (x, t_x, age), w, _ = aggregate(x, t_x, age, weights=w)
    t_max = float(age.max())
    if t_max <= 0:
        raise ValueError("every customer has T = 0: nothing to fit")
    # lifetimes rescales time so the largest T is 1; keeping it keeps the optimiser's path.
    scale = 1.0 / t_max
    start = None
    if initial is not None:
        r0, alpha0, a0, b0 = initial
        start = (r0, alpha0 * scale, a0, b0)
    log_params = _minimise(
        _bgnbd_objective(x, t_x * scale, age * scale, w, penalizer), 4, start, tol, "BG/NBD"
    )
    r, alpha_scaled, a, b = (float(v) for v in np.exp(log_params))
    alpha = alpha_scaled / scale
    ll = _dot(w, _bgnbd_terms((r, alpha, a, b), x, t_x, age))
    return BgNbdParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=ll)


def expected_purchases(
    params: BgNbdParams,
    t: float | npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Expected repeat purchases in the next ``t`` periods of customers with this history
    (FHL 2005, equation 10; lifetimes' ``conditional_expected_number_of_purchases_up_to_time``)."""
    x, t_x, age = _as_float(frequency), _as_float(recency), _as_float(T)
    tt = np.asarray(t, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    _a = r + x
    _b = b + x
    _c = a + b + x - 1
    z = tt / (alpha + age + tt)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(_a, _b, _c, z))
        # Where 2F1 overflows, Euler's transformation gives the same value in logs.
        ln_hyp_alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log(1 - z)
        ln_hyp = np.where(np.isinf(ln_hyp), ln_hyp_alt, ln_hyp)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + age) / (alpha + tt + age)))
        odds = np.where(
            x > 0, a / (b + np.maximum(x, 1) - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0
        )
    return np.asarray(first * second / (1 + odds), dtype=np.float64)


def probability_alive(
    params: BgNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """P(alive) at the end of the observation (Hardie's note 021). Customers without repeat
    purchases get 1: in BG/NBD nobody drops out before a repeat purchase."""
    x, t_x, age = _as_float(frequency), _as_float(recency), _as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_div = (r + x) * np.log((alpha + age) / (alpha + t_x)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.asarray(np.where(x == 0, 1.0, expit(-log_div)), dtype=np.float64)


# --------------------------------------------------------------------------------------
# Gamma-Gamma


def _gamma_gamma_objective(
    x: FloatArray, m: FloatArray, w: FloatArray, penalizer: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """lifetimes' Gamma-Gamma objective and gradient in log-parameter space; everything
    that does not move with the parameters is summed once."""
    w_total = float(w.sum())
    xs, x_code = np.unique(x, return_inverse=True)
    wx = np.asarray(np.bincount(x_code.reshape(-1), weights=w), dtype=np.float64)
    ln_m = np.log(m)
    s_x_ln_m = _dot(w, x * ln_m)
    s_ln_m = _dot(w, ln_m)
    s_x_ln_x = _dot(w, x * np.log(x))
    xm = x * m

    def f(log_params: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(log_params)
        p, q, v = params
        px = p * xs
        ln_xm_v = np.log(xm + v)
        ll = (
            _dot(wx, gammaln(px + q) - gammaln(px))
            - w_total * gammaln(q)
            + w_total * q * np.log(v)
            + p * s_x_ln_m
            - s_ln_m
            + p * s_x_ln_x
            - p * _dot(w * x, ln_xm_v)
            - q * _dot(w, ln_xm_v)
        )
        dg = digamma(px + q)
        g_p = _dot(wx * xs, dg - digamma(px)) + s_x_ln_m + s_x_ln_x - _dot(w * x, ln_xm_v)
        g_q = _dot(wx, dg) - w_total * digamma(q) + w_total * np.log(v)
        g_q -= _dot(w, ln_xm_v)
        g_v = w_total * q / v - _dot(w, (p * x + q) / (xm + v))
        grad = np.array([g_p, g_q, g_v])
        value = -ll / w_total + penalizer * float(np.sum(params**2))
        return value, params * (-grad / w_total + 2.0 * penalizer * params)

    return f


def fit_gamma_gamma(
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    penalizer: float = 0.0,
    initial: tuple[float, float, float] | None = None,
    tol: float = 1e-7,
) -> GammaGammaParams:
    """Fit Gamma-Gamma by maximum likelihood on the customers with repeat purchases.

    ``monetary`` is each customer's mean amount over the repeat purchases. Customers with
    ``frequency == 0`` or a non-positive mean carry no spend information and are left out
    (lifetimes refuses them; here they may be passed with everyone else). Same optimiser,
    start and penalty as lifetimes' ``GammaGammaFitter``.
    """
    x, m = _as_float(frequency), _as_float(monetary)
    w = np.ones_like(x) if weights is None else _as_float(weights)
    keep = (x > 0) & (m > 0)
    if not np.any(keep):
        raise ValueError("no customer with repeat purchases and a positive mean spend")
    x, m, w = x[keep], m[keep], w[keep]
    log_params = _minimise(
        _gamma_gamma_objective(x, m, w, penalizer), 3, initial, tol, "Gamma-Gamma"
    )
    p, q, v = (float(val) for val in np.exp(log_params))
    value, _ = _gamma_gamma_objective(x, m, w, 0.0)(log_params)
    return GammaGammaParams(p=p, q=q, gamma=v, log_likelihood=-float(value) * float(w.sum()))


def expected_average_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> FloatArray:
    """Expected mean spend per future purchase (Hardie's note 025, equation 5): the
    customer's own mean, weighted by their number of repeat purchases, blended with the
    population mean ``p * gamma / (q - 1)``."""
    x, m = _as_float(frequency), _as_float(monetary)
    p, q, v = params.p, params.q, params.gamma
    individual = p * x / (p * x + q - 1)
    population = v * p / (q - 1)
    return np.asarray((1 - individual) * population + individual * m, dtype=np.float64)


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary: npt.ArrayLike,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    period: Period = "week",
) -> FloatArray:
    """Discounted value of each customer's expected purchases over the next ``months``.

    lifetimes' definition: the sum over months ``i = 1..months`` of (expected purchases by
    the end of month ``i`` minus by the end of month ``i - 1``) x expected spend /
    ``(1 + discount_rate) ** i``, ``period`` being the unit of ``recency`` and ``T`` (a
    month is 4.345 weeks or 30 days).
    """
    x, t_x, age = _as_float(frequency), _as_float(recency), _as_float(T)
    spend = expected_average_spend(gamma_gamma, x, monetary)
    factor = PERIODS_PER_MONTH[period]
    # The purchase side depends on (frequency, recency, T) only: evaluate the costly
    # hypergeometric terms once per distinct history.
    (ux, ut, uT), _, inverse = aggregate(x, t_x, age)
    discounted = np.zeros_like(ux)
    previous = np.zeros_like(ux)
    for i in range(1, months + 1):
        # Expected purchases are cumulative; one evaluation per month end, then differences.
        current = expected_purchases(bgnbd, i * factor, ux, ut, uT)
        discounted += (current - previous) / (1 + discount_rate) ** i
        previous = current
    return np.asarray(spend * discounted[inverse], dtype=np.float64)


# --------------------------------------------------------------------------------------
# Transaction summary (SQL)


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_relation(name: str) -> str:
    return ".".join(_quote_identifier(part) for part in name.split("."))


def summary_sql(
    relation: str,
    *,
    until: date,
    period: Period = "week",
    customer: str = "customer_id",
    day: str = "date",
    amount: str = "amount",
) -> str:
    """SQL (DuckDB dialect; portable to PostgreSQL with sqlglot) turning the transactions
    in ``relation`` into one row per customer:
    ``customer_id, frequency, recency, "T", monetary``.

    Semantics of lifetimes' ``summary_data_from_transaction_data(freq="D",
    freq_multiplier=days per period)``: the ``day`` column (date or timestamp, cast to a
    date — give local times) is cut at ``until`` inclusive; transactions of one customer on
    one day are merged (amounts summed); frequency counts the purchase days after the
    first; recency and T are days (last − first, ``until`` − first) divided by the period
    length (fractional, as in FHL 2005); monetary is the mean amount of the repeat purchase
    days, 0 without repeats. ``relation`` and the column names are identifiers (quoted).
    """
    if period not in PERIOD_DAYS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    days = float(PERIOD_DAYS[period])
    end = f"DATE '{until.isoformat()}'"
    cust, when, amt = (_quote_identifier(c) for c in (customer, day, amount))
    source = _quote_relation(relation)
    # The first day's amount comes from a join rather than ARG_MIN, which PostgreSQL lacks.
    return f"""
WITH purchase_day AS (
    SELECT {cust} AS customer_id,
           CAST(CAST({when} AS TIMESTAMP) AS DATE) AS day,
           SUM({amt}) AS amount
    FROM {source}
    WHERE {cust} IS NOT NULL
      AND CAST(CAST({when} AS TIMESTAMP) AS DATE) <= {end}
    GROUP BY 1, 2
),
per_customer AS (
    SELECT customer_id,
           COUNT(*) AS days,
           MIN(day) AS first_day,
           MAX(day) AS last_day,
           SUM(amount) AS total
    FROM purchase_day
    GROUP BY customer_id
)
SELECT c.customer_id,
       CAST(c.days - 1 AS DOUBLE PRECISION) AS frequency,
       -- DATE_DIFF, not a subtraction: on Spark a date minus a date is an interval.
       CAST(DATE_DIFF('day', c.first_day, c.last_day) AS DOUBLE PRECISION) / {days} AS recency,
       CAST(DATE_DIFF('day', c.first_day, {end}) AS DOUBLE PRECISION) / {days} AS "T",
       CASE WHEN c.days > 1
            THEN CAST(c.total - f.amount AS DOUBLE PRECISION) / (c.days - 1)
            ELSE 0.0 END AS monetary
FROM per_customer AS c
JOIN purchase_day AS f ON f.customer_id = c.customer_id AND f.day = c.first_day
ORDER BY c.customer_id
"""  # noqa: S608 - identifiers are quoted, the date is a date


def summary_from_arrow(table: Any) -> RfmSummary:
    """An :class:`RfmSummary` from the Arrow result of :func:`summary_sql`."""

    def column(name: str) -> FloatArray:
        return np.asarray(table.column(name).to_numpy(), dtype=np.float64)

    return RfmSummary(
        customer_id=np.asarray(table.column("customer_id").to_numpy(zero_copy_only=False)),
        frequency=column("frequency"),
        recency=column("recency"),
        T=column("T"),
        monetary=np.nan_to_num(column("monetary")),
    )


def transaction_summary(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    *,
    until: date,
    period: Period = "week",
    customer: str = "customer_id",
    day: str = "date",
    amount: str = "amount",
) -> RfmSummary:
    """Run :func:`summary_sql` on a DuckDB connection (see there for the semantics)."""
    sql = summary_sql(
        relation, until=until, period=period, customer=customer, day=day, amount=amount
    )
    return summary_from_arrow(con.sql(sql).to_arrow_table())


def fit_summary(summary: RfmSummary, *, until: date | None = None) -> ClvFit:
    """Fit BG/NBD on everyone and Gamma-Gamma on the repeat customers of ``summary``."""
    label = until.isoformat() if until else "the end"
    if len(summary) == 0:
        raise input_error(("until",), "no_customers", until=label)
    if float(summary.T.max()) <= 0:
        raise input_error(("until",), "no_history", until=label)
    bgnbd = fit_bgnbd(summary.frequency, summary.recency, summary.T)
    if not np.any((summary.frequency > 0) & (summary.monetary > 0)):
        raise input_error(("transactions",), "no_repeat_customers", until=label)
    gg = fit_gamma_gamma(summary.frequency, summary.monetary)
    return ClvFit(customers=len(summary), bgnbd=bgnbd, gamma_gamma=gg)


# --------------------------------------------------------------------------------------
# CSV input (guanxi analytics clv)


def parse_columns(value: str | None) -> dict[str, str]:
    """``customer_id=ID,date=DATE,amount=PRICE`` → role → column name (defaults for the
    roles not named)."""
    mapping = {role: role for role in TRANSACTION_COLUMNS}
    if not value:
        return mapping
    roles = ", ".join(TRANSACTION_COLUMNS)
    for pair in value.split(","):
        role, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or role not in mapping or not name:
            raise input_error(("columns",), "bad_columns", value=value, roles=roles)
        mapping[role] = name
    return mapping


def parse_until(value: str) -> date:
    """``--until`` as a date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise input_error(("until",), "bad_until", value=value) from None


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_transactions_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    columns: Mapping[str, str] | None = None,
    view: str = "clv_transactions",
) -> None:
    """Read a transactions CSV into the temporary table ``view`` with typed columns
    ``customer_id`` (text), ``date`` (timestamp) and ``amount`` (double).

    ``columns`` maps each role to the file's column name (matched case-insensitively).
    Every value is read as text and then parsed, so a bad value is reported with its line
    instead of failing the whole read: dates in ``DATE_FORMATS`` or ISO timestamps, amounts
    as plain numbers.
    """
    mapping = dict(columns or parse_columns(None))
    if not path.is_file():
        raise input_error(("transactions",), "file_missing", path=str(path))
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE clv_raw AS SELECT *, row_number() OVER () AS clv_line "
            "FROM read_csv(?, all_varchar = true, header = true)",
            [str(path)],
        )
        names = [row[0] for row in con.execute("DESCRIBE clv_raw").fetchall()]
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise input_error(
            ("transactions",), "file_unreadable", path=str(path), reason=reason
        ) from None
    names = [n for n in names if n != "clv_line"]
    (rows,) = con.execute("SELECT count(*) FROM clv_raw").fetchall()[0]
    if not rows:
        raise input_error(("transactions",), "empty_file", path=str(path))
    by_lower = {n.lower(): n for n in names}
    actual: dict[str, str] = {}
    for role in TRANSACTION_COLUMNS:
        found = by_lower.get(mapping[role].lower())
        if found is None:
            raise input_error(
                ("columns", role),
                "missing_column",
                column=mapping[role],
                role=role,
                available=", ".join(names) or "-",
            )
        actual[role] = _quote_identifier(found)
    formats = "[" + ", ".join(_sql_string(f) for f in DATE_FORMATS) + "]"
    c, d, a = actual["customer_id"], actual["date"], actual["amount"]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE clv_parsed AS
        SELECT NULLIF(trim({c}), '') AS customer_id,
               coalesce(try_strptime(trim({d}), {formats}),
                        try_cast(trim({d}) AS TIMESTAMP)) AS date,
               try_cast(trim({a}) AS DOUBLE) AS amount,
               {d} AS raw_date, {a} AS raw_amount, clv_line + 1 AS line
        FROM clv_raw
        """  # noqa: S608 - identifiers quoted, formats are constants
    )
    checks = (
        ("date", "bad_date", "date IS NULL", "raw_date"),
        ("amount", "bad_amount", "amount IS NULL OR NOT isfinite(amount)", "raw_amount"),
        ("customer_id", "empty_customer", "customer_id IS NULL", "customer_id"),
    )
    for role, code, condition, raw in checks:
        row = con.execute(
            f"SELECT count(*), arg_min({raw}, line), min(line) FROM clv_parsed WHERE {condition}"  # noqa: S608
        ).fetchall()[0]
        if row[0]:
            column = mapping[role]
            raise input_error(
                ("columns", role),
                code,
                column=column,
                count=row[0],
                value=row[1] or "",
                line=row[2],
            )
    target = _quote_identifier(view)
    columns_sql = "customer_id, date, amount"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {target} AS SELECT {columns_sql} FROM clv_parsed")  # noqa: S608


def fit_transactions_csv(
    path: Path,
    *,
    until: date | None = None,
    period: str = "week",
    columns: Mapping[str, str] | None = None,
) -> tuple[ClvFit, RfmSummary, date]:
    """Read a transactions CSV, summarise it up to ``until`` (default: the last day in the
    file) in ``period`` units and fit both models (what ``guanxi analytics clv`` runs).
    Returns the fit, the summary it was fitted on and the ``until`` used."""
    if period not in PERIOD_DAYS:
        raise input_error(("period",), "bad_period", value=period, periods=", ".join(PERIODS))
    unit: Period = "day" if period == "day" else "week" if period == "week" else "month"
    con = duckdb.connect(":memory:")
    try:
        load_transactions_csv(con, path, columns=columns)
        if until is None:
            sql = "SELECT CAST(max(date) AS DATE) FROM clv_transactions"
            (last,) = con.execute(sql).fetchall()[0]
            if last is None:
                raise input_error(("transactions",), "empty_file", path=str(path))
            until = last
        summary = transaction_summary(con, "clv_transactions", until=until, period=unit)
    finally:
        con.close()
    return fit_summary(summary, until=until), summary, until
