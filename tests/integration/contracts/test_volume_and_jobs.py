"""Volume against commitment (prorated months, local days, the report's order, CSV) and the
daily job (expiry, renewal, auto-renewal, reminders once per contract and threshold)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from guanxi.contracts import renewals, service, volume
from guanxi.contracts.models import Contract, ContractAmendment, ContractReminder
from guanxi.contracts.schemas import ContractPolicy, ContractRenew, ContractUpdate
from guanxi.notify.models import Notification, OutboxMessage
from guanxi.shipments.models import Shipment

TZ = "Asia/Shanghai"
_serial = itertools.count(1)


def ship(
    db: Session, customer_id: int, at: datetime, fee_fen: int, status: str = "delivered"
) -> None:
    db.add(
        Shipment(
            waybill_no=f"CT{next(_serial):010d}",
            customer_id=customer_id,
            status=status,
            fee_fen=fee_fen,
            created_at=at,
        )
    )
    db.commit()


def test_a_month_against_the_commitment_prorated_to_days_in_force(
    db: Session, make_contract: Any, firm: Any, manager: Any
) -> None:
    # In force from Nov 11: 20 of November's 30 days.
    contract = make_contract(
        firm,
        date(2026, 11, 11),
        date(2027, 11, 10),
        commit_shipments=300,
        commit_revenue_fen=3_000_000,
    )
    # 23:30 on Nov 10 in Shanghai is before the contract; 00:10 on Nov 11 is inside.
    ship(db, firm.id, datetime(2026, 11, 10, 15, 30, tzinfo=UTC), 99_999)
    ship(db, firm.id, datetime(2026, 11, 10, 16, 10, tzinfo=UTC), 1_000_000)
    ship(db, firm.id, datetime(2026, 11, 30, 15, 59, tzinfo=UTC), 500_000)  # Nov 30 23:59
    ship(db, firm.id, datetime(2026, 11, 30, 16, 0, tzinfo=UTC), 77_777)  # Dec 1 00:00
    (row,) = volume.volumes(
        db, [contract], month=date(2026, 11, 1), today=date(2026, 12, 5), timezone=TZ
    )
    assert (row.days_in_force, row.days_in_month) == (20, 30)
    assert (row.shipments, row.revenue_fen) == (2, 1_500_000)
    assert (row.due_shipments, row.due_revenue_fen) == (200, 2_000_000)
    assert (row.shipments_pct, row.revenue_pct) == (1.0, 75.0)
    assert row.below is True


def test_the_current_month_counts_up_to_today(db: Session, make_contract: Any, firm: Any) -> None:
    contract = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31), commit_shipments=31)
    for day in (1, 2, 3):
        ship(db, firm.id, datetime(2026, 12, day, 4, 0, tzinfo=UTC), 1000)
    (row,) = volume.volumes(
        db, [contract], month=date(2026, 12, 1), today=date(2026, 12, 3), timezone=TZ
    )
    assert (row.days_in_force, row.due_shipments, row.shipments_pct, row.below) == (
        3,
        3,
        100.0,
        False,
    )


def test_the_report_puts_below_commitment_first_and_exports_csv(
    db: Session, make_customer: Any, make_contract: Any, seller: Any, manager: Any
) -> None:
    def firm(name: str) -> Any:
        return make_customer(name, kind="enterprise", owner_id=seller.id)

    low, lower, met, none, draft, later = (
        firm(n) for n in ("=低量公司", "更低公司", "达标公司", "无承诺公司", "草稿公司", "未来公司")
    )
    c_low = make_contract(low, date(2026, 1, 1), date(2026, 12, 31), commit_shipments=10)
    c_lower = make_contract(lower, date(2026, 1, 1), date(2026, 12, 31), commit_revenue_fen=100_000)
    c_met = make_contract(met, date(2026, 1, 1), date(2026, 12, 31), commit_shipments=2)
    c_none = make_contract(none, date(2026, 1, 1), date(2026, 12, 31))
    make_contract(draft, date(2026, 1, 1), date(2026, 12, 31), status="draft", commit_shipments=1)
    make_contract(later, date(2026, 12, 1), date(2027, 11, 30), commit_shipments=1)
    at = datetime(2026, 11, 5, 3, 0, tzinfo=UTC)
    for _ in range(5):
        ship(db, low.id, at, 1000)
    ship(db, lower.id, at, 20_000)
    ship(db, met.id, at, 1000)
    ship(db, met.id, at, 1000)
    ship(db, met.id, at, 1000, status="cancelled")
    rows = volume.month_report(
        db, viewer=manager, month=date(2026, 11, 1), today=date(2026, 12, 1), timezone=TZ
    )
    assert [(r.contract_id, r.shipments_pct, r.revenue_pct, r.below) for r in rows] == [
        (c_lower.id, None, 20.0, True),
        (c_low.id, 50.0, None, True),
        # The cancelled shipment is no volume: 2 of a commitment of 2.
        (c_met.id, 100.0, None, False),
        (c_none.id, None, None, False),
    ]
    text = "".join(volume.export_csv(rows))
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0] == ",".join(volume.EXPORT_HEADER)
    assert (
        lines[2]
        == f"{c_low.number},{low.id},'=低量公司,李经理,active,2026-11,30,5,10,50.0,50.00,,,yes"
    )
    # The customers' owner sees the same contracts (drafts and later ones never show).
    assert (
        len(
            volume.month_report(
                db, viewer=seller, month=date(2026, 11, 1), today=date(2026, 12, 1), timezone=TZ
            )
        )
        == 4
    )


def test_contract_months_newest_first_within_the_period(
    db: Session, make_contract: Any, firm: Any
) -> None:
    contract = make_contract(firm, date(2026, 9, 15), date(2027, 9, 14), commit_shipments=30)
    ship(db, firm.id, datetime(2026, 10, 1, 1, 0, tzinfo=UTC), 500)
    rows = volume.contract_months(db, contract, today=date(2026, 11, 20), timezone=TZ)
    assert [(r.month, r.days_in_force, r.shipments, r.due_shipments) for r in rows] == [
        ("2026-11", 20, 0, 20),
        ("2026-10", 31, 1, 30),
        ("2026-09", 16, 0, 16),
    ]


# --------------------------------------------------------------------------- the daily job


def _notes(db: Session) -> list[tuple[int, str, str]]:
    return [
        (n.user_id, n.kind, n.key)
        for n in db.scalars(
            select(Notification)
            .where(Notification.kind == "contract_renewal")
            .order_by(Notification.id)
        )
    ]


def test_reminders_once_per_contract_and_threshold(
    db: Session, make_contract: Any, firm: Any, seller: Any, manager: Any
) -> None:
    seller.email = "seller@example.com"
    db.commit()
    own = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31), owner=seller)
    other = make_contract(
        firm, date(2027, 1, 1), date(2027, 1, 31), owner=seller, reminder_days=60, status="draft"
    )
    # 32 days before the end: nothing yet (policy default 30).
    assert renewals.run_daily(db, today=date(2026, 11, 29), language="zh_CN").reminded == 0
    assert renewals.run_daily(db, today=date(2026, 12, 1), language="zh_CN").reminded == 1
    assert renewals.run_daily(db, today=date(2026, 12, 2), language="zh_CN").reminded == 0
    key = f"contract_renewal:{own.id}:2026-12-31:30"
    assert _notes(db) == [(seller.id, "contract_renewal", key)]
    note = db.scalars(select(Notification).where(Notification.kind == "contract_renewal")).one()
    assert note.subject == f"合同 {own.number}（杭州云栖电子商务有限公司）将于 2026-12-31 到期"
    assert note.link == f"/contracts/{own.id}"
    (mail,) = db.scalars(
        select(OutboxMessage).where(OutboxMessage.key.like("contract_renewal:%"))
    ).all()
    assert (mail.key, mail.channel) == (f"{key}:{seller.id}", "email")
    # An amended end date earns a new reminder; a renewal drafted stops them.
    data = {name: getattr(own, name) for name in service.TERM_FIELDS}
    data.update(end_date=date(2026, 12, 20), reason="提前结束")
    own = service.update_contract(
        db,
        contract_id=own.id,
        contract_in=ContractUpdate(version=own.version, **data),
        actor=seller,
    )
    assert renewals.run_daily(db, today=date(2026, 12, 2), language="zh_CN").reminded == 1
    assert db.scalar(select(func.count(ContractReminder.id))) == 2
    service.save_policy(db, policy_in=ContractPolicy(reminder_days=10), actor=manager)
    assert other.status == "draft"
    assert renewals.run_daily(db, today=date(2026, 12, 12), language="zh_CN").reminded == 1
    service.renew_contract(db, contract_id=own.id, renew_in=ContractRenew(), actor=seller)
    db.execute(delete(ContractReminder))
    db.commit()
    assert renewals.run_daily(db, today=date(2026, 12, 13), language="zh_CN").reminded == 0


def test_expiry_renewal_and_auto_renewal(
    db: Session, make_customer: Any, make_contract: Any, seller: Any, manager: Any
) -> None:
    def firm(name: str) -> Any:
        return make_customer(name, kind="enterprise", owner_id=seller.id)

    a, b, c, d = firm("甲"), firm("乙"), firm("丙"), firm("丁")
    plain = make_contract(a, date(2026, 1, 1), date(2026, 11, 30))
    with_renewal = make_contract(b, date(2026, 1, 1), date(2026, 11, 30))
    renewal = service.renew_contract(
        db, contract_id=with_renewal.id, renew_in=ContractRenew(), actor=manager
    )
    service.activate_contract(db, contract_id=renewal.id, version=renewal.version, actor=manager)
    auto = make_contract(c, date(2025, 12, 1), date(2026, 11, 30), auto_renew=True, discount_bp=800)
    not_yet = make_contract(d, date(2026, 1, 1), date(2026, 12, 1))

    outcome = renewals.run_daily(db, today=date(2026, 12, 1), language="zh_CN")
    # The one ending today is still active, and its owner is reminded.
    assert outcome.figures() == {"expired": 1, "renewed": 1, "auto_renewed": 1, "reminded": 1}
    for row in (plain, with_renewal, auto, not_yet):
        db.refresh(row)
    assert (plain.status, plain.ended_on) == ("expired", date(2026, 11, 30))
    assert (with_renewal.status, with_renewal.ended_on) == ("renewed", date(2026, 11, 30))
    assert (auto.status, not_yet.status) == ("renewed", "active")
    new = db.scalars(select(Contract).where(Contract.renewal_of_id == auto.id)).one()
    assert (new.status, new.start_date, new.end_date, new.discount_bp, new.auto_renew) == (
        "active",
        date(2026, 12, 1),
        date(2027, 11, 30),
        800,
        True,
    )
    (amendment,) = db.scalars(
        select(ContractAmendment).where(ContractAmendment.contract_id == new.id)
    ).all()
    assert amendment.reason == f"{auto.number} 到期自动续签"
    assert amendment.actor_label == "contracts"
    # Run again: nothing more to do.
    again = renewals.run_daily(db, today=date(2026, 12, 1), language="zh_CN")
    assert again.figures() == {"expired": 0, "renewed": 0, "auto_renewed": 0, "reminded": 0}
    # The pool's question sees the expired customer only.
    assert service.ended_contract_customers(db, ended_before=date(2026, 12, 1)) == [
        (a.id, plain.id)
    ]
