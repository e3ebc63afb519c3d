"""Churn risk: who will stop shipping, why, and what to do about it (step ``churn``).

**What churn is.** A customer churns at a cut-off when they ship nothing in the
``HORIZON_DAYS`` (90) days from it; only customers who shipped in the 365 days before it
are asked. The horizon is ``[cut-off, cut-off + 90 days)`` and features see only
``< cut-off``, so every moment belongs to exactly one side.

**Features, leak-free.** Each group is one portable statement over the workspace views
(``shipment``, ``customer``, ``ticket``, ``ticket_event``, ``sla_event``, ``claim``,
``interaction``) that reads nothing at or after the cut-off, and nothing whose value a
later event could change: a ticket's state, reopenings and satisfaction answers come from
its timeline (``ticket_event``) up to the cut-off, not from its current columns; a breach
counts from the moment the sweep recorded it; a claim is rejected or approved only if it
was decided before the cut-off, and slow if it had waited a week undecided; a shipment is
late once its promised moment has passed without delivery. (A ticket's satisfaction score
itself is kept only as its latest value, so the features use the answers' kind — an
unsatisfied answer is a score of 1-2 — which the timeline dates.)

**Time-based split.** Train at ``t0 = as_of - 2 x horizon`` (labels from
``[t0, t0 + horizon)``), validate at ``t1 = as_of - horizon`` (labels up to ``as_of``):
the validation figures — ROC AUC, PR AUC, Brier score, calibration by bins — are honest
out-of-time estimates. The model is then refitted at ``t1`` and scores every active
customer at ``as_of``.

**Model.** LightGBM (gradient-boosted trees) with a fixed seed, ``deterministic=True``
and a fixed thread count, so the same data give the same scores. Each customer's top
reasons are the features with the largest positive contributions to their log-odds
(LightGBM's ``pred_contrib``, TreeSHAP), stored as ``[{"feature", "value", "effect"}]``;
the suggested action follows from them: a service problem calls for a return visit
(回访), a high-value customer for their account manager, a fading or price-sensitive one
for a coupon.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics.engine import Workspace
from guanxi.analytics.models import CustomerChurn
from guanxi.analytics.runner import Step, StepContext, StepResult, latest_run, register
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_, gettext

HORIZON_DAYS = 90
# Risk bands: high when churn is clearly more likely than not, medium from about one in
# three.
HIGH_RISK = 0.6
MEDIUM_RISK = 0.35
# Customers in the top fifth by revenue over the last year are high value.
HIGH_VALUE_SHARE = 0.2
REASONS = 3
# Fewer rows (or one class only) and no model is fitted: the step reports why.
MIN_ROWS = 30

SEED = 42
# One thread: the same trees on every machine, and no contention with the web server or
# other steps; training stays in seconds up to hundreds of thousands of customers.
THREADS = 1
ROUNDS = 120
# Small trees, well-filled leaves: on RFM-like data (heavy-tailed counts) deeper trees gain
# nothing out of time, and the per-customer contributions (TreeSHAP, the reasons) cost in
# proportion to the leaves: 7 leaves explain 10,000 customers in ~0.5 s on one core.
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.07,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "seed": SEED,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": THREADS,
    "verbose": -1,
}

KINDS = ("individual", "enterprise", "government")
PREMIUM_SERVICES = ("express", "same_day", "cold_chain", "international")
ACTIONS = ("return_visit", "account_manager_call", "coupon")

# Feature name -> label (translated where shown). Order is the model's column order.
# Loyalty (tier, points, coupons used) joins here once the loyalty domain exists.
FEATURES: dict[str, str] = {
    "kind": N_("Customer kind"),
    "tenure_days": N_("Days as a customer"),
    "recency_days": N_("Days since the last shipment"),
    "first_shipment_days": N_("Days since the first shipment"),
    "shipments_30": N_("Shipments in the last 30 days"),
    "shipments_90": N_("Shipments in the last 90 days"),
    "shipments_prev_90": N_("Shipments in the 90 days before those"),
    "shipments_365": N_("Shipments in the last 12 months"),
    "shipments_all": N_("Shipments ever"),
    "shipment_trend": N_("Shipping trend (last 90 days vs the 90 before)"),
    "revenue_90": N_("Revenue in the last 90 days (yuan)"),
    "revenue_365": N_("Revenue in the last 12 months (yuan)"),
    "revenue_trend": N_("Revenue trend (last 90 days vs the 90 before)"),
    "average_fee": N_("Average fee per shipment (yuan)"),
    "mean_gap_days": N_("Usual days between shipments"),
    "overdue": N_("Days since the last shipment, in usual gaps"),
    "late_365": N_("Late shipments in the last 12 months"),
    "late_share": N_("Share of shipments late"),
    "premium_share": N_("Share of express and special services"),
    "complaints_90": N_("Complaints in the last 90 days"),
    "complaints_365": N_("Complaints in the last 12 months"),
    "price_complaints_365": N_("Complaints about price in the last 12 months"),
    "inquiries_365": N_("Inquiries and requests in the last 12 months"),
    "days_since_complaint": N_("Days since the last complaint"),
    "open_tickets": N_("Tickets still open"),
    "reopened_365": N_("Tickets reopened in the last 12 months"),
    "unsatisfied_365": N_("Unsatisfied answers in the last 12 months"),
    "satisfied_365": N_("Satisfied answers in the last 12 months"),
    "last_answer_unsatisfied": N_("Last satisfaction answer was unsatisfied"),
    "breaches_90": N_("Tickets with a missed service level, last 90 days"),
    "breaches_365": N_("Tickets with a missed service level, last 12 months"),
    "days_since_breach": N_("Days since a service level was missed"),
    "claims_365": N_("Claims in the last 12 months"),
    "claims_rejected_365": N_("Claims rejected in the last 12 months"),
    "claims_slow_365": N_("Claims undecided for over a week"),
    "claims_pending": N_("Claims awaiting a decision"),
    "claim_requested_365": N_("Compensation asked in the last 12 months (yuan)"),
    "claim_shortfall_365": N_("Compensation asked but not granted (yuan)"),
    "days_since_contact": N_("Days since the last contact"),
    "contacts_90": N_("Contacts in the last 90 days"),
}
# Features that say the service let the customer down: a return visit is the answer.
SERVICE_FEATURES = frozenset(
    {
        "open_tickets",
        "breaches_90",
        "breaches_365",
        "days_since_breach",
        "unsatisfied_365",
        "last_answer_unsatisfied",
        "reopened_365",
        "claims_rejected_365",
        "claims_slow_365",
        "claims_pending",
        "claim_shortfall_365",
        "complaints_90",
        "complaints_365",
        "days_since_complaint",
    }
)

# --------------------------------------------------------------------------- the SQL
# DuckDB dialect, one statement per group, rendered for PostgreSQL by sqlglot. Every
# moment is a parameter computed in Python (no interval arithmetic on parameters); day
# differences are taken in Python from the timestamps, identical on both engines.

SHIPMENTS_SQL = """
SELECT
    customer_id,
    MIN(created_at) AS first_at,
    MAX(created_at) AS last_at,
    MIN(CASE WHEN created_at >= $d365 THEN created_at END) AS first_365_at,
    CAST(COUNT(*) AS BIGINT) AS shipments_all,
    CAST(SUM(CASE WHEN created_at >= $d30 THEN 1 ELSE 0 END) AS BIGINT) AS shipments_30,
    CAST(SUM(CASE WHEN created_at >= $d90 THEN 1 ELSE 0 END) AS BIGINT) AS shipments_90,
    CAST(SUM(CASE WHEN created_at >= $d180 AND created_at < $d90 THEN 1 ELSE 0 END) AS BIGINT)
        AS shipments_prev_90,
    CAST(SUM(CASE WHEN created_at >= $d365 THEN 1 ELSE 0 END) AS BIGINT) AS shipments_365,
    CAST(SUM(CASE WHEN created_at >= $d90 THEN fee_fen ELSE 0 END) AS DOUBLE) AS fee_90,
    CAST(SUM(CASE WHEN created_at >= $d180 AND created_at < $d90 THEN fee_fen ELSE 0 END)
        AS DOUBLE) AS fee_prev_90,
    CAST(SUM(CASE WHEN created_at >= $d365 THEN fee_fen ELSE 0 END) AS DOUBLE) AS fee_365,
    CAST(SUM(CASE WHEN created_at >= $d365 AND promised_at < $cutoff
                   AND COALESCE(delivered_at > promised_at, TRUE) THEN 1 ELSE 0 END)
        AS BIGINT) AS late_365,
    CAST(SUM(CASE WHEN created_at >= $d365
                   AND service_type IN ('express', 'same_day', 'cold_chain', 'international')
                   THEN 1 ELSE 0 END) AS BIGINT) AS premium_365
