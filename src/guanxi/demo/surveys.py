"""Demo satisfaction surveys: a year of answers behind the survey results page.

Raised from the demo's own history: the survey after each resolved ticket of the service
history that has a satisfaction score (the CSAT answer *is* that score, so the KPI pages
and the survey results agree), after a sample of delivered shipments (late ones score
lower), the quarterly relationship survey to a sample of customers, and answers scanned at
three outlets. Invitations that were never answered make the response rate (~40 %).

Planted for the analysis pages: timeliness drives overall satisfaction most (the other
dimensions scatter more around CSAT), and the "delivery promise" campaign four months ago
lifted delivery satisfaction (a named campaign date in the survey policy, for the before /
after comparison). The newest detractors (of the last 30 days, at most 12) have their
follow-up tickets opened through the survey service (routed to the demo agents); older
ones predate follow-ups.

Written in bulk (like the service history), not answer by answer through the service: a
year of answers for 100,000 customers would otherwise take minutes of audit entries.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, save_setting
from guanxi.core import clock
from guanxi.core.db import align_sequences, reserve_ids, table_of, write_transaction
from guanxi.shipments.models import Shipment
from guanxi.surveys import followups
from guanxi.surveys.invitations import hash_token
from guanxi.surveys.models import (
    SurveyAnswer,
    SurveyInvitation,
    SurveyOutlet,
    SurveyResponse,
    SurveySetting,
    SurveyTemplate,
)
from guanxi.surveys.policy import POLICY_KEY, Milestone, load_policy
from guanxi.surveys.service import VersionView, current_version, version_view
from guanxi.tickets.models import Ticket

ZONE = ZoneInfo("Asia/Shanghai")
DEMO = Actor.system("demo")
CAMPAIGN = "派送时效提升计划上线"
# How far each dimension scatters around the overall score (standard deviation): the
# smallest is the strongest driver.
SCATTER = {
    "service_attitude": 1.4,
    "timeliness": 0.8,
    "process": 2.2,
    "price": 2.6,
    "after_sales": 2.3,
}
DIM_COLUMNS = {d: f"dim_{d}" for d in SCATTER}
PRAISE = [
    "快递员很有礼貌，送货上门",
    "速度快，包装完好",
    "客服回复及时，问题解决得很好",
    "一直用你们，放心",
]
COMPLAINTS = [
    "派送太慢，比承诺晚了两天",
    "快递员态度差，电话不接",
    "包裹有破损，理赔手续太麻烦",
    "运费比别家贵，优惠也少",
    "投诉后一直没人回电话",
    "没送上门，直接放驿站也不通知",
]
OUTLETS = [
    ("hz_linping", "杭州临平营业部", "浙江省"),
    ("gz_tianhe", "广州天河营业部", "广东省"),
    ("bj_chaoyang", "北京朝阳营业部", "北京市"),
]


def _clip(value: float, low: int, high: int) -> int:
    """A score rounded into its scale."""
    return int(min(max(round(value), low), high))


class _Writer:
    """Invitations, responses and answers gathered, then inserted in bulk."""

    def __init__(self, session: Session, rng: np.random.Generator) -> None:
        self.session = session
        self.rng = rng
        self.invitations: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.keys: set[str] = set()

    def invitation(
        self,
        *,
        key: str,
        view: VersionView,
        at: datetime,
        trigger: str,
        customer_id: int | None,
        channel: str,
        answered_at: datetime | None,
        ticket_id: int | None = None,
        shipment_id: int | None = None,
    ) -> int | None:
        if key in self.keys:
            return None
        self.keys.add(key)
        row = {
            "key": key,
            "template_id": view.template_id,
            "version_id": view.id,
            "customer_id": customer_id,
            "ticket_id": ticket_id,
            "shipment_id": shipment_id,
            "trigger": trigger,
            "channel": channel,
            # A secret nobody holds: demo links are not meant to be opened.
            "token_hash": hash_token(secrets.token_urlsafe(16)),
            "reminder_token_hash": None,
            "status": "answered" if answered_at else "open",
            "created_at": at,
            "expires_at": at + timedelta(days=14),
            "reminded_at": at + timedelta(days=3) if answered_at is None else None,
            "answered_at": answered_at,
        }
        self.invitations.append(row)
        return len(self.invitations) - 1

    def response(
        self,
        *,
        view: VersionView,
        at: datetime,
        csat: int | None,
        nps: int | None,
        trigger: str,
        channel: str,
        invitation: int | None = None,
        **context: Any,
    ) -> None:
        dims: dict[str, int] = {}
        anchor = csat if csat is not None else (nps if nps is not None else 7)
        for q in view.questions:
            if q.dimension and self.rng.random() < 0.85:
                dims[q.dimension] = _clip(anchor + self.rng.normal(0, SCATTER[q.dimension]), 1, 10)
        reason = None
        if nps is not None or csat is not None:
            low = (nps if nps is not None else 10) <= 6 or (csat or 10) <= 4
            if self.rng.random() < (0.8 if low else 0.3):
                pool = COMPLAINTS if low else PRAISE
                reason = pool[int(self.rng.integers(len(pool)))]
        detractor = (nps <= 6) if nps is not None else (csat is not None and csat <= 4)
        self.responses.append(
            {
                "invitation": invitation,
                "template_id": view.template_id,
                "version_id": view.id,
                "trigger": trigger,
                "channel": channel,
                "language": "zh_CN",
                "submitted_at": at,
                "csat": csat,
                "nps": nps,
                "reason": reason,
                "follow_up": "pending" if detractor else "none",
                **{DIM_COLUMNS[d]: v for d, v in dims.items()},
                **context,
                "_view": view,
            }
        )

    def write(self, recent: datetime) -> list[int]:
        """Insert everything; returns the ids of the detractors' responses since
        ``recent`` (their follow-ups are opened by the caller)."""
        session = self.session
        with write_transaction(session):
            inv_ids = reserve_ids(session, table_of(SurveyInvitation), len(self.invitations))
            for row, rid in zip(self.invitations, inv_ids, strict=True):
                row["id"] = rid
            for i in range(0, len(self.invitations), 2000):
                session.execute(insert(SurveyInvitation), self.invitations[i : i + 2000])
            resp_ids = reserve_ids(session, table_of(SurveyResponse), len(self.responses))
            rows = []
            recent_detractors = []
            for row, rid in zip(self.responses, resp_ids, strict=True):
                view: VersionView = row.pop("_view")
                index = row.pop("invitation")
                row["id"] = rid
                row["invitation_id"] = inv_ids[index] if index is not None else None
                if row["follow_up"] == "pending":
                    if row["submitted_at"] >= recent:
                        recent_detractors.append(rid)
                    else:
                        row["follow_up"] = "none"  # before follow-ups were opened
                rows.append(row)
                for q in view.questions:
                    value: int | None = None
                    text: str | None = None
                    if q.kind == "csat":
                        value = row["csat"]
                    elif q.kind == "nps":
                        value = row["nps"]
                    elif q.dimension:
                        value = row.get(DIM_COLUMNS[q.dimension])
                    elif q.reason_for:
                        text = row.get("reason")
                    if value is not None or text:
                        self.answers.append(
                            {"response_id": rid, "question_id": q.id, "value_int": value,
                             "value_text": text, "choices": None}
                        )  # fmt: skip
            keys = {k for r in rows for k in r}
            rows = [{k: r.get(k) for k in keys} for r in rows]
            for i in range(0, len(rows), 2000):
                session.execute(insert(SurveyResponse), rows[i : i + 2000])
            for i in range(0, len(self.answers), 4000):
                session.execute(insert(SurveyAnswer), self.answers[i : i + 4000])
        return recent_detractors


def _views(session: Session) -> dict[str, VersionView]:
    out = {}
    for template in session.scalars(select(SurveyTemplate)):
        version = current_version(session, template.id)
        if version is not None:
            out[template.code] = version_view(session, version.id)
    return out


def _local(day: date, rng: np.random.Generator) -> datetime:
    """A moment of the day in business hours (09:00-21:00 local), as UTC."""
    minutes = int(rng.integers(9 * 60, 21 * 60))
    return (
        datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(minutes=minutes)
    ).astimezone(UTC)


def seed_surveys(session: Session, *, seed: int = 7, now: datetime | None = None) -> int:
    """A year of survey invitations and answers (once: nothing happens when answers
    exist); returns how many answers were written."""
    if session.scalar(select(func.count()).select_from(SurveyResponse)):
        return 0
    views = _views(session)
    if not {"after_ticket", "after_delivery", "relationship"} <= set(views):
        return 0
    moment = now or clock.now()
    rng = np.random.default_rng(seed)
    today = moment.astimezone(ZONE).date()
    start = today - timedelta(days=365)
    campaign = today - timedelta(days=120)
    writer = _Writer(session, rng)
    # Tickets the demo desk resolved through the service were invited already.
    writer.keys.update(session.scalars(select(SurveyInvitation.key)))
    _tickets(session, writer, views["after_ticket"], rng, moment)
    _deliveries(session, writer, views["after_delivery"], rng, moment, start, campaign)
    _relationship(session, writer, views["relationship"], rng, moment, start, today)
    _outlets(session, writer, views["after_delivery"], rng, moment, today)
    session.commit()
    recent = writer.write(moment - timedelta(days=30))
    with write_transaction(session):
        policy = load_policy(session)
        if not any(m.name == CAMPAIGN for m in policy.milestones):
            policy.milestones.append(Milestone(name=CAMPAIGN, on=campaign))
            save_setting(
                session,
                model=SurveySetting,
                key=POLICY_KEY,
                text=policy.model_dump_json(),
                actor=DEMO,
                user_id=None,
                action="survey.policy_saved",
            )
    # The newest detractors' follow-ups, through the survey service (routed tickets).
    align_sequences(session, ("ticket", "ticket_event", "sla_event", "claim"))
    for response_id in recent[-12:]:
        with clock.frozen(moment):
            followups.open_follow_up(session, response_id)
    with write_transaction(session):
        from sqlalchemy import update

        session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.follow_up == "pending")
            .values(follow_up="none")
            .execution_options(synchronize_session=False)
        )
    return len(writer.responses)


def _tickets(
    session: Session,
    w: _Writer,
    view: VersionView,
    rng: np.random.Generator,
    now: datetime,
) -> None:
    """The survey of each resolved ticket: answered when the history has its score."""
    rows = session.execute(
        select(
            Ticket.id, Ticket.customer_id, Ticket.resolved_at, Ticket.satisfaction,
            Ticket.region, Ticket.owner_id, Ticket.reopened,
        )
        .where(Ticket.resolved_at.is_not(None), Ticket.customer_id.is_not(None))
        .order_by(Ticket.id)
    ).all()  # fmt: skip
    for tid, cid, resolved, score, region, owner, reopened in rows:
        if resolved is None:
            continue
        sent = resolved + timedelta(minutes=int(rng.integers(1, 30)))
        if sent > now:
            continue
        answered: datetime | None = (
            sent + timedelta(hours=float(rng.exponential(10))) if score else None
        )
        if answered is not None and answered > now:
            answered = None
        channel = "sms" if rng.random() < 0.8 else "email"
        index = w.invitation(
            key=f"ticket:{tid}:{reopened}", view=view, at=sent, trigger="ticket",
            customer_id=cid, channel=channel, answered_at=answered, ticket_id=tid,
        )  # fmt: skip
        if answered is None or index is None or score is None:
            continue
        nps = _clip(score + rng.normal(-0.3, 1.2), 0, 10)
        w.response(
            view=view, at=answered, csat=int(score), nps=nps, trigger="ticket", channel=channel,
            invitation=index, customer_id=cid, ticket_id=tid, region=(region or None),
            agent_id=owner,
        )  # fmt: skip


def _deliveries(
    session: Session,
    w: _Writer,
    view: VersionView,
    rng: np.random.Generator,
    now: datetime,
    start: date,
    campaign: date,
) -> None:
    """A 6 % sample of the year's deliveries; late ones score lower, and after the
    campaign the scores rise."""
    since = datetime(start.year, start.month, start.day, tzinfo=ZONE)
    rows = session.execute(
        select(
            Shipment.id, Shipment.customer_id, Shipment.delivered_at, Shipment.promised_at,
            Shipment.service_type, Shipment.dest_province,
        )
        .where(Shipment.delivered_at >= since, Shipment.delivered_at < now)
        .order_by(Shipment.id)
    ).all()  # fmt: skip
    if not rows:
        return
    pick = rng.random(len(rows)) < 0.06
    last: dict[int, datetime] = {}
    cutoff = datetime(campaign.year, campaign.month, campaign.day, tzinfo=ZONE)
    for (sid, cid, delivered, promised, service_type, province), chosen in zip(
        rows, pick, strict=True
    ):
        if delivered is None or not chosen:
            continue
        if cid in last and delivered - last[cid] < timedelta(days=30):
            continue
        last[cid] = delivered
        sent = delivered + timedelta(hours=2)
        answered: datetime | None = sent + timedelta(hours=float(rng.exponential(8)))
        if rng.random() > 0.4 or (answered is not None and answered > now):
            answered = None
        channel = "sms" if rng.random() < 0.9 else "email"
        index = w.invitation(
            key=f"delivery:{sid}", view=view, at=sent, trigger="delivery", customer_id=cid,
            channel=channel, answered_at=answered, shipment_id=sid,
        )  # fmt: skip
        if answered is None or index is None:
            continue
        late = promised is not None and delivered > promised
        base = 8.3 - (2.8 if late else 0.0) + (1.4 if delivered >= cutoff else 0.0)
        csat = _clip(rng.normal(base, 1.6), 1, 10)
        w.response(
            view=view, at=answered, csat=csat, nps=None, trigger="delivery", channel=channel,
            invitation=index, customer_id=cid, shipment_id=sid, service_type=service_type,
            region=province,
        )  # fmt: skip


def _relationship(
    session: Session,
    w: _Writer,
    view: VersionView,
    rng: np.random.Generator,
    now: datetime,
    start: date,
    today: date,
) -> None:
    """Each quarter, 10 % of the customers; a third answer."""
    customers: Sequence[int] = list(
        session.scalars(
            select(Shipment.customer_id)
            .group_by(Shipment.customer_id)
            .order_by(Shipment.customer_id)
        )
    )
    if not customers:
        return
    quarter = date(start.year, (start.month - 1) // 3 * 3 + 1, 1)
    while quarter <= today:
        label = f"{quarter.year}-{quarter.month:02d}"
        for cid in customers:
            if rng.random() >= 0.10:
                continue
            day = quarter + timedelta(days=int(rng.integers(0, 10)))
            if day > today:
                continue
            sent = _local(day, rng)
            answered: datetime | None = sent + timedelta(hours=float(rng.exponential(20)))
            if rng.random() > 0.33 or (answered is not None and answered > now):
                answered = None
            index = w.invitation(
                key=f"relationship:{label}:{cid}", view=view, at=sent, trigger="relationship",
                customer_id=cid, channel="sms", answered_at=answered,
            )  # fmt: skip
            if answered is None or index is None:
                continue
            nps = _clip(rng.normal(7.6, 2.0), 0, 10)
            w.response(
                view=view, at=answered, csat=None, nps=nps, trigger="relationship",
                channel="sms", invitation=index, customer_id=cid,
            )  # fmt: skip
        month = quarter.month + 3
        quarter = date(quarter.year + (month > 12), (month - 1) % 12 + 1, 1)


def _outlets(
    session: Session,
    w: _Writer,
    view: VersionView,
    rng: np.random.Generator,
    now: datetime,
    today: date,
) -> None:
    """Three outlets with a QR code each, scanned a few times a week."""
    with write_transaction(session):
        for code, name, region in OUTLETS:
            if session.scalar(select(SurveyOutlet.id).where(SurveyOutlet.code == code)) is None:
                session.add(
                    SurveyOutlet(
                        code=code, name=name, region=region, template_id=view.template_id,
                        active=True, created_at=now - timedelta(days=200),
                    )
                )  # fmt: skip
    outlets = list(session.scalars(select(SurveyOutlet).order_by(SurveyOutlet.id)))
    for outlet in outlets:
        for back in range(180):
            if rng.random() < 0.15:
                at = _local(today - timedelta(days=back), rng)
                if at > now:
                    continue
                csat = _clip(rng.normal(8.0, 1.8), 1, 10)
                w.response(
                    view=view, at=at, csat=csat, nps=None, trigger="outlet", channel="qr",
                    outlet_id=outlet.id, region=outlet.region,
                )  # fmt: skip
