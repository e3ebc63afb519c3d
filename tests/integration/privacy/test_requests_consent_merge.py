"""The consent ledger follows a merge of duplicates: the absorbed record's evidence moves
to the survivor and the stricter state wins (a withdrawal beats a grant); an undo puts
both back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.customers.consent import Purpose, consents_of, is_allowed, record_consent
from guanxi.customers.models import CustomerConsentEvent
from guanxi.dedupe import service

BOT = Actor.system("test")


def _consent(db: Session, customer_id: int, purpose: Purpose, granted: bool) -> None:
    record_consent(
        db,
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        source="agent",
        actor=BOT,
        notice_version="2026-01",
    )


def _states(db: Session, customer_id: int) -> dict[str, bool | None]:
    return {s.purpose.value: s.granted for s in consents_of(db, customer_id)}


def _events(db: Session, customer_id: int) -> list[tuple[str, bool]]:
    return [
        (e.purpose, e.granted)
        for e in db.scalars(
            select(CustomerConsentEvent)
            .where(CustomerConsentEvent.customer_id == customer_id)
            .order_by(CustomerConsentEvent.id)
        )
    ]


def test_merge_carries_consents_withdrawal_wins_and_undo_restores(
    db: Session, make_customer: Any
) -> None:
    survivor, duplicate = make_customer("李四"), make_customer("李四")
    _consent(db, survivor.id, Purpose.marketing_sms, True)
    _consent(db, survivor.id, Purpose.survey, True)
    _consent(db, duplicate.id, Purpose.marketing_sms, False)
    _consent(db, duplicate.id, Purpose.third_party, True)
    _consent(db, duplicate.id, Purpose.survey, False)
    db.commit()
    assert is_allowed(db, survivor.id, Purpose.marketing_sms) is True

    merge = service.merge_customers(
        db, survivor_id=survivor.id, duplicate_id=duplicate.id, fields=None, actor=BOT
    )

    assert _states(db, survivor.id) == {
        "marketing_sms": False,
        "marketing_email": None,
        "survey": False,
        "third_party": True,
        "cross_border": None,
    }
    assert is_allowed(db, survivor.id, Purpose.marketing_sms) is False
    assert _events(db, survivor.id) == [
        ("marketing_sms", True),
        ("survey", True),
        ("marketing_sms", False),
        ("third_party", True),
        ("survey", False),
    ]
    assert _events(db, duplicate.id) == []

    service.undo_merge(db, merge_id=merge.id, actor=BOT)

    assert _states(db, survivor.id) == {
        "marketing_sms": True,
        "marketing_email": None,
        "survey": True,
        "third_party": None,
        "cross_border": None,
    }
    assert _events(db, survivor.id) == [("marketing_sms", True), ("survey", True)]
    assert _events(db, duplicate.id) == [
        ("marketing_sms", False),
        ("third_party", True),
        ("survey", False),
    ]


def test_a_survivors_withdrawal_stands_against_the_duplicates_grant(
    db: Session, make_customer: Any
) -> None:
    survivor, duplicate = make_customer("王五"), make_customer("王五")
    _consent(db, survivor.id, Purpose.marketing_email, False)
    _consent(db, duplicate.id, Purpose.marketing_email, True)
    db.commit()

    merge = service.merge_customers(
        db, survivor_id=survivor.id, duplicate_id=duplicate.id, fields=None, actor=BOT
    )

    assert _states(db, survivor.id)["marketing_email"] is False
    assert merge.moved["customer_consent"] == []
    assert len(merge.moved["customer_consent_event"]) == 1


def test_undo_keeps_a_consent_recorded_after_the_merge(db: Session, make_customer: Any) -> None:
    survivor, duplicate = make_customer("赵六"), make_customer("赵六")
    _consent(db, duplicate.id, Purpose.cross_border, True)
    db.commit()
    merge = service.merge_customers(
        db, survivor_id=survivor.id, duplicate_id=duplicate.id, fields=None, actor=BOT
    )
    assert _states(db, survivor.id)["cross_border"] is True
    _consent(db, survivor.id, Purpose.cross_border, False)
    db.commit()

    service.undo_merge(db, merge_id=merge.id, actor=BOT)

    # The customer's own later withdrawal is not undone with the merge.
    assert _states(db, survivor.id)["cross_border"] is False