FROM shipment
WHERE created_at < $cutoff
GROUP BY customer_id
HAVING SUM(CASE WHEN created_at >= $d365 THEN 1 ELSE 0 END) > 0
"""

CUSTOMERS_SQL = """
SELECT id AS customer_id, kind, status, created_at
FROM customer
WHERE created_at < $cutoff
"""

TICKETS_SQL = """
SELECT
    customer_id,
    CAST(SUM(CASE WHEN type IN ('complaint', 'claim') AND created_at >= $d90 THEN 1 ELSE 0 END)
        AS BIGINT) AS complaints_90,
    CAST(SUM(CASE WHEN type IN ('complaint', 'claim') THEN 1 ELSE 0 END) AS BIGINT)
        AS complaints_365,
    CAST(SUM(CASE WHEN type IN ('complaint', 'claim') AND category LIKE 'price%' THEN 1 ELSE 0 END)
        AS BIGINT) AS price_complaints_365,
    CAST(SUM(CASE WHEN type IN ('inquiry', 'service_request') THEN 1 ELSE 0 END) AS BIGINT)
        AS inquiries_365,
    MAX(CASE WHEN type IN ('complaint', 'claim') THEN created_at END) AS last_complaint_at
FROM ticket
WHERE created_at < $cutoff AND created_at >= $d365 AND customer_id IS NOT NULL
GROUP BY customer_id
"""

# Where each ticket stood at the cut-off: the status its last step before it led to (a
# ticket without a timeline falls back to its resolution moment).
TICKET_STATE_SQL = """
WITH steps AS (
    SELECT
        ticket_id,
        MAX(id) AS last_id,
        SUM(CASE WHEN action IN ('reopen', 'unsatisfied') AND occurred_at >= $d365
                 THEN 1 ELSE 0 END) AS reopened,
        SUM(CASE WHEN action = 'unsatisfied' AND occurred_at >= $d365 THEN 1 ELSE 0 END)
            AS unsatisfied,
        SUM(CASE WHEN action = 'satisfaction' AND occurred_at >= $d365 THEN 1 ELSE 0 END)
            AS satisfied,
        MAX(CASE WHEN action IN ('satisfaction', 'unsatisfied') THEN occurred_at END)
            AS answered_at,
        MAX(CASE WHEN action = 'unsatisfied' THEN occurred_at END) AS unsatisfied_at
    FROM ticket_event
    WHERE occurred_at < $cutoff
    GROUP BY ticket_id
)
SELECT
    t.customer_id,
    CAST(SUM(CASE WHEN COALESCE(
            e.to_status,
            CASE WHEN t.resolved_at < $cutoff THEN 'resolved' ELSE 'open' END
        ) IN ('resolved', 'closed') THEN 0 ELSE 1 END) AS BIGINT) AS open_tickets,
    CAST(SUM(COALESCE(s.reopened, 0)) AS BIGINT) AS reopened_365,
    CAST(SUM(COALESCE(s.unsatisfied, 0)) AS BIGINT) AS unsatisfied_365,
    CAST(SUM(COALESCE(s.satisfied, 0)) AS BIGINT) AS satisfied_365,
    MAX(s.answered_at) AS answered_at,
    MAX(s.unsatisfied_at) AS unsatisfied_at
