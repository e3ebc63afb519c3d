"""The analytics' writes an administrator makes (rules, recompute requests) and the reads
the 360 view and the API show: a customer's portrait from the newest results.

Everything here reads the analytics' own tables and, for the portrait's behaviour panel,
the customer's shipments through plain aggregate queries; nothing writes a domain table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from guanxi.analytics.models import (
    AnalyticsRun,
    AnalyticsSetting,
    AnalyticsStep,
    CustomerChurn,
    CustomerClass,
    CustomerClv,
)
from guanxi.analytics.policy import POLICY_KEY, AnalyticsPolicy, load_policy
from guanxi.analytics.runner import latest_run, latest_run_at, load_steps
from guanxi.audit.service import record, save_setting
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.shipments.models import Shipment


def save_policy(session: Session, *, policy: AnalyticsPolicy, actor: User) -> AnalyticsPolicy:
    """Replace the analytics rules; audited with what changed. The next run applies them
    (the changed policy changes every step's input key, so nothing is skipped)."""
    text = policy.model_dump_json()
    with write_transaction(session):
        save_setting(
            session,
            model=AnalyticsSetting,
            key=POLICY_KEY,
            text=text,
            actor=actor_of(actor),
            user_id=actor.id,
            action="analytics.policy_saved",
        )
    return load_policy(session)


def request_run(session: Session, *, steps: list[str], actor: User) -> AnalyticsRun:
    """Queue a recomputation for the worker (all steps when ``steps`` is empty).

    A request while another is still queued returns that one: pressing the button twice
    does not run everything twice.
    """
    known = load_steps()
    unknown = [s for s in steps if s not in known]
    if unknown:
        raise ValidationFailed(
            [
                FieldError(
                    ("steps",),
                    "value_unknown",
                    f"Unknown value; expected one of: {', '.join(sorted(known))}",
                    {"choices": ", ".join(sorted(known))},
                )
            ]
        )
    with write_transaction(session):
        waiting = session.scalar(
            select(AnalyticsRun).where(AnalyticsRun.status == "queued").limit(1)
        )
        if waiting is not None:
            return waiting
        run = AnalyticsRun(
            as_of=clock.now(),
            status="queued",
            trigger="request",
            requested=",".join(steps),
        )
        session.add(run)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="analytics.run_requested",
            target_type="analytics_run",
            target_id=run.id,
            after={"steps": steps or sorted(known)},
        )
    return run


@dataclass(frozen=True)
class StepView:
    """One step of a run as shown to administrators."""

    step: str
    status: str
    rows: int
    seconds: float
    metrics: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class RunView:
    """A run with its steps."""

    id: int
    status: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime
    steps: list[StepView]


def list_runs(session: Session, *, limit: int = 20) -> list[RunView]:
    """The newest runs first, with their steps."""
    runs = list(session.scalars(select(AnalyticsRun).order_by(AnalyticsRun.id.desc()).limit(limit)))
    by_run: dict[int, list[StepView]] = {r.id: [] for r in runs}
    if runs:
        for s in session.scalars(
            select(AnalyticsStep)
            .where(AnalyticsStep.run_id.in_(list(by_run)))
            .order_by(AnalyticsStep.id)
        ):
            by_run[s.run_id].append(
                StepView(s.step, s.status, s.rows, s.seconds, json.loads(s.metrics), s.error)
            )
    return [
        RunView(r.id, r.status, r.trigger, r.started_at, r.finished_at, r.as_of, by_run[r.id])
        for r in runs
    ]


@dataclass(frozen=True)
class Reason:
    """One figure behind a class or a risk, in words the user reads (a message key and
    its values, translated on the page)."""

    key: str
    values: dict[str, Any]


@dataclass
class Portrait:
    """What the analytics know of one customer (客户画像)."""

    customer_id: int
    as_of: datetime | None = None
    classes: CustomerClass | None = None
    why: list[Reason] = field(default_factory=list)
    clv: CustomerClv | None = None
    churn: CustomerChurn | None = None
    churn_reasons: list[dict[str, Any]] = field(default_factory=list)
    service_types: list[tuple[str, int]] = field(default_factory=list)
    routes: list[tuple[str, str, int]] = field(default_factory=list)
    regions: list[tuple[str, int]] = field(default_factory=list)
    # (first day of month, shipments) for the last 12 months, oldest first.
    rhythm: list[tuple[date, int]] = field(default_factory=list)


def portrait(session: Session, *, customer_id: int, timezone: str) -> Portrait:
    """The customer's classes with why, CLV, churn risk with reasons, and how they ship.

    The caller has checked that the viewer may see the customer.
    """
    view = Portrait(customer_id=customer_id)
    rfm = latest_run_at(session, "rfm")
    if rfm is not None:
        rfm_run, view.as_of = rfm
        view.classes = session.get(CustomerClass, (rfm_run, customer_id))
        if view.classes is not None:
            view.why = explain(view.classes, load_policy(session))
    clv_run = latest_run(session, "clv")
    if clv_run is not None:
        view.clv = session.get(CustomerClv, (clv_run, customer_id))
    churn_run = latest_run(session, "churn")
    if churn_run is not None:
        view.churn = session.get(CustomerChurn, (churn_run, customer_id))
        if view.churn is not None:
            view.churn_reasons = json.loads(view.churn.reasons)
    _behaviour(session, view, timezone)
    return view


