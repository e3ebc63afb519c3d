"""What the survey results mean: which dimension drives overall satisfaction, and whether
satisfaction changed around a date.

Driver analysis: CSAT regressed on the dimension scores, every variable standardised
(z-scores), by ordinary least squares (statsmodels): a standardised coefficient is how many
standard deviations CSAT moves with one standard deviation of the dimension, the others
held equal, so the dimensions compare on one scale. The Pearson correlation of each
dimension with CSAT is given beside it (it ignores the others). Only responses that
answered CSAT and every dimension analysed count; a dimension is analysed when at least
half of the CSAT answers scored it.

Before / after: the responses in ``days`` days before a date against those in ``days``
days from it: mean CSAT and NPS on each side with 95 % confidence intervals (Student's t
on each side's answers; NPS as the mean of +100 / 0 / -100 per answer) and Welch's t-test
(unequal variances, scipy) of the difference.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.surveys.enums import DETRACTOR_UP_TO, PROMOTER_FROM
from guanxi.surveys.results import DIM_COLUMNS, Filters, R, filtered
from guanxi.surveys.schemas import CompareRead, DriverRead, DriversRead, SideRead

# Fewer complete responses than this: no regression (the coefficients would be noise).
MIN_RESPONSES = 20
# A dimension is analysed when at least this share of the CSAT answers scored it.
MIN_COVERAGE = 0.5


def drivers(session: Session, f: Filters, timezone: str) -> DriversRead:
    """The dimensions ranked by their standardised OLS coefficient on CSAT (strongest
    first); empty when too few responses scored CSAT and the dimensions."""
    import statsmodels.api as sm  # type: ignore[import-untyped]

    stmt = filtered(
        session, select(R.csat, *DIM_COLUMNS.values()).where(R.csat.is_not(None)), f, timezone
    )
    rows = session.execute(stmt).all()
    if not rows:
        return DriversRead(responses=0, r_squared=None, drivers=[])
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in rows])
    names = list(DIM_COLUMNS)
    covered = [
        i for i, _name in enumerate(names) if np.mean(~np.isnan(data[:, i + 1])) >= MIN_COVERAGE
    ]
    if not covered:
        return DriversRead(responses=0, r_squared=None, drivers=[])
    cols = [0, *[i + 1 for i in covered]]
    complete = data[:, cols][~np.isnan(data[:, cols]).any(axis=1)]
    y, x = complete[:, 0], complete[:, 1:]
    usable = [j for j in range(x.shape[1]) if np.std(x[:, j]) > 0]
    if len(complete) < MIN_RESPONSES or np.std(y) == 0 or not usable:
        return DriversRead(responses=len(complete), r_squared=None, drivers=[])
    x = x[:, usable]
    dims = [names[covered[j]] for j in usable]
    zx = (x - x.mean(axis=0)) / x.std(axis=0)
    zy = (y - y.mean()) / y.std()
    fit = sm.OLS(zy, sm.add_constant(zx, has_constant="add")).fit()
    out = []
    for j, dim in enumerate(dims):
        r = float(stats.pearsonr(x[:, j], y).statistic)
        out.append(
            DriverRead(
                dimension=dim,
                beta=float(fit.params[j + 1]),
                p_value=float(fit.pvalues[j + 1]),
                correlation=r,
                mean=float(x[:, j].mean()),
            )
        )
    out.sort(key=lambda d: -d.beta)
    return DriversRead(responses=len(complete), r_squared=float(fit.rsquared), drivers=out)


def _interval(values: np.ndarray) -> tuple[float, float] | None:
    """95 % confidence interval of the mean (Student's t)."""
    n = len(values)
    if n < 2:
        return None
    mean = float(values.mean())
    se = float(values.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return (mean, mean)
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=se)
    return (float(lo), float(hi))


def _welch(a: np.ndarray, b: np.ndarray) -> float | None:
    """Welch's two-sided t-test p-value; None without two answers on each side or when
    neither side varies."""
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return None
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def nps_coded(scores: np.ndarray) -> np.ndarray:
    """NPS answers as +100 (promoter), 0 (passive), -100 (detractor): their mean is the
    NPS."""
    return np.where(
        scores >= PROMOTER_FROM, 100.0, np.where(scores <= DETRACTOR_UP_TO, -100.0, 0.0)
    )


def _side(session: Session, f: Filters, timezone: str) -> tuple[SideRead, np.ndarray, np.ndarray]:
    rows = session.execute(filtered(session, select(R.csat, R.nps), f, timezone)).all()
    csat = np.array([r.csat for r in rows if r.csat is not None], dtype=float)
    nps = nps_coded(np.array([r.nps for r in rows if r.nps is not None], dtype=float))
    side = SideRead(
        start=f.start,
        end=f.end,
        responses=len(rows),
        csat_mean=float(csat.mean()) if len(csat) else None,
        csat_ci=_interval(csat),
        nps=float(nps.mean()) if len(nps) else None,
        nps_ci=_interval(nps),
    )
    return side, csat, nps


def compare(session: Session, f: Filters, timezone: str, *, at: date, days: int) -> CompareRead:
    """CSAT and NPS in the ``days`` days before ``at`` against the ``days`` days from
    ``at`` (local dates), with the other filters of ``f``."""
    before_f = replace(f, start=at - timedelta(days=days), end=at - timedelta(days=1))
    after_f = replace(f, start=at, end=at + timedelta(days=days - 1))
    before, csat_b, nps_b = _side(session, before_f, timezone)
    after, csat_a, nps_a = _side(session, after_f, timezone)
    return CompareRead(
        at=at,
        before=before,
        after=after,
        csat_p_value=_welch(csat_b, csat_a),
        nps_p_value=_welch(nps_b, nps_a),
    )