FROM ticket AS t
LEFT JOIN steps AS s ON s.ticket_id = t.id
LEFT JOIN ticket_event AS e ON e.id = s.last_id
WHERE t.created_at < $cutoff AND t.customer_id IS NOT NULL
GROUP BY t.customer_id
"""

BREACHES_SQL = """
SELECT
    t.customer_id,
    CAST(COUNT(DISTINCT CASE WHEN s.recorded_at >= $d90 THEN s.ticket_id END) AS BIGINT)
        AS breaches_90,
    CAST(COUNT(DISTINCT s.ticket_id) AS BIGINT) AS breaches_365,
    MAX(s.recorded_at) AS last_breach_at
FROM sla_event AS s
JOIN ticket AS t ON t.id = s.ticket_id
WHERE s.kind = 'breach' AND s.recorded_at < $cutoff AND s.recorded_at >= $d365
    AND t.customer_id IS NOT NULL
GROUP BY t.customer_id
"""

CLAIMS_SQL = """
SELECT
    customer_id,
    CAST(COUNT(*) AS BIGINT) AS claims_365,
    CAST(SUM(CASE WHEN status = 'rejected' AND decided_at < $cutoff THEN 1 ELSE 0 END)
        AS BIGINT) AS claims_rejected_365,
    CAST(SUM(CASE WHEN created_at < $week_before
                   AND (decided_at IS NULL OR decided_at > created_at + INTERVAL 7 DAY)
                   THEN 1 ELSE 0 END) AS BIGINT) AS claims_slow_365,
    CAST(SUM(CASE WHEN decided_at IS NULL OR decided_at >= $cutoff THEN 1 ELSE 0 END)
        AS BIGINT) AS claims_pending,
    CAST(SUM(requested_fen) AS DOUBLE) AS claim_requested_fen,
    CAST(SUM(CASE WHEN status IN ('approved', 'paid') AND decided_at < $cutoff
                  THEN approved_fen ELSE 0 END) AS DOUBLE) AS claim_approved_fen
