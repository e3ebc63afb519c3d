"""The loyalty JSON API: who may do what (nothing changes when refused), refusals naming
the field in Chinese and English, the member view, the report and the verify action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.loyalty import accrual
from guanxi.loyalty.models import LoyaltyMember, PointsEntry

from .conftest import add_shipment

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def _member_with_points(db: Session, customer_id: int, fee_fen: int = 50_000) -> None:
    add_shipment(db, customer_id, fee_fen=fee_fen, at=clock.now() - timedelta(days=3))
    db.commit()
    accrual.accrue(db)


def _ledger_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(PointsEntry)) or 0)


def test_permissions_by_role(
    client: Any, login: Any, db: Session, make_customer: Any, make_user: Any
) -> None:
    # Another account manager's customer (salespeople see their own and the pool's).
    cid = make_customer("王小明", owner_id=make_user("sales").id).id
    _member_with_points(db, cid)  # 500 points
    _, agent = login("agent")
    _, sales = login("sales")
    _, manager = login("manager")
    _, auditor = login("auditor")
    adjust = {"points": 50, "reason": "补录积分"}
    before = _ledger_count(db)
    # Agents spend points and redeem coupons, but do not correct points or set the rules.
    assert (
        client.post(f"/api/v1/loyalty/members/{cid}/adjust", json=adjust, headers=agent).status_code
        == 403
    )
    assert client.put("/api/v1/loyalty/policy", json={}, headers=agent).status_code == 403
    assert client.post("/api/v1/loyalty/verify", headers=agent).status_code == 403
    # Auditors read only.
    assert client.get(f"/api/v1/loyalty/members/{cid}", headers=auditor).status_code == 200
    redeem = {"points": 10, "reference": "YT1"}
    assert (
        client.post(
            f"/api/v1/loyalty/members/{cid}/redeem", json=redeem, headers=auditor
        ).status_code
        == 403
    )
    # Sales see their own customers only: this one is not theirs.
    assert client.get(f"/api/v1/loyalty/members/{cid}", headers=sales).status_code == 404
    assert client.get("/api/v1/loyalty/members", headers=sales).json()["items"] == []
    assert _ledger_count(db) == before  # nothing changed by the refusals
    # Allowed ones.
    resp = client.post(f"/api/v1/loyalty/members/{cid}/redeem", json=redeem, headers=agent)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["kind"], resp.json()["points"]) == ("redeem", -10)
    resp = client.post(f"/api/v1/loyalty/members/{cid}/adjust", json=adjust, headers=manager)
    assert resp.status_code == 201, resp.text
    member = client.get(f"/api/v1/loyalty/members/{cid}", headers=manager).json()
    assert (member["balance"], member["lifetime_points"]) == (540, 550)
    assert client.get("/api/v1/loyalty/members", headers={}).status_code == 401


def test_member_view_progress_and_ledger(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    _, headers = login("manager")
    cid = make_customer("李华").id
    _member_with_points(db, cid, fee_fen=18_000)  # ¥180: 180 points, silver needs ¥300
    view = client.get(f"/api/v1/loyalty/members/{cid}", headers={**headers, **ZH}).json()
    assert (view["tier"], view["tier_name"], view["balance"]) == ("member", "普通会员", 180)
    assert view["progress"] == {
        "next_tier": "silver",
        "next_tier_name": "银卡会员",
        "spend_fen": 18_000,
        "shipments": 1,
        "spend_needed_fen": 12_000,
        "shipments_needed": 11,
        "percent": 60,
    }
    ledger = client.get(f"/api/v1/loyalty/members/{cid}/ledger", headers=headers).json()
    assert [(e["kind"], e["points"]) for e in ledger] == [("earn", 180)]
    listed = client.get("/api/v1/loyalty/members?sort=balance", headers=headers).json()
    assert [m["customer_id"] for m in listed["items"]] == [cid]
    assert client.get("/api/v1/loyalty/members/999999", headers=headers).status_code == 404


def test_refusals_name_the_field_in_both_languages(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    _, headers = login("manager")
    cid = make_customer().id
    _member_with_points(db, cid, fee_fen=10_000)  # 100 points
    over = {"points": 101, "reference": "YT2"}
    zh = client.post(f"/api/v1/loyalty/members/{cid}/redeem", json=over, headers={**headers, **ZH})
    en = client.post(f"/api/v1/loyalty/members/{cid}/redeem", json=over, headers={**headers, **EN})
    assert zh.status_code == en.status_code == 409
    assert zh.json()["errors"][0]["field"] == en.json()["errors"][0]["field"] == "points"
    assert zh.json()["errors"][0]["message"] == "积分不足：余额为 100"
    assert en.json()["errors"][0]["message"] == "Not enough points: the balance is 100"
    assert db.scalar(select(LoyaltyMember.balance).where(LoyaltyMember.customer_id == cid)) == 100

    policy = client.get("/api/v1/loyalty/policy", headers=headers).json()
    policy["tiers"][2]["min_spend_fen"] = 20_000  # gold below silver
    resp = client.put("/api/v1/loyalty/policy", json=policy, headers={**headers, **ZH})
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("tiers.2.min_spend_fen", "须高于下一级（30000）")
    ]
    policy["tiers"][2]["min_spend_fen"] = 100_000
    policy["grace_days"] = -5
    resp = client.put("/api/v1/loyalty/policy", json=policy, headers={**headers, **EN})
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("grace_days", "Must be at least 0")
    ]
    template = {
        "code": "x1",
        "name_zh": "券",
        "name_en": "C",
        "kind": "amount_off",
        "valid_days": 3,
    }
    resp = client.post("/api/v1/coupons/templates", json=template, headers={**headers, **ZH})
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("amount_off_fen", "请填写此类优惠券的优惠内容")
    ]


def test_policy_round_trip_and_coupon_flow(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    _, manager = login("manager")
    _, agent = login("agent")
    policy = client.get("/api/v1/loyalty/policy", headers=manager).json()
    policy["grace_days"] = 30
    saved = client.put("/api/v1/loyalty/policy", json=policy, headers=manager)
    assert saved.status_code == 200, saved.text
    assert saved.json()["grace_days"] == 30
    template = {
        "code": "save8", "name_zh": "立减8元", "name_en": "8 off", "kind": "amount_off",
        "amount_off_fen": 800, "valid_days": 30, "points_price": 200,
    }  # fmt: skip
    assert (
        client.post("/api/v1/coupons/templates", json=template, headers=manager).status_code == 200
    )
    ids = [make_customer(f"客户{i}").id for i in range(3)]
    issue = {"template_code": "save8", "source_key": "双十一", "customer_ids": ids}
    result = client.post("/api/v1/coupons/issue", json=issue, headers=manager).json()
    assert result["issued"] == 3
    assert client.post("/api/v1/coupons/issue", json=issue, headers=agent).status_code == 403
    code = result["coupons"][str(ids[0])]
    shown = client.get(f"/api/v1/coupons/{code.lower()}", headers=agent).json()
    assert (shown["status"], shown["usable"], shown["customer_id"]) == ("issued", True, ids[0])
    used = client.post(f"/api/v1/coupons/{code}/redeem", json={"reference": "YT88"}, headers=agent)
    assert used.status_code == 200, used.text
    again = client.post(
        f"/api/v1/coupons/{code}/redeem", json={"reference": "YT89"}, headers={**agent, **EN}
    )
    assert again.status_code == 409
    assert again.json()["errors"][0] == {
        "field": "code",
        "loc": ["code"],
        "code": "coupon_redeemed",
        "message": "This coupon has already been used (YT88)",
    }
    # Points buy a coupon; not enough points are refused.
    _member_with_points(db, ids[1], fee_fen=25_000)  # 250 points
    bought = client.post(
        f"/api/v1/loyalty/members/{ids[1]}/coupons", json={"template_code": "save8"}, headers=agent
    )
    assert bought.status_code == 201, bought.text
    refused = client.post(
        f"/api/v1/loyalty/members/{ids[1]}/coupons", json={"template_code": "save8"}, headers=agent
    )
    assert refused.status_code == 409
    mine = client.get(f"/api/v1/coupons?customer_id={ids[1]}", headers=agent).json()
    assert len(mine) == 2
    # Voiding needs loyalty.adjust.
    other = result["coupons"][str(ids[2])]
    assert (
        client.post(
            f"/api/v1/coupons/{other}/void", json={"reason": "x"}, headers=agent
        ).status_code
        == 403
    )
    voided = client.post(
        f"/api/v1/coupons/{other}/void", json={"reason": "重复发放"}, headers=manager
    )
    assert voided.json()["status"] == "void"


def test_report_and_verify(client: Any, login: Any, db: Session, make_customer: Any) -> None:
    _, manager = login("manager")
    a, b = make_customer("甲").id, make_customer("乙").id
    with clock.frozen(datetime(2026, 5, 20, 4, 0, tzinfo=UTC)):
        _member_with_points(db, a, fee_fen=50_000)  # silver after evaluation
        _member_with_points(db, b, fee_fen=10_000)
        from guanxi.loyalty.tiers import evaluate

        evaluate(db)
        report = client.get("/api/v1/loyalty/report", headers={**manager, **ZH}).json()
    tiers = {t["tier"]: (t["name"], t["members"], t["balance"]) for t in report["tiers"]}
    assert tiers == {
        "member": ("普通会员", 1, 100),
        "silver": ("银卡会员", 1, 500),
        "gold": ("金卡会员", 0, 0),
        "diamond": ("钻石会员", 0, 0),
    }
    assert (report["members"], report["liability_points"]) == (2, 600)
    assert len(report["months"]) == 12
    may = report["months"][-1]
    assert may == {
        "month": "2026-05",
        "upgrades": 1,
        "downgrades": 0,
        "issued": 600,
        "redeemed": 0,
        "expired": 0,
    }
    assert report["months"][0]["month"] == "2025-06"
    check = client.post("/api/v1/loyalty/verify", headers=manager).json()
    assert (check["ok"], check["members"], check["entries"], check["ledger_total"]) == (
        True,
        2,
        2,
        600,
    )


def test_enrol_by_an_agent(client: Any, login: Any, make_customer: Any) -> None:
    _, agent = login("agent")
    cid = make_customer().id
    with clock.frozen(datetime(2026, 4, 1, 2, 0, tzinfo=UTC)):
        resp = client.post("/api/v1/loyalty/members", json={"customer_id": cid}, headers=agent)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["tier"], resp.json()["balance"], resp.json()["enrolled_via"]) == (
        "member",
        0,
        "agent",
    )
    tiers = client.get(f"/api/v1/loyalty/members/{cid}/tiers", headers=agent).json()
    assert [(t["reason"], t["to_tier"]) for t in tiers] == [("joined", "member")]
