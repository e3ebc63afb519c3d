"""The consent ledger: append-only events, the current state per purpose, who may be
contacted (allowed_customers / is_allowed), bulk grants, contact points."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import NotFound, ValidationFailed
from guanxi.customers.consent import (
    Purpose,
    allowed_customers,
    consent_history,
    consents_of,
    grant_many,
    is_allowed,
    record_consent,
)
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, CustomerConsent, CustomerConsentEvent
from guanxi.customers.queries import ContactPoints, contact_points
from guanxi.customers.service import set_status

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
AGENT = Actor(None, "agent zhang")


def _record(
    db: Session, customer_id: int, purpose: Purpose, granted: bool, source: str = "agent"
) -> None:
    with write_transaction(db):
        record_consent(
            db,
            customer_id=customer_id,
            purpose=purpose,
            granted=granted,
            source=source,
            actor=AGENT,
        )


def _allowed(db: Session, purpose: Purpose, among: list[int]) -> set[int]:
    return set(db.scalars(allowed_customers(purpose))) & set(among)


def test_who_may_be_contacted(db: Session, make_customer: Any, make_user: Any) -> None:
    a, b, c, d = (make_customer(name=n) for n in ("甲", "乙", "丙", "丁"))
    ids = [a.id, b.id, c.id, d.id]
    _record(db, a.id, Purpose.marketing_sms, True)
    _record(db, b.id, Purpose.marketing_sms, True)
    _record(db, b.id, Purpose.marketing_sms, False)  # withdrawn later
    _record(db, c.id, Purpose.survey, False)  # opted out of surveys
    _record(db, d.id, Purpose.marketing_sms, True)
    admin = make_user("admin")
    set_status(db, customer_id=d.id, status=CustomerStatus.archived, actor=admin)

    # Marketing needs a granted consent; an archived customer is not contacted.
    assert _allowed(db, Purpose.marketing_sms, ids) == {a.id}
    assert _allowed(db, Purpose.marketing_email, ids) == set()
    # Surveys are allowed unless withdrawn.
    assert _allowed(db, Purpose.survey, ids) == {a.id, b.id}
    assert [is_allowed(db, i, Purpose.marketing_sms) for i in ids] == [True, False, False, False]
    assert [is_allowed(db, i, Purpose.survey) for i in ids] == [True, True, False, False]
    # Usable inside bigger statements (the audience filters of care and surveys).
    stmt = (
        select(func.count())
        .select_from(Customer)
        .where(Customer.id.in_(ids), Customer.id.in_(allowed_customers(Purpose.survey)))
    )
    assert db.scalar(stmt) == 2


def test_events_are_kept_and_the_state_follows_the_latest(db: Session, make_customer: Any) -> None:
    a = make_customer()
    with clock.frozen(T0):
        _record(db, a.id, Purpose.marketing_email, True, source="web")
    with clock.frozen(T0.replace(hour=5)):
        _record(db, a.id, Purpose.marketing_email, False, source="email_link")
    history = consent_history(db, a.id)
    assert [(e.purpose, e.granted, e.source, e.actor_name, e.at) for e in history] == [
        ("marketing_email", False, "email_link", "agent zhang", T0.replace(hour=5)),
        ("marketing_email", True, "web", "agent zhang", T0),
    ]
    states = {s.purpose.value: (s.granted, s.allowed, s.source) for s in consents_of(db, a.id)}
    assert states == {
        "marketing_sms": (None, False, None),
        "marketing_email": (False, False, "email_link"),
        "survey": (None, True, None),
        "third_party": (None, False, None),
        "cross_border": (None, False, None),
    }
    audits = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.target_type == "customer", AuditEntry.target_id == str(a.id))
        .where(AuditEntry.action.like("customer.consent_%"))
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.before, e.after) for e in audits] == [
        (
            "customer.consent_granted",
            {"purpose": "marketing_email", "granted": None},
            {"purpose": "marketing_email", "granted": True, "source": "web"},
        ),
        (
            "customer.consent_withdrawn",
            {"purpose": "marketing_email", "granted": True},
            {"purpose": "marketing_email", "granted": False, "source": "email_link"},
        ),
    ]


def test_bad_input_names_the_field_and_writes_nothing(db: Session, make_customer: Any) -> None:
    a = make_customer()
    with pytest.raises(ValidationFailed) as info, write_transaction(db):
        record_consent(
            db, customer_id=a.id, purpose="spam", granted=True, source="fax",  # type: ignore[arg-type]
            actor=AGENT, legal_basis="whim",
        )  # fmt: skip
    assert [(e.loc, e.code) for e in info.value.errors] == [
        (("purpose",), "enum"),
        (("source",), "enum"),
        (("legal_basis",), "enum"),
    ]
    with pytest.raises(NotFound), write_transaction(db):
        record_consent(db, customer_id=999999, purpose=Purpose.survey, granted=False,
                       source="agent", actor=AGENT)  # fmt: skip
    assert db.scalar(select(func.count()).select_from(CustomerConsentEvent)) == 0
    assert db.scalar(select(func.count()).select_from(CustomerConsent)) == 0


def test_grant_many(db: Session, make_customer: Any) -> None:
    ids = [make_customer(name=f"客户{n}").id for n in range(3)]
    with write_transaction(db):
        n = grant_many(
            db,
            ids + ids[:1],
            [Purpose.marketing_sms, Purpose.marketing_email],
            source="import",
            at=T0,
        )
    assert n == 6
    assert _allowed(db, Purpose.marketing_sms, ids) == set(ids)
    assert _allowed(db, Purpose.marketing_email, ids) == set(ids)
    _record(db, ids[0], Purpose.marketing_sms, False)
    assert _allowed(db, Purpose.marketing_sms, ids) == set(ids[1:])
    # The bulk grant is one audit entry naming the batch.
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "consent.granted_in_bulk"))
    assert entry is not None
    assert entry.after == {"customers": 3, "purposes": ["marketing_sms", "marketing_email"]}


def test_contact_points(db: Session, make_customer: Any) -> None:
    person = make_customer(
        name="张三丰",
        phones=["0571-88881234", "13912345678", "13700001111"],
        email="Zhang@Example.cn",
        language="en",
    )
    firm = make_customer(
        name="杭州某某物流有限公司",
        kind="enterprise",
        phones=["0571-88880000"],
        contacts=[
            {"name": "前台", "phone": "0571-88880001"},
            {"name": "王经理", "phone": "13800002222", "email": "wang@firm.cn", "is_primary": True},
        ],
    )
    bare = make_customer(name="无联系方式")
    points = contact_points(db, [person.id, firm.id, bare.id, 999999])
    assert points == {
        person.id: ContactPoints("张三丰", "+8613912345678", "Zhang@example.cn", "en"),
        firm.id: ContactPoints("杭州某某物流有限公司", "+8613800002222", "wang@firm.cn", "zh_CN"),
        bare.id: ContactPoints("无联系方式", None, None, "zh_CN"),
    }