FROM claim
WHERE created_at < $cutoff AND created_at >= $d365
GROUP BY customer_id
"""

CONTACTS_SQL = """
SELECT
    customer_id,
    MAX(occurred_at) AS last_contact_at,
    CAST(SUM(CASE WHEN occurred_at >= $d90 THEN 1 ELSE 0 END) AS BIGINT) AS contacts_90
FROM interaction
WHERE occurred_at < $cutoff
GROUP BY customer_id
"""

LABELS_SQL = """
SELECT DISTINCT customer_id
FROM shipment
WHERE created_at >= $cutoff AND created_at < $horizon_end
"""

GROUPS = (TICKETS_SQL, TICKET_STATE_SQL, BREACHES_SQL, CLAIMS_SQL, CONTACTS_SQL)


def _params(cutoff: datetime) -> dict[str, datetime]:
    return {
        "cutoff": cutoff,
        "d30": cutoff - timedelta(days=30),
        "d90": cutoff - timedelta(days=90),
        "d180": cutoff - timedelta(days=180),
        "d365": cutoff - timedelta(days=365),
        "week_before": cutoff - timedelta(days=7),
    }


@dataclass
class Features:
    """Customers (ids ascending) by :data:`FEATURES` (a float matrix, NaN where a moment
    is missing), with each customer's status and revenue for selection and actions."""

    ids: np.ndarray
    values: np.ndarray
    status: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> np.ndarray:
        """One feature's values."""
        out: np.ndarray = self.values[:, list(FEATURES).index(name)]
        return out

    def where(self, mask: np.ndarray) -> Features:
        """The customers where ``mask`` holds."""
        return Features(self.ids[mask], self.values[mask], self.status[mask])

    def row(self, customer_id: int) -> dict[str, float]:
        """One customer's features by name."""
        at = int(np.searchsorted(self.ids, customer_id))
        if at >= len(self.ids) or self.ids[at] != customer_id:
            raise KeyError(customer_id)
        return dict(zip(FEATURES, self.values[at].tolist(), strict=True))


class _Aligned:
    """A query's columns lined up with the population's customer ids."""

    def __init__(self, table: pa.Table, ids: np.ndarray) -> None:
        self.table = table
        theirs = np.asarray(table["customer_id"].to_numpy(zero_copy_only=False), dtype=np.int64)
        order = np.argsort(theirs, kind="stable")
        at = np.searchsorted(theirs[order], ids)
        inside = at < len(theirs)
        found = np.zeros(len(ids), dtype=bool)
        found[inside] = theirs[order][at[inside]] == ids[inside]
        self.rows = (
            np.where(found, order[np.minimum(at, len(theirs) - 1)], -1)
            if len(theirs)
            else np.full(len(ids), -1)
        )
        self.found = found

    def number(self, name: str, missing: float = np.nan) -> np.ndarray:
        column = self.table[name].cast(pa.float64()).to_numpy(zero_copy_only=False)
        values = np.asarray(column, dtype=np.float64)
        if not len(values):
            return np.full(len(self.rows), missing)
        out = np.where(self.found, values[np.maximum(self.rows, 0)], missing)
        filled: np.ndarray = np.where(np.isnan(out), missing, out)
        return filled

    def moment(self, name: str) -> np.ndarray:
        column = self.table[name].cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
        values = np.asarray(column, dtype="datetime64[us]")
        if not len(values):
            return np.full(len(self.rows), np.datetime64("NaT", "us"))
        nat = np.datetime64("NaT", "us")
        out: np.ndarray = np.where(self.found, values[np.maximum(self.rows, 0)], nat)
        return out

    def text(self, name: str) -> np.ndarray:
        values = np.asarray(self.table[name].to_pylist(), dtype=object)
        if not len(values):
            return np.full(len(self.rows), None, dtype=object)
        out: np.ndarray = np.full(len(self.rows), None, dtype=object)
        out[self.found] = values[self.rows[self.found]]
        return out


