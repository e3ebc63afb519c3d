"""Daily shipment volume per region and service type, 7–90 days ahead, and the tickets it
will bring (step ``forecast``).

The series are the days' shipments by origin province and service type, with an
all-regions and an all-services total of each (local calendar days; a day without
shipments is a 0). One LightGBM model is fitted over all series at once ("global"), direct
multi-horizon: a training row is a series, an origin day and a horizon *k*; its features
are the target day's calendar (weekday, the holiday breaks and 调休 days, the Spring
Festival and the shopping festivals of :mod:`guanxi.analytics.calendar`) and the series'
recent history *relative to its own level* — the mean of its last 28 ordinary days (no
holiday break, Spring Festival weeks or shopping festival), so the level after a holiday is
the business's, not the holiday's: the last 7 and 28 days, the same weekday over the last
four weeks, the trend, the same week last year. Training rows are sampled by target day,
every past day once per series. The model predicts the multiplier of the level (Poisson
objective, the level as offset), so one model serves provinces of 5 and of 5,000
shipments a day, and learns a festival's effect from every series that lived through one.

A rolling-origin backtest (fits at several past origins, each seeing only data before
it) measures MAPE, sMAPE and WAPE beside the seasonal-naive forecasts (same weekday last week;
same weekday 52 weeks earlier when there is a year of history) and gives the prediction
band: quantiles of the backtest's errors by forecast size. Expected tickets per day are the
recent tickets-per-shipment rate of the series (tickets reach their series through the
waybill) times the forecast.

The step also stores the last weeks' actual volumes as rows before the forecast's first day
(``expected`` = ``low`` = ``high`` = the actual count), so the chart needs no query over
the shipment table.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics import calendar
from guanxi.analytics.engine import Workspace
from guanxi.analytics.models import AnalyticsStep, ForecastPoint
from guanxi.analytics.policy import ForecastPolicy
from guanxi.analytics.runner import Step, StepContext, StepResult, latest_run, register
from guanxi.core.errors import FieldError, ValidationFailed

STEP_NAME = "forecast"
# The member of a series key that stands for "all regions" / "all service types".
ALL = ""
# Shipments without an origin province or a service type.
UNKNOWN = "unknown"
# History read for the model: three years (a year-ago feature needs more than one).
HISTORY_DAYS = 3 * 365
# Actual days stored beside the forecast for the chart.
ACTUAL_DAYS = 91
# The level a series is measured against: its mean over this many days.
LEVEL_DAYS = 28
# Days around lunar new year whose volume is not an ordinary day's.
SF_SPECIAL_DAYS = 21
# How far back the level may reach for its ordinary days (past a Spring Festival).
LEVEL_REACH = 91
# A floor for the level, so a series silent for four weeks forecasts (almost) nothing
# rather than dividing by zero.
LEVEL_FLOOR = 0.02
# Training rows per fit (series x target day x horizon, sampled): every past day at least
# once per series, and a fit in seconds.
MAX_TRAIN_ROWS = 150_000
# Forecast-size buckets for the band's error quantiles (expected shipments a day).
BAND_EDGES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
BAND_MIN_SAMPLES = 100

DAILY_SQL = """
SELECT
    CAST(created_at AS DATE) AS day,
    COALESCE(NULLIF(origin_province, ''), $unknown) AS region,
    COALESCE(NULLIF(service_type, ''), $unknown) AS service_type,
    COUNT(*) AS shipments
FROM shipment
WHERE created_at >= $start AND created_at < $end
GROUP BY
    CAST(created_at AS DATE),
    COALESCE(NULLIF(origin_province, ''), $unknown),
    COALESCE(NULLIF(service_type, ''), $unknown)
"""

# Tickets per day and the series of the shipment they are about (NULL region: no waybill,
# or one no shipment has).
TICKETS_SQL = """
SELECT
    CAST(t.created_at AS DATE) AS day,
    CASE WHEN s.id IS NULL THEN NULL
         ELSE COALESCE(NULLIF(s.origin_province, ''), $unknown) END AS region,
    CASE WHEN s.id IS NULL THEN NULL
         ELSE COALESCE(NULLIF(s.service_type, ''), $unknown) END AS service_type,
    COUNT(*) AS tickets
FROM ticket AS t
LEFT JOIN shipment AS s ON s.waybill_no = t.waybill_no
WHERE t.created_at >= $start AND t.created_at < $end
GROUP BY
    CAST(t.created_at AS DATE),
    CASE WHEN s.id IS NULL THEN NULL
         ELSE COALESCE(NULLIF(s.origin_province, ''), $unknown) END,
    CASE WHEN s.id IS NULL THEN NULL
         ELSE COALESCE(NULLIF(s.service_type, ''), $unknown) END
