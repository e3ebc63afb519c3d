"""Reading and acknowledging early-warning alerts (the ``warning`` step raises them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics.models import Alert
from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import NotFound
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.shipments.models import Shipment
from guanxi.tickets.models import Ticket


def list_alerts(session: Session, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
    """The newest alerts first (``open_only``: not yet acknowledged)."""
    query = select(Alert).order_by(Alert.day.desc(), Alert.id.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.acknowledged_at.is_(None))
    return list(session.scalars(query))


def get_alert(session: Session, alert_id: int) -> Alert:
    """One alert; 404 when there is none."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert not found", alert_id=alert_id)
    return alert


@dataclass(frozen=True)
class Case:
    """A ticket or shipment behind an alert, as listed on its page."""

    kind: str  # ticket | shipment
    id: int
    label: str
    status: str
    link: str


def cases(session: Session, alert: Alert) -> list[Case]:
    """The tickets (complaints) or shipments (delays, damage) counted by the alert."""
    ids: list[int] = json.loads(alert.evidence)
    if not ids:
        return []
    if alert.kind == "complaints":
        rows: Any = session.execute(
            select(Ticket.id, Ticket.subject, Ticket.status)
            .where(Ticket.id.in_(ids))
            .order_by(Ticket.id)
        )
        return [Case("ticket", i, s, st, f"/tickets/{i}") for i, s, st in rows]
    rows = session.execute(
        select(Shipment.id, Shipment.waybill_no, Shipment.status)
        .where(Shipment.id.in_(ids))
        .order_by(Shipment.id)
    )
    return [Case("shipment", i, w, st, f"/shipments/{i}") for i, w, st in rows]


def acknowledge(session: Session, *, alert_id: int, actor: User) -> Alert:
    """Mark an alert as seen and handled by ``actor``; audited. Idempotent."""
    with write_transaction(session):
        alert = get_alert(session, alert_id)
        if alert.acknowledged_at is None:
            alert.acknowledged_at = clock.now()
            alert.acknowledged_by = actor.id
            record(
                session,
                actor=actor_of(actor),
                action="analytics.alert_acknowledged",
                target_type="analytics_alert",
                target_id=alert.id,
                after={"kind": alert.kind, "member": alert.member, "day": alert.day.isoformat()},
            )
    return alert