def _days_before(cutoff: datetime, moments: np.ndarray) -> np.ndarray:
    """Days from each moment to the cut-off (NaN where there is none)."""
    delta = (np.datetime64(cutoff, "us") - moments).astype("timedelta64[us]")
    days = delta.astype(np.int64) / 86_400e6
    out: np.ndarray = np.where(np.isnat(moments), np.nan, days)
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)
    return out


def features(workspace: Workspace, cutoff: datetime) -> Features:
    """Every feature of every customer who shipped in the 365 days before ``cutoff``
    (local naive), from data before it only, in customer id order."""
    params = _params(cutoff)
    ships = workspace.query(SHIPMENTS_SQL, **params)
    people = workspace.query(CUSTOMERS_SQL, cutoff=cutoff)
    known = np.asarray(people["customer_id"].to_numpy(zero_copy_only=False), dtype=np.int64)
    ids = np.asarray(ships["customer_id"].to_numpy(zero_copy_only=False), dtype=np.int64)
    ids = np.sort(ids[np.isin(ids, known)])
    s = _Aligned(ships, ids)
    c = _Aligned(people, ids)
    t, state, b, cl, co = (_Aligned(workspace.query(sql, **params), ids) for sql in GROUPS)
    f: dict[str, np.ndarray] = {}
    codes = {k: i for i, k in enumerate(KINDS)}
    f["kind"] = np.array([codes.get(k, len(KINDS)) for k in c.text("kind").tolist()], dtype=float)
    f["tenure_days"] = _days_before(cutoff, c.moment("created_at"))
    f["recency_days"] = _days_before(cutoff, s.moment("last_at"))
    f["first_shipment_days"] = _days_before(cutoff, s.moment("first_at"))
    for name in ("shipments_30", "shipments_90", "shipments_prev_90", "shipments_365"):
        f[name] = s.number(name)
    f["shipments_all"] = s.number("shipments_all")
    f["shipment_trend"] = np.log((f["shipments_90"] + 1.0) / (f["shipments_prev_90"] + 1.0))
    fee_90, fee_prev, fee_365 = (s.number(n) / 100.0 for n in ("fee_90", "fee_prev_90", "fee_365"))
    f["revenue_90"] = fee_90
    f["revenue_365"] = fee_365
    f["revenue_trend"] = np.log((fee_90 + 10.0) / (fee_prev + 10.0))
    f["average_fee"] = _ratio(fee_365, f["shipments_365"])
    span = _days_before(cutoff, s.moment("first_365_at")) - f["recency_days"]
    f["mean_gap_days"] = _ratio(span, f["shipments_365"] - 1)
    f["overdue"] = f["recency_days"] / np.maximum(f["mean_gap_days"], 1.0)
    f["late_365"] = s.number("late_365")
    f["late_share"] = _ratio(f["late_365"], f["shipments_365"])
    f["premium_share"] = _ratio(s.number("premium_365"), f["shipments_365"])
    for name in ("complaints_90", "complaints_365", "price_complaints_365", "inquiries_365"):
        f[name] = t.number(name, 0.0)
    f["days_since_complaint"] = _days_before(cutoff, t.moment("last_complaint_at"))
    for name in ("open_tickets", "reopened_365", "unsatisfied_365", "satisfied_365"):
        f[name] = state.number(name, 0.0)
    answered, low = state.moment("answered_at"), state.moment("unsatisfied_at")
    f["last_answer_unsatisfied"] = np.where(np.isnat(answered), np.nan, (low == answered) * 1.0)
    f["breaches_90"] = b.number("breaches_90", 0.0)
    f["breaches_365"] = b.number("breaches_365", 0.0)
    f["days_since_breach"] = _days_before(cutoff, b.moment("last_breach_at"))
    for name in ("claims_365", "claims_rejected_365", "claims_slow_365", "claims_pending"):
        f[name] = cl.number(name, 0.0)
    requested = cl.number("claim_requested_fen", 0.0) / 100.0
    f["claim_requested_365"] = requested
    f["claim_shortfall_365"] = requested - cl.number("claim_approved_fen", 0.0) / 100.0
    f["days_since_contact"] = _days_before(cutoff, co.moment("last_contact_at"))
    f["contacts_90"] = co.number("contacts_90", 0.0)
    values = (
        np.column_stack([f[name] for name in FEATURES])
        if len(ids)
        else np.empty((0, len(FEATURES)))
    )
    return Features(ids, values.astype(np.float64), c.text("status"))


