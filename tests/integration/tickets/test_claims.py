"""Compensation claims: the published standard (insured / uninsured with the fee multiple
and a cap), approval limits by role, decisions and payout, through the API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.core.errors import Conflict, ValidationFailed
from guanxi.shipments.models import Shipment
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.tickets import claims
from guanxi.tickets.enums import ClaimReason


def _shipment(db: Session, agent: Any, customer: Any, no: str, fee: int, insured: int) -> Any:
    return create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no=no,
            customer_id=customer.id,
            fee_fen=fee,
            insured_value_fen=insured,
            weight_g=800,
            receiver_name="收件人",
            receiver_phone="13700000000",
            dest_province="浙江省",
            dest_city="杭州市",
        ),
        actor=agent,
    )


def test_the_published_standard(db: Session, make_user: Any, make_customer: Any) -> None:
    agent, customer = make_user("agent"), make_customer(name="理赔客户")
    _shipment(db, agent, customer, "SFINSURED01", fee=2300, insured=500_000)
    _shipment(db, agent, customer, "SFPLAIN0001", fee=1200, insured=0)
    insured = claims.file_claim(
        db, waybill_no="sfinsured01", reason=ClaimReason.loss, requested_fen=800_000, actor=agent
    )
    assert (insured.insured, insured.standard_fen) == (True, 500_000)  # up to the declared value
    plain = claims.file_claim(
        db, waybill_no="SFPLAIN0001", reason=ClaimReason.damage, requested_fen=50_000, actor=agent
    )
    assert (plain.insured, plain.standard_fen) == (False, 3600)  # three times the fee
    small = claims.file_claim(
        db, waybill_no="SFPLAIN0001", reason=ClaimReason.damage, requested_fen=1000, actor=agent
    )
    assert small.standard_fen == 1000  # never more than the loss
    capped = claims.ClaimRules(uninsured_cap_fen=3000)
    row = db.scalar(select(Shipment).where(Shipment.waybill_no == "SFPLAIN0001"))
    assert row is not None
    assert claims.standard_amount(row, 50_000, capped) == 3000
    with pytest.raises(ValidationFailed) as unknown:
        claims.file_claim(
            db, waybill_no="SFNONE00001", reason=ClaimReason.loss, requested_fen=100, actor=agent
        )
    assert unknown.value.errors[0].loc == ("waybill_no",)


def test_approval_limits_and_payout(db: Session, make_user: Any, make_customer: Any) -> None:
    agent, manager, admin = make_user("agent"), make_user("manager"), make_user("admin")
    customer = make_customer(name="大额理赔")
    _shipment(db, agent, customer, "SFBIG000001", fee=5000, insured=2_000_000)
    claim = claims.file_claim(
        db, waybill_no="SFBIG000001", reason=ClaimReason.loss, requested_fen=900_000, actor=agent
    )
    # 9,000 元: above the agent's 200 元 and the manager's 5,000 元.
    for who in (agent, manager):
        with pytest.raises(ValidationFailed) as over:
            claims.decide(db, claim_id=claim.id, approve=True, actor=who)
        assert over.value.errors[0].code == "claim_above_limit"
    with pytest.raises(ValidationFailed) as above:
        claims.decide(db, claim_id=claim.id, approve=True, actor=admin, amount_fen=900_001)
    assert above.value.errors[0].code == "claim_above_standard"
    with pytest.raises(Conflict) as unpaid:
        claims.mark_paid(db, claim_id=claim.id, payout_ref="BANK-1", actor=admin)
    assert unpaid.value.message == "claim_not_approved"
    claim = claims.decide(db, claim_id=claim.id, approve=True, actor=admin, note="核实丢失")
    assert (claim.status, claim.approved_fen) == ("approved", 900_000)
    with pytest.raises(Conflict):
        claims.decide(db, claim_id=claim.id, approve=False, actor=admin)
    claim = claims.mark_paid(db, claim_id=claim.id, payout_ref="BANK-20261125-01", actor=manager)
    assert claim.status == "paid"
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.target_type == "claim", AuditEntry.target_id == str(claim.id))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["claim.submitted", "claim.approved", "claim.paid"]


def test_claims_api(client: Any, login: Any, make_customer: Any, db: Session) -> None:
    agent, headers = login("agent")
    customer = make_customer(name="接口理赔")
    _shipment(db, agent, customer, "SFAPI000001", fee=1500, insured=0)
    resp = client.post(
        "/api/v1/claims",
        json={"waybill_no": "SFAPI000001", "reason": "shortage", "requested_fen": 10_000},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    claim = resp.json()
    assert (claim["standard_fen"], claim["status"]) == (4500, "submitted")
    listed = client.get("/api/v1/claims", headers=headers).json()
    assert [c["id"] for c in listed] == [claim["id"]]
    # The agent's limit (200 元) covers a 45 元 goodwill payment.
    decided = client.post(
        f"/api/v1/claims/{claim['id']}/decision", json={"approve": True}, headers=headers
    ).json()
    assert (decided["status"], decided["approved_fen"]) == ("approved", 4500)
    _, sales = login("sales")
    assert client.get("/api/v1/claims", headers=sales).status_code == 403
    bad = client.post(
        "/api/v1/claims",
        json={"waybill_no": "SFAPI000001", "reason": "fire", "requested_fen": 0},
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"reason", "requested_fen"}


def test_claim_cost_by_reason(client: Any, login: Any, make_customer: Any, db: Session) -> None:
    manager, headers = login("manager")
    customer = make_customer(name="赔付统计")
    for no in ("SFCOST00001", "SFCOST00002", "SFCOST00003"):
        _shipment(db, manager, customer, no, fee=1000, insured=50_000)
    lost = claims.file_claim(
        db, waybill_no="SFCOST00001", reason=ClaimReason.loss, requested_fen=40_000, actor=manager
    )
    broken = claims.file_claim(
        db, waybill_no="SFCOST00002", reason=ClaimReason.damage, requested_fen=8_000, actor=manager
    )
    claims.file_claim(
        db, waybill_no="SFCOST00003", reason=ClaimReason.damage, requested_fen=5_000, actor=manager
    )
    claims.decide(db, claim_id=lost.id, approve=True, amount_fen=30_000, actor=manager)
    claims.mark_paid(db, claim_id=lost.id, payout_ref="BANK-1", actor=manager)
    claims.decide(db, claim_id=broken.id, approve=True, actor=manager)
    got = client.get(
        "/api/v1/claims/cost",
        params={"since": "2000-01-01T00:00:00+08:00", "until": "2100-01-01T00:00:00+08:00"},
        headers=headers,
    )
    assert got.status_code == 200
    assert got.json() == [
        {
            "reason": "damage",
            "claims": 2,
            "requested_fen": 13_000,
            "approved_fen": 8_000,
            "paid_fen": 0,
        },
        {
            "reason": "loss",
            "claims": 1,
            "requested_fen": 40_000,
            "approved_fen": 30_000,
            "paid_fen": 30_000,
        },
    ]
    backwards = client.get(
        "/api/v1/claims/cost",
        params={"since": "2026-02-01T00:00:00+08:00", "until": "2026-01-01T00:00:00+08:00"},
        headers=headers,
    )
    assert backwards.status_code == 422
    assert [e["field"] for e in backwards.json()["errors"]] == ["until"]