"""

Key = tuple[str, str]


# --------------------------------------------------------------------------------------
# The daily series


@dataclass
class Panel:
    """Daily counts of many series: ``y[i, t]`` is series ``keys[i]`` on day
    ``start + t``."""

    start: date
    keys: list[Key]
    y: np.ndarray

    @property
    def days(self) -> int:
        """Number of days."""
        return int(self.y.shape[1])

    def day(self, index: int) -> date:
        """The date of day ``index``."""
        return self.start + timedelta(days=index)

    def index(self, key: Key) -> int:
        """Row of a series."""
        return self.keys.index(key)


def build_panel(
    days: Sequence[date],
    regions: Sequence[str],
    services: Sequence[str],
    counts: Sequence[float],
    start: date,
    n_days: int,
) -> Panel:
    """The series of counts given as (day, region, service type, count) rows, every day
    from ``start`` for ``n_days`` (missing days are 0), with the all-regions and
    all-services totals. Rows outside the days are ignored."""
    region_names = sorted(set(regions))
    service_names = sorted(set(services))
    r_index = {name: i for i, name in enumerate(region_names)}
    s_index = {name: i for i, name in enumerate(service_names)}
    cube = np.zeros((len(region_names), len(service_names), n_days))
    if len(days):
        offsets = np.array([(d - start).days for d in days], dtype=np.int64)
        ri = np.array([r_index[r] for r in regions], dtype=np.int64)
        si = np.array([s_index[s] for s in services], dtype=np.int64)
        values = np.asarray(counts, dtype=float)
        inside = (offsets >= 0) & (offsets < n_days)
        np.add.at(cube, (ri[inside], si[inside], offsets[inside]), values[inside])
    keys: list[Key] = [(ALL, ALL)]
    rows = [cube.sum(axis=(0, 1))]
    for j, service in enumerate(service_names):
        keys.append((ALL, service))
        rows.append(cube[:, j, :].sum(axis=0))
    for i, region in enumerate(region_names):
        keys.append((region, ALL))
        rows.append(cube[i].sum(axis=0))
        for j, service in enumerate(service_names):
            # Only the pairs that ever shipped: 30 provinces x 5 services is 150 series,
            # most regions do not run every product.
            if cube[i, j].any():
                keys.append((region, service))
                rows.append(cube[i, j])
    return Panel(start, keys, np.vstack(rows) if n_days else np.zeros((len(keys), 0)))


def load_panel(workspace: Workspace, first_day: date, history_days: int = HISTORY_DAYS) -> Panel:
    """Shipments per day, origin province and service type on the ``history_days`` local
    days before ``first_day`` (the forecast's first day)."""
    start = first_day - timedelta(days=history_days)
    table = workspace.query(
        DAILY_SQL,
        start=datetime.combine(start, datetime.min.time()),
        end=datetime.combine(first_day, datetime.min.time()),
        unknown=UNKNOWN,
    )
    cols = table.to_pydict()
    days = [_as_date(d) for d in cols["day"]]
    # History starts at the first shipment: leading empty years are no series (and a
    # database without shipments has no history at all).
    start = max(start, min(days)) if days else first_day
    n_days = (first_day - start).days
    return build_panel(days, cols["region"], cols["service_type"], cols["shipments"], start, n_days)


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


# --------------------------------------------------------------------------------------
# Features and the model

SERIES_FEATURES = (
    "horizon",
    "log_level",
    "r28",
    "r7",
    "r56",
    "sw1",
    "sw4",
    "yoy",
    "win_break",
    "win_sf",
    "win_promo",
    "region",
    "service",
)
FEATURES = calendar.REGRESSORS + SERIES_FEATURES
CATEGORICAL = ("holiday", "region", "service")


@dataclass
class _Prepared:
    """A panel's cumulative sums and calendar, shared by every fit on it."""

    y: np.ndarray
    csum: np.ndarray
    # Cumulative sums over the ordinary days only (no break, Spring Festival or festival).
    csum_ordinary: np.ndarray
    # (days + ahead + 1) ordinary days before each day: ordinary[t] counts days 0..t-1.
    ordinary: np.ndarray
    cal: np.ndarray  # (features, days + ahead) calendar regressors of the days
    win: np.ndarray  # (3, days + ahead + 1) cumulative counts of break / festival days
    region: np.ndarray
    service: np.ndarray

    @classmethod
    def of(cls, panel: Panel, ahead: int) -> _Prepared:
        span = panel.days + ahead
        regs = calendar.regressors(panel.start, span)
        cal = np.vstack([regs[name] for name in calendar.REGRESSORS])
        sf = np.nan_to_num(np.abs(regs["sf_offset"]), nan=99.0) <= SF_SPECIAL_DAYS
        promo = ~(np.isnan(regs["off_d11"]) & np.isnan(regs["off_618"]) & np.isnan(regs["off_d12"]))
        brk = regs["holiday"] > 0
        flags = np.vstack([brk, sf, promo]).astype(float)
        win = np.concatenate([np.zeros((3, 1)), np.cumsum(flags, axis=1)], axis=1)
        ordinary_day = ~(brk | sf | promo)
        ordinary = np.concatenate([[0], np.cumsum(ordinary_day)])
        regions = sorted({r for r, _s in panel.keys})
        services = sorted({s for _r, s in panel.keys})
        y = panel.y.astype(float)
        zero = np.zeros((y.shape[0], 1))
        csum = np.concatenate([zero, np.cumsum(y, axis=1)], axis=1)
        masked = y * ordinary_day[: panel.days]
        csum_ordinary = np.concatenate([zero, np.cumsum(masked, axis=1)], axis=1)
        return cls(
            y=y,
            csum=csum,
            csum_ordinary=csum_ordinary,
            ordinary=ordinary,
            cal=cal,
            win=win,
            region=np.array([regions.index(r) for r, _s in panel.keys], dtype=float),
            service=np.array([services.index(s) for _r, s in panel.keys], dtype=float),
        )


def _window_mean(csum: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per series, the mean over days ``first..last`` (inclusive) of each pair; NaN where
    the window starts before the data."""
    # Clipped before indexing: a negative index would wrap round to the end.
    lo, hi = np.maximum(first, 0), np.maximum(last + 1, 0)
    out = (csum[:, hi] - csum[:, lo]) / (last - first + 1)
    out[:, first < 0] = np.nan
    return out  # type: ignore[no-any-return]


def _ordinary_level(prep: _Prepared, origins: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """Per series, the mean of the last :data:`LEVEL_DAYS` ordinary days up to each origin
    (looking back at most :data:`LEVEL_REACH` days); the plain 28-day mean ``recent``
    where there are not that many.

    Measured on ordinary days, the level after the Spring Festival or Double 11 is the
    business's, not the holiday's: every effect is learnt, and forecast, as a multiple of
    an ordinary day.
    """
    counts = prep.ordinary
    have = counts[origins + 1]
    # The first day of the window: LEVEL_DAYS ordinary days up to the origin.
    first = np.searchsorted(counts, have - LEVEL_DAYS, side="right") - 1
    ok = (have >= LEVEL_DAYS) & (origins - first < LEVEL_REACH)
    first = np.clip(first, 0, None)
    sums = prep.csum_ordinary[:, origins + 1] - prep.csum_ordinary[:, first]
    return np.where(ok[None, :], sums / LEVEL_DAYS, recent)


def _design(
    prep: _Prepared, origins: np.ndarray, horizons: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Features (rows: series-major, then pairs) and the level of every (series, origin,
    horizon); ``origins`` are the last observed days, the targets ``origins + horizons``."""
    y, csum = prep.y, prep.csum
    n_series, n_pairs = y.shape[0], len(origins)
    o, k = origins, horizons
    target = o + k
    recent = _window_mean(csum, o - LEVEL_DAYS + 1, o)
    level = np.maximum(_ordinary_level(prep, o, recent), LEVEL_FLOOR)
    with np.errstate(invalid="ignore", divide="ignore"):
        r28 = recent / level
        r7 = _window_mean(csum, o - 6, o) / level
        r56 = _window_mean(csum, o - 55, o) / level
        # The same weekday as the target, last observed (at most a week before the origin).
        d0 = target - 7 * np.ceil(k / 7).astype(np.int64)
        sw = np.stack([_pick(y, d0 - 7 * j) for j in range(4)])
        sw1 = sw[0] / level
        sw4 = sw.mean(axis=0) / level
        # A year ago (52 weeks: the same weekday): the target's week against the level.
        yoy = _window_mean(csum, target - 364 - 3, target - 364 + 3) / _window_mean(
            csum, o - 364 - LEVEL_DAYS + 1, o - 364
        )
    yoy[~np.isfinite(yoy)] = np.nan
    lo = np.maximum(o - LEVEL_DAYS + 1, 0)
    win = prep.win[:, o + 1] - prep.win[:, lo]  # (3, pairs)

    columns: list[np.ndarray] = [
        np.broadcast_to(prep.cal[i, target], (n_series, n_pairs))
        for i in range(len(calendar.REGRESSORS))
    ]
    columns += [
        np.broadcast_to(k.astype(float), (n_series, n_pairs)),
        np.log(level),
        r28,
        r7,
        r56,
        sw1,
        sw4,
        yoy,
        np.broadcast_to(win[0], (n_series, n_pairs)),
        np.broadcast_to(win[1], (n_series, n_pairs)),
        np.broadcast_to(win[2], (n_series, n_pairs)),
        np.broadcast_to(prep.region[:, None], (n_series, n_pairs)),
        np.broadcast_to(prep.service[:, None], (n_series, n_pairs)),
    ]
    matrix = np.stack(columns, axis=-1).reshape(n_series * n_pairs, len(FEATURES))
    return matrix.astype(np.float32), level.reshape(-1)


def _pick(y: np.ndarray, days: np.ndarray) -> np.ndarray:
    """``y[:, days]`` with NaN for days before the data."""
    out = y[:, np.maximum(days, 0)].astype(float)
    out[:, days < 0] = np.nan
    return out


def _params(seed: int) -> dict[str, Any]:
    return {
        "objective": "poisson",
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_bin": 63,
        "seed": seed,
        # Same data and seed, same trees: the backtest must be reproducible.
        "deterministic": True,
        "force_row_wise": True,
        # One thread: the same trees on every machine, and a fit of seconds never fights
        # the web workers for cores (OpenMP threads on a busy host slow down many-fold).
        "num_threads": 1,
        "verbose": -1,
    }


ROUNDS = 150


def fit_predict(
    prep: _Prepared,
    last: int,
    horizon: int,
    *,
    seed: int = 0,
    max_rows: int = MAX_TRAIN_ROWS,
) -> np.ndarray:
    """Expected counts (series x ``horizon``) for the days after day ``last``, from a model
    fitted only on days up to ``last``."""
    n_series = prep.y.shape[0]
    pairs_o, pairs_k = _training_pairs(last, horizon, n_series, max_rows, seed)
    if len(pairs_o) < 4 * 7:
        # Too little history to learn from: the seasonal-naive forecast.
        return seasonal_naive(prep.y, last, horizon)
    # Imported here: pages that only read a forecast need not load LightGBM.
    import lightgbm as lgb

    x, level = _design(prep, pairs_o, pairs_k)
    target = prep.y[:, pairs_o + pairs_k].reshape(-1)
    data = lgb.Dataset(
        x,
        label=target,
        init_score=np.log(level),
        feature_name=list(FEATURES),
        categorical_feature=list(CATEGORICAL),
        free_raw_data=True,
    )
    booster = lgb.train(_params(seed), data, num_boost_round=ROUNDS)
    future_o = np.full(horizon, last)
    future_k = np.arange(1, horizon + 1)
    xf, level_f = _design(prep, future_o, future_k)
    raw = booster.predict(xf, raw_score=True)
    return (level_f * np.exp(raw)).reshape(n_series, horizon)


def _training_pairs(
    last: int, horizon: int, n_series: int, max_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(origin, horizon) pairs to learn from, targets observed by ``last``.

    Sampled by target day, not uniformly over pairs: every past day — each Double 11 and
    Spring Festival day among them — is a target the same number of times, at random
    horizons, so a rare day is never left out by chance.
    """
    min_origin = LEVEL_DAYS - 1
    targets = np.arange(min_origin + 1, last + 1)
    if len(targets) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    per_day = max(1, min(horizon, max_rows // max(n_series * len(targets), 1)))
    rng = np.random.default_rng(seed)
    # The horizons reachable for a target: its origin at or after ``min_origin``.
    reach = np.minimum(horizon, targets - min_origin)
    draws = rng.random((len(targets), per_day))
    k = 1 + np.floor(draws * reach[:, None]).astype(np.int64)
    pairs_t = np.repeat(targets, per_day)
    pairs_k = k.reshape(-1)
    return pairs_t - pairs_k, pairs_k


def seasonal_naive(y: np.ndarray, last: int, horizon: int, period: int = 7) -> np.ndarray:
    """The last observed ``period`` days repeated: day ``last + k`` gets the value of the
    latest day at most ``last`` that is a whole number of periods before it (NaN where
    the history is shorter)."""
    k = np.arange(1, horizon + 1)
    source = last + k - period * np.ceil(k / period).astype(np.int64)
    return _pick(y, source)


def seasonal_naive_year(y: np.ndarray, last: int, horizon: int) -> np.ndarray:
    """The same weekday 52 weeks earlier (NaN without a year of history)."""
    k = np.arange(1, horizon + 1)
    return _pick(y, last + k - 364)


# --------------------------------------------------------------------------------------
# Accuracy


def mape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Mean absolute percentage error (%) over the series-days with ``actual > 0`` (a day
    without shipments has no percentage error); NaN forecasts are left out."""
    a, f = np.asarray(actual, float).ravel(), np.asarray(forecast, float).ravel()
    keep = (a > 0) & np.isfinite(f)
    if not keep.any():
        return None
    return float(np.mean(np.abs(a[keep] - f[keep]) / a[keep]) * 100)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Symmetric MAPE (%, 0–200): 2|a − f| / (|a| + |f|), a day with both 0 counting as
    0 error."""
    a, f = np.asarray(actual, float).ravel(), np.asarray(forecast, float).ravel()
    keep = np.isfinite(f)
    if not keep.any():
        return None
    a, f = a[keep], f[keep]
    denom = np.abs(a) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(denom > 0, 2 * np.abs(a - f) / denom, 0.0)
    return float(np.mean(terms) * 100)


def wape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Weighted absolute percentage error (%): total absolute error over total volume —
    the staffing view, where a day of 5,000 shipments weighs more than a day of 5."""
    a, f = np.asarray(actual, float).ravel(), np.asarray(forecast, float).ravel()
    keep = np.isfinite(f)
    total = a[keep].sum()
    if total <= 0:
        return None
    return float(np.abs(a[keep] - f[keep]).sum() / total * 100)


def improvement(model: float | None, baseline: float | None) -> float | None:
    """How much lower the model's error is than the baseline's, in % of the baseline."""
    if model is None or baseline is None or baseline == 0:
        return None
    return (baseline - model) / baseline * 100


@dataclass
class Backtest:
    """Rolling-origin results: for each origin (its last observed day) the actuals, the
    model's and the baselines' forecasts (series x origins x horizon)."""

    origins: list[date]
    horizon: int
    actual: np.ndarray
    model: np.ndarray
    naive: np.ndarray
    naive_year: np.ndarray
    keys: list[Key] = field(default_factory=list)
    band: float = 0.8

    def metrics(self) -> dict[str, Any]:
        """MAPE and sMAPE of the model and the baselines, and the improvement."""
        if not self.origins:
            return {"origins": [], "horizon_days": self.horizon}
        out: dict[str, Any] = {
            "origins": [d.isoformat() for d in self.origins],
            "horizon_days": self.horizon,
            "series": len(self.keys),
            "mape_note": (
                "MAPE over series-days with actual > 0; sMAPE (0/0 = 0) and WAPE over all"
            ),
        }
        whole = self.keys.index((ALL, ALL)) if (ALL, ALL) in self.keys else None
        parts: list[tuple[str, slice | list[int]]] = [("all_series", slice(None))]
        if whole is not None:
            parts.append(("total", [whole]))
        for name, rows in parts:
            a = self.actual[rows]
            block: dict[str, Any] = {}
            for label, f in (
                ("model", self.model[rows]),
                ("seasonal_naive", self.naive[rows]),
                ("seasonal_naive_year", self.naive_year[rows]),
            ):
                if label == "seasonal_naive_year" and not np.isfinite(f).all():
                    # Only with a full year of history before every origin.
                    block[label] = None
                    continue
                block[label] = {"mape": mape(a, f), "smape": smape(a, f), "wape": wape(a, f)}
            for metric in ("mape", "smape", "wape"):
                block[f"improvement_{metric}_pct"] = improvement(
                    block["model"][metric], block["seasonal_naive"][metric]
                )
            out[name] = block
        out["band"] = self.band
        out["band_coverage"] = self.coverage()
        return out

    def band_quantiles(self) -> dict[str, Any]:
        """Quantiles of log((actual + 1) / (forecast + 1)) by forecast size."""
        return band_quantiles(self.actual, self.model, self.band)

    def coverage(self) -> float | None:
        """Share of the latest origin's actuals inside the band estimated from the earlier
        origins (an honest check of the band; None with one origin)."""
        if len(self.origins) < 2:
            return None
        q = band_quantiles(self.actual[:, 1:], self.model[:, 1:], self.band)
        low, high = apply_band(self.model[:, 0], q, self.band)
        a = self.actual[:, 0]
        return float(np.mean((a >= low) & (a <= high)))


def backtest(
    panel: Panel,
    horizon: int,
    *,
    origins: int = 4,
    step: int = 14,
    seed: int = 0,
    band: float = 0.8,
    max_rows: int = MAX_TRAIN_ROWS,
    prep: _Prepared | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Backtest:
    """Fit at ``origins`` past days ``step`` apart (the latest leaves ``horizon`` days to
    score) and compare with what happened; index 0 is the latest origin."""
    prep = prep or _Prepared.of(panel, calendar_ahead(horizon))
    lasts = [panel.days - 1 - horizon - i * step for i in range(origins)]
    # An origin needs history to learn from: a level and some weeks of targets.
    lasts = [t for t in lasts if t >= LEVEL_DAYS + 27]
    shape = (len(panel.keys), len(lasts), horizon)
    actual, model, naive, naive_year = (np.zeros(shape) for _ in range(4))
    for j, last in enumerate(lasts):
        window = slice(last + 1, last + 1 + horizon)
        actual[:, j] = panel.y[:, window]
        model[:, j] = fit_predict(
            _truncate(prep, last), last, horizon, seed=seed, max_rows=max_rows
        )
        naive[:, j] = seasonal_naive(panel.y, last, horizon)
        naive_year[:, j] = seasonal_naive_year(panel.y, last, horizon)
        if progress:
            progress(j + 1, len(lasts))
    return Backtest(
        origins=[panel.day(t) for t in lasts],
        horizon=horizon,
        actual=actual,
        model=model,
        naive=naive,
        naive_year=naive_year,
        keys=list(panel.keys),
        band=band,
    )


def calendar_ahead(horizon: int) -> int:
    """Calendar days needed past the data for a horizon."""
    return horizon + 1


def _truncate(prep: _Prepared, last: int) -> _Prepared:
    """The prepared panel as it was known at the end of day ``last`` (nothing later)."""
    return _Prepared(
        y=prep.y[:, : last + 1],
        csum=prep.csum[:, : last + 2],
        csum_ordinary=prep.csum_ordinary[:, : last + 2],
        ordinary=prep.ordinary,
        cal=prep.cal,
        win=prep.win,
        region=prep.region,
        service=prep.service,
    )


def band_quantiles(actual: np.ndarray, forecast: np.ndarray, band: float) -> dict[str, Any]:
    """Lower and upper quantiles of log((a + 1) / (f + 1)) per forecast-size bucket
    (:data:`BAND_EDGES`); a bucket with too few samples borrows the pooled quantiles."""
    a, f = np.asarray(actual, float).ravel(), np.asarray(forecast, float).ravel()
    keep = np.isfinite(f)
    a, f = a[keep], f[keep]
    lo_q, hi_q = (1 - band) / 2, 1 - (1 - band) / 2
    ratio = np.log((a + 1) / (f + 1))
    pooled = (
        (float(np.quantile(ratio, lo_q)), float(np.quantile(ratio, hi_q)))
        if len(ratio)
        else (None, None)
    )
    bucket = np.digitize(f, BAND_EDGES)
    per: list[tuple[float | None, float | None]] = []
    for b in range(len(BAND_EDGES) + 1):
        r = ratio[bucket == b]
        if len(r) >= BAND_MIN_SAMPLES:
            per.append((float(np.quantile(r, lo_q)), float(np.quantile(r, hi_q))))
        else:
            per.append(pooled)
    return {"band": band, "edges": list(BAND_EDGES), "buckets": per}


def apply_band(
    forecast: np.ndarray, quantiles: dict[str, Any] | None, band: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) around ``forecast``: the backtest's error quantiles when known, else
    the Poisson interval of the expected count."""
    f = np.maximum(np.asarray(forecast, float), 0.0)
    buckets = quantiles["buckets"] if quantiles else None
    if not buckets or buckets[0][0] is None:
        from scipy import stats

        lo_q, hi_q = (1 - band) / 2, 1 - (1 - band) / 2
        return stats.poisson.ppf(lo_q, f), stats.poisson.ppf(hi_q, f)
    index = np.digitize(f, quantiles["edges"] if quantiles else BAND_EDGES)
    qlo = np.array([b[0] for b in buckets])[index]
    qhi = np.array([b[1] for b in buckets])[index]
    low = np.maximum((f + 1) * np.exp(qlo) - 1, 0.0)
    high = np.maximum((f + 1) * np.exp(qhi) - 1, f)
    return np.minimum(low, f), high


# --------------------------------------------------------------------------------------
# Tickets


def ticket_rates(
    keys: Sequence[Key],
    shipments: np.ndarray,
    linked: dict[Key, float],
    total_tickets: float,
    *,
    min_tickets: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Tickets per shipment of every series and whether the rate is the series' own.

    ``shipments`` are the series' shipments over the rate window, ``linked`` the window's
    tickets about a waybill of each (region, service type) pair, ``total_tickets`` every
    ticket of the window. The whole's rate is all tickets over all shipments; a part's is
    its linked tickets over its shipments, scaled up by all / linked tickets so the
    tickets without a waybill are shared in proportion. A part with fewer than
    ``min_tickets`` linked tickets takes its service type's rate (all regions), else the
    overall one.
    """
    index = {key: i for i, key in enumerate(keys)}
    linked_by: dict[Key, float] = {}
    for (region, service), n in linked.items():
        for key in ((region, service), (region, ALL), (ALL, service), (ALL, ALL)):
            linked_by[key] = linked_by.get(key, 0.0) + n
    all_linked = linked_by.get((ALL, ALL), 0.0)
    scale = total_tickets / all_linked if all_linked > 0 else 0.0
    whole = index.get((ALL, ALL))
    overall = (
        total_tickets / shipments[whole] if whole is not None and shipments[whole] > 0 else 0.0
    )
    rates = np.full(len(keys), overall)
    own = np.zeros(len(keys), dtype=bool)
    if whole is not None:
        own[whole] = True

    def rate_of(key: Key) -> float | None:
        i = index.get(key)
        n = linked_by.get(key, 0.0)
        if i is None or n < min_tickets or shipments[i] <= 0 or scale == 0:
            return None
        return float(n / shipments[i] * scale)

    for i, key in enumerate(keys):
        if key == (ALL, ALL):
            continue
        mine = rate_of(key)
        if mine is not None:
            rates[i], own[i] = mine, True
            continue
        region, service = key
        if region != ALL and service != ALL:
            parent = rate_of((ALL, service))
            if parent is not None:
                rates[i] = parent
    return rates, own


def load_tickets(
    workspace: Workspace, first_day: date, days: int
) -> tuple[list[date], list[str | None], list[str | None], list[int]]:
    """Tickets per day over the ``days`` before ``first_day``, by the series of their
    waybill (region None: no known waybill)."""
    table = workspace.query(
        TICKETS_SQL,
        start=datetime.combine(first_day - timedelta(days=days), datetime.min.time()),
        end=datetime.combine(first_day, datetime.min.time()),
        unknown=UNKNOWN,
    )
    cols = table.to_pydict()
    return (
        [_as_date(d) for d in cols["day"]],
        cols["region"],
        cols["service_type"],
        [int(n) for n in cols["tickets"]],
    )


def _ticket_panel(panel: Panel, rows: tuple[list[Any], ...], first: date, days: int) -> np.ndarray:
    """Tickets per series and day over the ``days`` from ``first``: the whole counts every
    ticket, the parts the tickets about their waybills."""
    day_list, regions, services, counts = rows
    out = np.zeros((len(panel.keys), days))
    index = {key: i for i, key in enumerate(panel.keys)}
    whole = index.get((ALL, ALL))
    for d, region, service, n in zip(day_list, regions, services, counts, strict=True):
        t = (d - first).days
        if not 0 <= t < days:
            continue
        if whole is not None:
            out[whole, t] += n
        if region is None or service is None:
            continue
        for key in ((region, service), (region, ALL), (ALL, service)):
            i = index.get(key)
            if i is not None:
                out[i, t] += n
    return out


# --------------------------------------------------------------------------------------
# The step


@dataclass
class ForecastResult:
    """Everything the step computes: the forecast with its band and tickets, the recent
    actuals, and the backtest."""

    panel: Panel
    first_day: date
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    tickets: np.ndarray
    rates: np.ndarray
    own_rates: np.ndarray
    backtest: Backtest
    recent_tickets: np.ndarray
    seconds: dict[str, float]

    def metrics(self) -> dict[str, Any]:
        """The step's metrics: backtest accuracy beside the baselines, series, rates."""
        metrics: dict[str, Any] = _finite(
            {
                "first_day": self.first_day.isoformat(),
                "horizon_days": int(self.expected.shape[1]),
                "series": len(self.panel.keys),
                "history_days": self.panel.days,
                "backtest": self.backtest.metrics(),
                "ticket_rate": float(self.rates[0]) if len(self.rates) else None,
                "series_with_own_ticket_rate": int(self.own_rates.sum()),
                "seconds": self.seconds,
            }
        )
        return metrics


def compute(
    workspace: Workspace,
    first_day: date,
    policy: ForecastPolicy,
    progress: Callable[[int, int], None] | None = None,
) -> ForecastResult:
    """The forecast from ``first_day`` on, its backtest, band and expected tickets."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    panel = load_panel(workspace, first_day)
    horizon = policy.horizon_days
    rate_days = policy.ticket_rate_weeks * 7
    ticket_rows = load_tickets(workspace, first_day, max(rate_days, ACTUAL_DAYS))
    seconds["read"] = time.perf_counter() - began
    steps = policy.backtest_origins + 2

    def tick(done: int, _total: int) -> None:
        if progress:
            progress(done, steps)

    began = time.perf_counter()
    prep = _Prepared.of(panel, calendar_ahead(horizon))
    bt = backtest(
        panel,
        horizon,
        origins=policy.backtest_origins,
        step=policy.backtest_step_days,
        seed=policy.seed,
        band=policy.band,
        prep=prep,
        progress=tick,
    )
    seconds["backtest"] = time.perf_counter() - began
    began = time.perf_counter()
    last = panel.days - 1
    if panel.days == 0:
        expected = np.zeros((len(panel.keys), horizon))
    else:
        expected = fit_predict(prep, last, horizon, seed=policy.seed)
        expected = np.nan_to_num(expected, nan=0.0)
    quantiles = bt.band_quantiles() if bt.origins else None
    low, high = apply_band(expected, quantiles, policy.band)
    seconds["fit"] = time.perf_counter() - began
    tick(steps - 1, steps)

    # Tickets per shipment over the last weeks.
    window = min(rate_days, panel.days)
    shipments = panel.y[:, panel.days - window :].sum(axis=1)
    rate_start = first_day - timedelta(days=rate_days)
    linked: dict[Key, float] = {}
    total = 0.0
    for d, region, service, n in zip(*ticket_rows, strict=True):
        if d < rate_start:
            continue
        total += n
        if region is not None and service is not None:
            linked[(region, service)] = linked.get((region, service), 0.0) + n
    rates, own = ticket_rates(panel.keys, shipments, linked, total, min_tickets=policy.min_tickets)
    actual_days = min(ACTUAL_DAYS, panel.days)
    recent = _ticket_panel(panel, ticket_rows, first_day - timedelta(days=actual_days), actual_days)
    return ForecastResult(
        panel=panel,
        first_day=first_day,
        expected=expected,
        low=low,
        high=high,
        tickets=expected * rates[:, None],
        rates=rates,
        own_rates=own,
        backtest=bt,
        recent_tickets=recent,
        seconds=seconds,
    )


def rows_of(result: ForecastResult) -> list[dict[str, Any]]:
    """ForecastPoint rows: the recent actuals (``expected`` = ``low`` = ``high`` = the
    count), then the forecast."""
    panel = result.panel
    actual_days = result.recent_tickets.shape[1]
    rows: list[dict[str, Any]] = []
    for i, (region, service) in enumerate(panel.keys):
        for t in range(actual_days):
            day = result.first_day - timedelta(days=actual_days - t)
            value = float(panel.y[i, panel.days - actual_days + t])
            rows.append(
                {
                    "region": region,
                    "service_type": service,
                    "day": day,
                    "expected": value,
                    "low": value,
                    "high": value,
                    "expected_tickets": float(result.recent_tickets[i, t]),
                }
            )
        for k in range(result.expected.shape[1]):
            rows.append(
                {
                    "region": region,
                    "service_type": service,
                    "day": result.first_day + timedelta(days=k),
                    "expected": round(float(result.expected[i, k]), 3),
                    "low": round(float(result.low[i, k]), 3),
                    "high": round(float(result.high[i, k]), 3),
                    "expected_tickets": round(float(result.tickets[i, k]), 3),
                }
            )
    return rows


def _finite(value: Any) -> Any:
    """NaN and infinities as None (the metrics are JSON)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _run(ctx: StepContext) -> StepResult:
    # The day of the cut-off is incomplete: the forecast starts with it.
    first_day = ctx.as_of.date()
    result = compute(ctx.workspace, first_day, ctx.policy.forecast, progress=ctx.progress)
    rows = ctx.write(ForecastPoint, pa.Table.from_pylist(rows_of(result)))
    return StepResult(rows=rows, metrics=result.metrics())


STEP = register(
    Step(name=STEP_NAME, reads=("shipment", "ticket"), run=_run, writes=(ForecastPoint,))
)


# --------------------------------------------------------------------------------------
# Reading the results (pages and the API)


class ForecastDay(NamedTuple):
    """One forecast day of a series."""

    day: date
    expected: float
    low: float
    high: float
    expected_tickets: float


class ActualDay(NamedTuple):
    """One past day of a series: shipments, and tickets (for a region or service type,
    the tickets about its waybills; for the whole, every ticket)."""

    day: date
    shipments: float
    tickets: float


@dataclass(frozen=True)
class ForecastSeries:
    """A series' forecast with its band and the recent actuals, from the newest run."""

    run_id: int
    region: str | None
    service_type: str | None
    first_day: date
    forecast: list[ForecastDay]
    actuals: list[ActualDay]
    metrics: dict[str, Any]


def _latest(session: Session) -> tuple[int, dict[str, Any]] | None:
    run_id = latest_run(session, STEP_NAME)
    if run_id is None:
        return None
    raw = session.scalar(
        select(AnalyticsStep.metrics).where(
            AnalyticsStep.run_id == run_id, AnalyticsStep.step == STEP_NAME
        )
    )
    return run_id, json.loads(raw or "{}")


def forecast_members(session: Session) -> tuple[list[str], list[str]]:
    """The regions and service types the newest forecast has series for."""
    latest = _latest(session)
    if latest is None:
        return [], []
    pairs = session.execute(
        select(ForecastPoint.region, ForecastPoint.service_type)
        .where(ForecastPoint.run_id == latest[0])
        .distinct()
    ).all()
    regions = sorted({r for r, _s in pairs if r != ALL})
    services = sorted({s for _r, s in pairs if s != ALL})
    return regions, services


def forecast_series(
    session: Session, region: str | None = None, service_type: str | None = None
) -> ForecastSeries | None:
    """The newest forecast of one series (None: all regions / all service types), or
    None when no forecast has run yet. An unknown region or service type is refused."""
    latest = _latest(session)
    if latest is None:
        return None
    run_id, metrics = latest
    key = (region or ALL, service_type or ALL)
    points = session.execute(
        select(
            ForecastPoint.day,
            ForecastPoint.expected,
            ForecastPoint.low,
            ForecastPoint.high,
            ForecastPoint.expected_tickets,
        )
        .where(
            ForecastPoint.run_id == run_id,
            ForecastPoint.region == key[0],
            ForecastPoint.service_type == key[1],
        )
        .order_by(ForecastPoint.day)
    ).all()
    if not points:
        regions, services = forecast_members(session)
        if key[0] != ALL and key[0] not in regions:
            raise _unknown("region", regions)
        if key[1] != ALL and key[1] not in services:
            raise _unknown("service_type", services)
    first_day = date.fromisoformat(metrics.get("first_day") or date.max.isoformat())
    return ForecastSeries(
        run_id=run_id,
        region=region,
        service_type=service_type,
        first_day=first_day,
        forecast=[ForecastDay(d, e, lo, hi, t) for d, e, lo, hi, t in points if d >= first_day],
        actuals=[ActualDay(d, e, t) for d, e, _lo, _hi, t in points if d < first_day],
        metrics=metrics,
    )


def _unknown(name: str, choices: list[str]) -> ValidationFailed:
    listed = ", ".join(choices)
    return ValidationFailed(
        [
            FieldError(
                (name,),
                "value_unknown",
                f"Unknown value; expected one of: {listed}",
                {"choices": listed},
            )
        ]
    )