def labels(workspace: Workspace, cutoff: datetime, horizon_days: int = HORIZON_DAYS) -> set[int]:
    """Customers who shipped within ``[cutoff, cutoff + horizon)`` (the rest churned)."""
    table = workspace.query(
        LABELS_SQL, cutoff=cutoff, horizon_end=cutoff + timedelta(days=horizon_days)
    )
    return {int(v) for v in table["customer_id"].to_pylist()}


def churned(population: Features, shipped: set[int]) -> np.ndarray:
    """1 for the customers of ``population`` who did not ship in the horizon, else 0."""
    return (~np.isin(population.ids, np.fromiter(shipped, np.int64, len(shipped)))).astype(np.int64)


# ------------------------------------------------------------------------- the model


def _params_for(rows: int) -> dict[str, Any]:
    # Small data (a young installation, a test fixture) still gets a model: leaves need
    # fewer rows.
    return PARAMS | {"min_data_in_leaf": max(5, min(PARAMS["min_data_in_leaf"], rows // 20))}


def fit(population: Features, y: np.ndarray) -> lgb.Booster:
    """A LightGBM classifier of churn on the population's features (deterministic)."""
    data = lgb.Dataset(
        population.values,
        label=y,
        feature_name=list(FEATURES),
        categorical_feature=["kind"],
        free_raw_data=True,
        params={"verbose": -1},
    )
    return lgb.train(_params_for(len(population)), data, num_boost_round=ROUNDS)


def predict(model: lgb.Booster, population: Features) -> np.ndarray:
    """Churn probabilities of the population's customers."""
    if not len(population):
        return np.empty(0)
    return np.asarray(model.predict(population.values, num_threads=THREADS), dtype=np.float64)


def contributions(model: lgb.Booster, population: Features) -> np.ndarray:
    """Each feature's contribution to each customer's log-odds (TreeSHAP; the last column
    is the model's base value)."""
    if not len(population):
        return np.empty((0, len(FEATURES) + 1))
    out = model.predict(population.values, pred_contrib=True, num_threads=THREADS)
    return np.asarray(out, dtype=np.float64)


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float | int]]:
    """Predicted against observed churn in equal-width probability bins (empty bins left
    out): ``{"low", "high", "customers", "predicted", "observed"}``."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    out: list[dict[str, float | int]] = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append(
                {
                    "low": round(float(edges[b]), 2),
                    "high": round(float(edges[b + 1]), 2),
                    "customers": int(mask.sum()),
                    "predicted": round(float(p[mask].mean()), 4),
                    "observed": round(float(y[mask].mean()), 4),
                }
            )
    return out


def quality(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC AUC, PR AUC (average precision), Brier score and calibration bins."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = len(np.unique(y)) == 2
    return {
        "customers": len(y),
        "churn_rate": round(float(y.mean()), 4) if len(y) else None,
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "pr_auc": round(float(average_precision_score(y, p)), 4) if both else None,
        "brier": round(float(np.mean((p - y) ** 2)), 4) if len(y) else None,
        "calibration": calibration(y, p),
    }


def band(risk: np.ndarray) -> np.ndarray:
    """high / medium / low by the risk thresholds."""
    return np.where(risk >= HIGH_RISK, "high", np.where(risk >= MEDIUM_RISK, "medium", "low"))


def reasons(
    effects: np.ndarray, population: Features, top: int = REASONS
) -> list[list[dict[str, Any]]]:
    """Per customer, the features that raise the risk most (positive contributions to the
    log-odds, largest first) with the customer's value of each."""
    names = list(FEATURES)
    effects = effects[:, : len(names)]
    values = population.values
    order = np.argsort(-effects, axis=1, kind="stable")[:, :top]
    out: list[list[dict[str, Any]]] = []
    for i, row in enumerate(order.tolist()):
        found = []
        for j in row:
            effect = float(effects[i, j])
            if effect <= 0:
                break
            found.append(
                {
                    "feature": names[j],
                    "value": _shown(names[j], values[i, j]),
                    "effect": round(effect, 3),
                }
            )
        out.append(found)
    return out


def _shown(name: str, value: float) -> Any:
    if math.isnan(value):
        return None
    if name == "kind":
        return KINDS[int(value)] if int(value) < len(KINDS) else "other"
    if float(value).is_integer():
        return int(value)
    return round(float(value), 2)


def reason_label(feature: str, lang: str) -> str:
    """A reason's feature in the user's language (the code itself if unknown)."""
    template = FEATURES.get(feature)
    return gettext(lang, template) if template else feature


def labelled(found: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Stored reasons with a ``label`` in ``lang`` beside each feature code, for pages."""
    return [r | {"label": reason_label(str(r.get("feature")), lang)} for r in found]


def service_issue(population: Features) -> np.ndarray:
    """Whether the service let each customer down lately: a ticket still open, a missed
    service level or an unsatisfied answer in the last 180 days, a claim rejected, slow
    or undecided."""
    col = population.column
    return (  # type: ignore[no-any-return]
        (col("open_tickets") > 0)
        | (np.nan_to_num(col("days_since_breach"), nan=np.inf) <= 180)
        | (col("last_answer_unsatisfied") == 1)
        | (col("claims_rejected_365") > 0)
        | (col("claims_slow_365") > 0)
        | (col("claims_pending") > 0)
    )


def suggest(
    found: list[dict[str, Any]], risk_band: str, high_value: bool, let_down: bool
) -> str | None:
    """What to do: nothing for low risk; a return visit (回访) when the service let the
    customer down (``let_down``, or a service problem among the reasons); the account
    manager for a high-value customer; else a coupon (a fading or price-sensitive
    customer)."""
    if risk_band == "low":
        return None
    if let_down or any(r["feature"] in SERVICE_FEATURES for r in found):
        return "return_visit"
    if high_value:
        return "account_manager_call"
    return "coupon"


# -------------------------------------------------------------------------- the step


def _run(ctx: StepContext) -> StepResult:
    horizon = timedelta(days=HORIZON_DAYS)
    t1 = ctx.as_of - horizon
    t0 = t1 - horizon
    ws = ctx.workspace
    train = features(ws, t0)
    y_train = churned(train, labels(ws, t0))
    ctx.progress(1, 5)
    valid = features(ws, t1)
    y_valid = churned(valid, labels(ws, t1))
    current = features(ws, ctx.as_of)
    current = current.where(current.status == "active")
    ctx.progress(2, 5)
    if (
        min(len(train), len(valid)) < MIN_ROWS
        or len(np.unique(y_train)) < 2
        or len(np.unique(y_valid)) < 2
    ):
        return StepResult(
            rows=0,
            metrics={
                "skipped": "too few customers with a history to learn from",
                "train_customers": len(train),
                "validation_customers": len(valid),
            },
        )
    started = time.perf_counter()
    model = fit(train, y_train)
    train_seconds = time.perf_counter() - started
    p_valid = predict(model, valid)
    metrics = quality(y_valid, p_valid)
    from sklearn.metrics import roc_auc_score

    metrics["recency_roc_auc"] = round(
        float(roc_auc_score(y_valid, valid.column("recency_days"))), 4
    )
    ctx.progress(3, 5)

    # Refit on the latest complete horizon, score today's customers.
    final = fit(valid, y_valid)
    risk = predict(final, current) if len(current) else np.empty(0)
    found = reasons(contributions(final, current), current)
    bands = band(risk)
    revenue = current.column("revenue_365")
    value_cut = float(np.quantile(revenue, 1 - HIGH_VALUE_SHARE)) if len(revenue) else 0.0
    let_down = service_issue(current).tolist()
    actions = [
        suggest(f, b, v >= value_cut and v > 0, d)
        for f, b, v, d in zip(found, bands.tolist(), revenue.tolist(), let_down, strict=True)
    ]
    ctx.progress(4, 5)
    rows = ctx.write(
        CustomerChurn,
        [
            {
                "customer_id": int(cid),
                "risk": round(float(r), 6),
                "band": str(b),
                "reasons": json.dumps(f, ensure_ascii=False),
                "action": a,
            }
            for cid, r, b, f, a in zip(
                current.ids.tolist(), risk.tolist(), bands.tolist(), found, actions, strict=True
            )
        ],
    )
    importance = final.feature_importance(importance_type="gain")
    top = np.argsort(-importance)[:10]
    metrics |= {
        "horizon_days": HORIZON_DAYS,
        "train_cutoff": t0.isoformat(sep=" "),
        "validation_cutoff": t1.isoformat(sep=" "),
        "train_customers": len(train),
        "train_churn_rate": round(float(y_train.mean()), 4),
        "train_seconds": round(train_seconds, 3),
        "scored": rows,
        "bands": {b: int((bands == b).sum()) for b in ("high", "medium", "low")},
        "actions": {a: actions.count(a) for a in ACTIONS},
        "importance": {list(FEATURES)[i]: round(float(importance[i]), 1) for i in top},
    }
    ctx.save_model("churn", final.model_to_string().encode(), metrics)
    ctx.progress(5, 5)
    return StepResult(rows=rows, metrics=metrics)


STEP = register(
    Step(
        name="churn",
        reads=(
            "customer",
            "shipment",
            "ticket",
            "ticket_event",
            "sla_event",
            "claim",
            "interaction",
        ),
        run=_run,
        writes=(CustomerChurn,),
    )
)


# ------------------------------------------------------------------------ the reads


@dataclass(frozen=True)
class AtRisk:
    """A customer on the at-risk list: risk, band, why and what to do."""

    customer_id: int
    name: str
    owner_id: int | None
    risk: float
    band: str
    reasons: list[dict[str, Any]]
    action: str | None


def at_risk(
    session: Session, *, limit: int = 50, min_risk: float = MEDIUM_RISK, owner_id: int | None = None
) -> list[AtRisk]:
    """The active customers most likely to churn (newest churn run), riskiest first, with
    their reasons and suggested action; only ``owner_id``'s customers when given. For the
    360 view, the contact-cadence due list and campaign audiences."""
    from guanxi.customers.models import Customer

    if limit < 1:
        raise ValidationFailed(
            [FieldError(("limit",), "greater_than_equal", "Must be at least 1", {"ge": 1})]
        )
    if limit > 1000:
        raise ValidationFailed(
            [FieldError(("limit",), "less_than_equal", "Must be at most 1000", {"le": 1000})]
        )
    if not 0.0 <= min_risk <= 1.0:
        code, params = (
            ("greater_than_equal", {"ge": 0}) if min_risk < 0 else ("less_than_equal", {"le": 1})
        )
        raise ValidationFailed([FieldError(("min_risk",), code, "Must be between 0 and 1", params)])
    run_id = latest_run(session, "churn")
    if run_id is None:
        return []
    query = (
        select(CustomerChurn, Customer.name, Customer.owner_id)
        .join(Customer, Customer.id == CustomerChurn.customer_id)
        .where(
            CustomerChurn.run_id == run_id,
            CustomerChurn.risk >= min_risk,
            Customer.status == "active",
        )
        .order_by(CustomerChurn.risk.desc(), CustomerChurn.customer_id)
        .limit(limit)
    )
    if owner_id is not None:
        query = query.where(Customer.owner_id == owner_id)
    return [
        AtRisk(
            customer_id=row.customer_id,
            name=name,
            owner_id=owner,
            risk=row.risk,
            band=row.band,
            reasons=json.loads(row.reasons),
            action=row.action,
        )
        for row, name, owner in session.execute(query)
    ]


def high_risk_of_owner(session: Session, owner_id: int) -> dict[int, float]:
    """The owner's customers at high churn risk (for the contact-cadence due list)."""
    return {
        c.customer_id: c.risk
        for c in at_risk(session, limit=1000, min_risk=HIGH_RISK, owner_id=owner_id)
    }
