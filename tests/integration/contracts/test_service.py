"""Contract lifecycle in the service: numbering, drafts, activation, amendments with their
history, termination, renewal; and ``ended_contract_customers`` (the pool's question)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.contracts import service
from guanxi.contracts.models import Contract, ContractAmendment
from guanxi.contracts.schemas import (
    ContractCreate,
    ContractRenew,
    ContractTerminate,
    ContractUpdate,
)
from guanxi.core import clock
from guanxi.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

NOV = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _update(contract: Contract, **changes: Any) -> ContractUpdate:
    data = {name: getattr(contract, name) for name in service.TERM_FIELDS}
    data.update(changes)
    return ContractUpdate(version=contract.version, **data)


def _locs(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(e.loc, e.code) for e in exc.value.errors]


def _amendment_count(db: Session) -> int:
    return db.scalar(select(func.count(ContractAmendment.id))) or 0


# --------------------------------------------------------------------------- numbers, drafts


def test_numbers_run_per_local_month(db: Session, make_contract: Any, firm: Any) -> None:
    with clock.frozen(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)):  # 23:59 Nov 30 local
        first = make_contract(firm, date(2026, 12, 1), date(2027, 11, 30), status="draft")
        second = make_contract(firm, date(2027, 12, 1), date(2028, 11, 30), status="draft")
    with clock.frozen(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)):  # 00:00 Dec 1 local
        third = make_contract(firm, date(2028, 12, 1), date(2029, 11, 30), status="draft")
    assert [first.number, second.number, third.number] == [
        "CT-202611-0001",
        "CT-202611-0002",
        "CT-202612-0001",
    ]
    assert first.status == "draft"
    assert first.owner_id is not None


def test_create_refuses_individuals_bad_dates_and_unknown_customers(
    db: Session, make_customer: Any, seller: Any, firm: Any
) -> None:
    person = make_customer("张三", kind="individual", owner_id=seller.id)
    with pytest.raises(ValidationFailed) as exc:
        service.create_contract(
            db,
            contract_in=ContractCreate(
                customer_id=person.id,
                title="个人协议",
                start_date=date(2026, 12, 1),
                end_date=date(2026, 12, 1),
            ),
            actor=seller,
        )
    assert _locs(exc) == [
        (("customer_id",), "contract_customer_kind"),
        (("end_date",), "contract_dates"),
    ]
    with pytest.raises(ValidationFailed) as exc:
        service.create_contract(
            db,
            contract_in=ContractCreate(
                customer_id=999_999,
                title="x",
                start_date=date(2026, 12, 1),
                end_date=date(2027, 1, 1),
            ),
            actor=seller,
        )
    assert _locs(exc) == [(("customer_id",), "customer_unknown")]
    assert db.scalar(select(func.count(Contract.id))) == 0


def test_a_seller_cannot_contract_someone_elses_customer_or_give_contracts_away(
    db: Session, make_user: Any, make_customer: Any, seller: Any, manager: Any, firm: Any
) -> None:
    other = make_user("sales")
    theirs = make_customer("宁波港通物流有限公司", kind="enterprise", owner_id=other.id)
    terms = {"title": "协议", "start_date": date(2026, 12, 1), "end_date": date(2027, 11, 30)}
    with pytest.raises(ValidationFailed) as exc:
        service.create_contract(
            db, contract_in=ContractCreate(customer_id=theirs.id, **terms), actor=seller
        )
    assert _locs(exc) == [(("customer_id",), "customer_unknown")]
    with pytest.raises(PermissionDenied):
        service.create_contract(
            db,
            contract_in=ContractCreate(customer_id=firm.id, owner_id=other.id, **terms),
            actor=seller,
        )
    # A manager may name any salesperson, but not someone outside the pipeline.
    agent = make_user("agent")
    with pytest.raises(ValidationFailed) as exc:
        service.create_contract(
            db,
            contract_in=ContractCreate(customer_id=firm.id, owner_id=agent.id, **terms),
            actor=manager,
        )
    assert _locs(exc) == [(("owner_id",), "contract_owner_sales")]
    assert db.scalar(select(func.count(Contract.id))) == 0
    mine = service.create_contract(
        db, contract_in=ContractCreate(customer_id=firm.id, **terms), actor=seller
    )
    assert mine.owner_id == seller.id


def test_drafts_change_without_history_active_contracts_by_amendment(
    db: Session, make_contract: Any, firm: Any, seller: Any
) -> None:
    draft = make_contract(firm, date(2026, 12, 1), date(2027, 11, 30), status="draft", owner=seller)
    draft = service.update_contract(
        db, contract_id=draft.id, contract_in=_update(draft, discount_bp=1500), actor=seller
    )
    assert (draft.discount_bp, draft.version) == (1500, 2)
    assert _amendment_count(db) == 0

    active = service.activate_contract(db, contract_id=draft.id, version=2, actor=seller)
    assert (active.status, active.version) == ("active", 3)
    with pytest.raises(ValidationFailed) as exc:
        service.update_contract(
            db,
            contract_id=active.id,
            contract_in=_update(active, discount_bp=1800, commit_shipments=3000),
            actor=seller,
        )
    assert _locs(exc) == [(("reason",), "contract_reason_required")]
    assert _amendment_count(db) == 0

    amended = service.update_contract(
        db,
        contract_id=active.id,
        contract_in=_update(
            active,
            discount_bp=1800,
            commit_shipments=3000,
            end_date=date(2027, 12, 31),
            reason="客户承诺月发3000票，折扣上调",
        ),
        actor=seller,
    )
    assert (amended.discount_bp, amended.commit_shipments, amended.version) == (1800, 3000, 4)
    history = service.amendments(db, contract_id=active.id)
    assert len(history) == 1
    assert history[0].changes == {
        "commit_shipments": [None, 3000],
        "discount_bp": [1500, 1800],
        "end_date": ["2027-11-30", "2027-12-31"],
    }
    assert history[0].reason == "客户承诺月发3000票，折扣上调"
    assert history[0].actor_name == "王销售"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "contract.amended")).one()
    assert entry.before == {"commit_shipments": None, "discount_bp": 1500, "end_date": "2027-11-30"}
    assert entry.after == {"commit_shipments": 3000, "discount_bp": 1800, "end_date": "2027-12-31"}

    # The same terms again change nothing and add no history.
    same = service.update_contract(
        db, contract_id=active.id, contract_in=_update(amended, reason="无变化"), actor=seller
    )
    assert same.version == 4
    assert _amendment_count(db) == 1
    # A stale version is refused.
    with pytest.raises(Conflict):
        service.update_contract(
            db,
            contract_id=active.id,
            contract_in=_update(active, discount_bp=0, reason="x").model_copy(
                update={"version": 3}
            ),
            actor=seller,
        )


def test_others_contracts_need_sales_manage(
    db: Session, make_user: Any, make_contract: Any, firm: Any, seller: Any, manager: Any
) -> None:
    contract = make_contract(firm, date(2026, 12, 1), date(2027, 11, 30), owner=manager)
    # The seller owns the customer, so sees the contract, but it is the manager's.
    assert service.get_contract(db, contract_id=contract.id, viewer=seller).id == contract.id
    with pytest.raises(PermissionDenied):
        service.update_contract(
            db,
            contract_id=contract.id,
            contract_in=_update(contract, discount_bp=100, reason="x"),
            actor=seller,
        )
    stranger = make_user("sales")
    with pytest.raises(NotFound):
        service.get_contract(db, contract_id=contract.id, viewer=stranger)
    assert db.get(Contract, contract.id).discount_bp == 0  # type: ignore[union-attr]
    assert _amendment_count(db) == 0


def test_lists_show_the_contracts_a_viewer_can_open(
    db: Session, make_user: Any, make_customer: Any, make_contract: Any, firm: Any, seller: Any
) -> None:
    # A customer in the pool (no owner) is visible to every salesperson: so are its
    # contracts, in the list as when opened; one owned by someone else is in neither.
    pooled = make_customer("无锡新区物流设备有限公司", kind="enterprise", owner_id=None)
    in_pool = make_contract(pooled, date(2026, 1, 1), date(2026, 12, 31))
    owned = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31))
    stranger = make_user("sales")
    assert service.get_contract(db, contract_id=in_pool.id, viewer=stranger).id == in_pool.id
    rows, total = service.list_contracts(db, viewer=stranger)
    assert ([c.id for c in rows], total) == ([in_pool.id], 1)
    rows, total = service.list_contracts(db, viewer=seller)
    assert ([c.id for c in rows], total) == ([owned.id, in_pool.id], 2)


def test_one_active_contract_per_period(
    db: Session, make_contract: Any, firm: Any, manager: Any
) -> None:
    first = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31))
    second = make_contract(firm, date(2026, 12, 1), date(2027, 11, 30), status="draft")
    with pytest.raises(ValidationFailed) as exc:
        service.activate_contract(db, contract_id=second.id, version=second.version, actor=manager)
    assert _locs(exc) == [(("start_date",), "contract_overlap")]
    assert exc.value.errors[0].params == {"number": first.number}
    assert db.get(Contract, second.id).status == "draft"  # type: ignore[union-attr]


def test_terminate_records_the_reason_and_the_effective_day(
    db: Session, make_contract: Any, firm: Any, manager: Any
) -> None:
    contract = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31))
    with pytest.raises(ValidationFailed) as exc:
        service.terminate_contract(
            db,
            contract_id=contract.id,
            terminate_in=ContractTerminate(
                ended_on=date(2027, 1, 5), reason="x", version=contract.version
            ),
            actor=manager,
        )
    assert _locs(exc) == [(("ended_on",), "contract_terminate_date")]
    with clock.frozen(NOV):
        ended = service.terminate_contract(
            db,
            contract_id=contract.id,
            terminate_in=ContractTerminate(reason="客户转投他家", version=contract.version),
            actor=manager,
        )
    assert (ended.status, ended.ended_on) == ("terminated", date(2026, 11, 20))
    (row,) = db.scalars(select(ContractAmendment)).all()
    assert json.loads(row.changes) == {
        "ended_on": [None, "2026-11-20"],
        "status": ["active", "terminated"],
    }
    assert row.reason == "客户转投他家"
    with pytest.raises(Conflict):
        service.terminate_contract(
            db,
            contract_id=contract.id,
            terminate_in=ContractTerminate(reason="again", version=ended.version),
            actor=manager,
        )


def test_renewal_drafts_the_next_period_and_marks_the_expired_one_renewed(
    db: Session, make_contract: Any, firm: Any, manager: Any
) -> None:
    old = make_contract(
        firm, date(2026, 1, 1), date(2026, 12, 31), discount_bp=1200, commit_shipments=500
    )
    renewal = service.renew_contract(
        db, contract_id=old.id, renew_in=ContractRenew(), actor=manager
    )
    assert (renewal.status, renewal.start_date, renewal.end_date) == (
        "draft",
        date(2027, 1, 1),
        date(2027, 12, 31),
    )
    assert (renewal.discount_bp, renewal.commit_shipments, renewal.renewal_of_id) == (
        1200,
        500,
        old.id,
    )
    with pytest.raises(Conflict) as exc:
        service.renew_contract(db, contract_id=old.id, renew_in=ContractRenew(), actor=manager)
    assert exc.value.message == "contract_renewed_already"
    # The old one expired before the renewal was signed: activating it marks it renewed.
    old.status, old.ended_on = "expired", old.end_date
    db.commit()
    service.activate_contract(db, contract_id=renewal.id, version=renewal.version, actor=manager)
    db.refresh(old)
    assert (old.status, old.ended_on) == ("renewed", date(2026, 12, 31))
    (read,) = service.to_reads(db, [old])
    assert read.renewed_by_id == renewal.id


def test_renewal_periods_follow_whole_months_or_days() -> None:
    def period(start: date, end: date) -> tuple[date, date]:
        return service.renewal_period(Contract(start_date=start, end_date=end))

    assert period(date(2026, 1, 1), date(2026, 6, 30)) == (date(2026, 7, 1), date(2026, 12, 31))
    assert period(date(2026, 3, 15), date(2027, 3, 14)) == (date(2027, 3, 15), date(2028, 3, 14))
    assert period(date(2026, 1, 10), date(2026, 1, 29)) == (date(2026, 1, 30), date(2026, 2, 18))


# --------------------------------------------------------------------------- the pool's question


def test_ended_contract_customers(
    db: Session, make_customer: Any, make_contract: Any, seller: Any
) -> None:
    def firm(name: str) -> Any:
        return make_customer(name, kind="enterprise", owner_id=seller.id)

    expired = firm("甲公司")
    terminated = firm("乙公司")
    renewed_and_active = firm("丙公司")
    recent = firm("丁公司")
    still_active = firm("戊公司")
    draft_only = firm("己公司")
    expired_then_draft = firm("庚公司")
    renewed_then_expired = firm("辛公司")

    a = make_contract(expired, date(2025, 1, 1), date(2025, 12, 31), status="expired")
    b = make_contract(
        terminated,
        date(2026, 1, 1),
        date(2026, 12, 31),
        status="terminated",
        ended_on=date(2026, 3, 31),
    )
    make_contract(renewed_and_active, date(2025, 1, 1), date(2025, 12, 31), status="renewed")
    make_contract(renewed_and_active, date(2026, 1, 1), date(2026, 12, 31))
    e = make_contract(recent, date(2025, 6, 1), date(2026, 10, 31), status="expired")
    make_contract(still_active, date(2026, 1, 1), date(2026, 12, 31))
    make_contract(draft_only, date(2026, 1, 1), date(2026, 12, 31), status="draft")
    c = make_contract(expired_then_draft, date(2025, 1, 1), date(2025, 6, 30), status="expired")
    make_contract(expired_then_draft, date(2026, 12, 1), date(2027, 11, 30), status="draft")
    make_contract(renewed_then_expired, date(2024, 1, 1), date(2024, 12, 31), status="renewed")
    d = make_contract(renewed_then_expired, date(2025, 1, 1), date(2025, 12, 31), status="expired")

    found = service.ended_contract_customers(db, ended_before=date(2026, 10, 1))
    assert found == sorted(
        [
            (expired.id, a.id),
            (terminated.id, b.id),
            (expired_then_draft.id, c.id),
            (renewed_then_expired.id, d.id),
        ]
    )
    # The termination's effective day counts, not the planned end.
    assert service.ended_contract_customers(db, ended_before=date(2026, 3, 31)) == sorted(
        [(expired.id, a.id), (expired_then_draft.id, c.id), (renewed_then_expired.id, d.id)]
    )
    # Ended on Oct 31: before Nov 1, not before Oct 31.
    assert service.ended_contract_customers(db, ended_before=date(2026, 11, 1)) == sorted(
        [*found, (recent.id, e.id)]
    )
    assert service.ended_contract_customers(db, ended_before=date(2026, 10, 31)) == found


def test_a_merge_takes_the_contracts_along_and_undo_brings_them_back(
    db: Session, make_customer: Any, make_contract: Any, seller: Any, firm: Any
) -> None:
    from guanxi.audit.service import Actor
    from guanxi.dedupe.service import merge_customers, undo_merge
    from guanxi.domains import load

    load()
    twin = make_customer("杭州云栖电子商务有限公司（分）", kind="enterprise", owner_id=seller.id)
    contract = make_contract(twin, date(2026, 1, 1), date(2026, 12, 31))
    merge = merge_customers(
        db, survivor_id=firm.id, duplicate_id=twin.id, fields=None, actor=Actor.system("test")
    )
    db.refresh(contract)
    assert contract.customer_id == firm.id
    undo_merge(db, merge_id=merge.id, actor=Actor.system("test"))
    db.refresh(contract)
    assert contract.customer_id == twin.id