def explain(row: CustomerClass, policy: AnalyticsPolicy) -> list[Reason]:
    """Why the customer has these scores: "R 5: last shipment 3 days ago" …"""
    if row.r == 0:
        return [Reason("never_shipped", {})]
    window_months = round(policy.rfm.window_days / 30.4)
    return [
        Reason("why_r", {"score": row.r, "days": row.recency_days}),
        Reason("why_f", {"score": row.f, "count": row.frequency, "months": window_months}),
        Reason("why_m", {"score": row.m, "fen": row.monetary_fen, "months": window_months}),
    ]


def _behaviour(session: Session, view: Portrait, timezone: str) -> None:
    """Preferred service types, top routes and destination regions, monthly rhythm."""
    cid = view.customer_id
    view.service_types = [
        (str(kind), int(n))
        for kind, n in session.execute(
            select(Shipment.service_type, func.count())
            .where(Shipment.customer_id == cid, Shipment.service_type.is_not(None))
            .group_by(Shipment.service_type)
            .order_by(func.count().desc(), Shipment.service_type)
            .limit(3)
        )
    ]
    view.routes = [
        (str(a), str(b), int(n))
        for a, b, n in session.execute(
            select(Shipment.origin_city, Shipment.dest_city, func.count())
            .where(
                Shipment.customer_id == cid,
                Shipment.origin_city.is_not(None),
                Shipment.dest_city.is_not(None),
            )
            .group_by(Shipment.origin_city, Shipment.dest_city)
            .order_by(func.count().desc(), Shipment.origin_city, Shipment.dest_city)
            .limit(3)
        )
    ]
    view.regions = [
        (str(p), int(n))
        for p, n in session.execute(
            select(Shipment.dest_province, func.count())
            .where(Shipment.customer_id == cid, Shipment.dest_province.is_not(None))
            .group_by(Shipment.dest_province)
            .order_by(func.count().desc(), Shipment.dest_province)
            .limit(3)
        )
    ]
    view.rhythm = monthly_rhythm(session, cid, timezone)


def monthly_rhythm(session: Session, customer_id: int, timezone: str) -> list[tuple[date, int]]:
    """Shipments per calendar month (local time) over the last twelve months."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    today = clock.now().astimezone(zone).date()
    months: list[date] = []
    year, month = today.year, today.month
    for _ in range(12):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    months.reverse()
    starts = [datetime(m.year, m.month, 1, tzinfo=zone) for m in months]
    ends = [
        *starts[1:],
        datetime(today.year + (today.month == 12), today.month % 12 + 1, 1, tzinfo=zone),
    ]
    # One pass: a conditional count per month (portable; no timezone functions in SQL).
    columns = [
        func.sum(case(((Shipment.created_at >= lo) & (Shipment.created_at < hi), 1), else_=0))
        for lo, hi in zip(starts, ends, strict=True)
    ]
    row = session.execute(
        select(*columns).where(
            Shipment.customer_id == customer_id, Shipment.created_at >= starts[0]
        )
    ).one()
    return [(m, int(n or 0)) for m, n in zip(months, row, strict=True)]


@dataclass(frozen=True)
class SegmentMember:
    """A customer in a segment list (name only: identifiers stay on the 360 view)."""

    customer_id: int
    name: str
    segment: str
    relationship: str
    frequency_class: str
    value_tier: str
    r: int
    f: int
    m: int
    recency_days: int | None
    frequency: int
    monetary_fen: int


def segment_members(
    session: Session,
    *,
    segment: str | None = None,
    relationship: str | None = None,
    value_tier: str | None = None,
    frequency_class: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[SegmentMember]:
    """Customers of the current ``rfm`` run matching the filters, by customer id (keyset:
    ``after`` is the last id of the previous page)."""
    from guanxi.customers.models import Customer

    run_id = latest_run(session, "rfm")
    if run_id is None:
        return []
    query = (
        select(CustomerClass, Customer.name)
        .join(Customer, Customer.id == CustomerClass.customer_id)
        .where(CustomerClass.run_id == run_id)
    )
    for column, value in (
        (CustomerClass.segment, segment),
        (CustomerClass.relationship, relationship),
        (CustomerClass.value_tier, value_tier),
        (CustomerClass.frequency_class, frequency_class),
    ):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(CustomerClass.customer_id > after)
    rows = session.execute(query.order_by(CustomerClass.customer_id).limit(limit))
    return [
        SegmentMember(
            customer_id=c.customer_id,
            name=name,
            segment=c.segment,
            relationship=c.relationship,
            frequency_class=c.frequency_class,
            value_tier=c.value_tier,
            r=c.r,
            f=c.f,
            m=c.m,
            recency_days=c.recency_days,
            frequency=c.frequency,
            monetary_fen=c.monetary_fen,
        )
        for c, name in rows
    ]
