"""The loyalty pages: the 360 panel and its actions (by permission, refusals named in the
user's language), the members list, the tier report with the verify action, coupon
templates and issue, the policy form."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.loyalty import accrual, codes, coupons
from guanxi.loyalty.models import Coupon, CouponTemplate, LoyaltyMember
from guanxi.loyalty.policy import load_policy
from guanxi.loyalty.schemas import CouponTemplateIn
from tests.conftest import PASSWORD

from .conftest import add_shipment

HX = {"HX-Request": "true"}


def _sign_in(client: Any, username: str, lang: str = "zh_CN") -> str:
    client.cookies.set("guanxi_lang", lang)
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 200
    page = client.get("/loyalty/policy")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def _points(db: Session, cid: int, fee_fen: int) -> None:
    add_shipment(db, cid, fee_fen=fee_fen, at=clock.now() - timedelta(days=2))
    db.commit()
    accrual.accrue(db)


def _balance(db: Session, cid: int) -> int:
    return int(
        db.scalar(select(LoyaltyMember.balance).where(LoyaltyMember.customer_id == cid)) or 0
    )


def test_the_360_view_loads_the_panel(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    cid = make_customer("赵敏").id
    _points(db, cid, 123_400)  # ¥1,234: gold after evaluation, 1234 points
    from guanxi.loyalty.tiers import evaluate

    evaluate(db)
    _sign_in(client, agent.username)
    page = client.get(f"/customers/{cid}")
    assert f'hx-get="/customers/{cid}/loyalty"' in page.text
    panel = client.get(f"/customers/{cid}/loyalty", headers=HX)
    assert panel.status_code == 200
    assert "<html" not in panel.text  # a fragment for htmx
    assert "金卡会员" in panel.text
    assert "优先服务" in panel.text
    assert '<strong id="loyalty-balance">1,234</strong>' in panel.text
    assert "到钻石会员" in panel.text
    # Agents spend points and use coupons; they do not correct points.
    assert 'id="loyalty-redeem"' in panel.text
    assert 'id="loyalty-adjust"' not in panel.text
    # Without htmx the panel is a whole page.
    assert "<html" in client.get(f"/customers/{cid}/loyalty").text


def test_panel_actions_and_refusals(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    manager = make_user("manager")
    cid = make_customer().id
    _points(db, cid, 20_000)  # 200 points
    csrf = _sign_in(client, manager.username)
    over = client.post(
        f"/customers/{cid}/loyalty/redeem",
        data={"csrf_token": csrf, "points": "500", "reference": "YT1", "key": "k1"},
        headers=HX,
    )
    assert over.status_code == 200  # htmx swaps only successful answers
    assert "积分：积分不足：余额为 200" in over.text
    assert _balance(db, cid) == 200
    bad = client.post(
        f"/customers/{cid}/loyalty/adjust",
        data={"csrf_token": csrf, "points": "abc", "reason": "x"},
    )
    assert bad.status_code == 422
    assert "积分：必须是整数" in bad.text
    ok = client.post(
        f"/customers/{cid}/loyalty/redeem",
        data={"csrf_token": csrf, "points": "150", "reference": "YT2", "key": "k2"},
        headers=HX,
    )
    assert "已兑换积分" in ok.text
    # The same rendered form posted twice (a double click) spends once.
    client.post(
        f"/customers/{cid}/loyalty/redeem",
        data={"csrf_token": csrf, "points": "150", "reference": "YT2", "key": "k2"},
        headers=HX,
    )
    assert _balance(db, cid) == 50
    adjusted = client.post(
        f"/customers/{cid}/loyalty/adjust",
        data={"csrf_token": csrf, "points": "-20", "reason": "多计积分冲正", "key": "k3"},
        headers=HX,
    )
    assert "已调整积分" in adjusted.text
    assert _balance(db, cid) == 30


def test_enrol_issue_use_and_void_from_the_panel(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    manager = make_user("manager")
    cid = make_customer().id
    csrf = _sign_in(client, manager.username, lang="en")
    created = client.post(
        "/loyalty/coupons/templates",
        data={
            "csrf_token": csrf,
            "code": "sorry10",
            "name_zh": "致歉券",
            "name_en": "Apology",
            "kind": "amount_off",
            "amount_off": "10",
            "valid_days": "30",
            "active": "1",
        },  # fmt: skip
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    template = db.scalar(select(CouponTemplate).where(CouponTemplate.code == "sorry10"))
    assert template is not None
    assert (template.amount_off_fen, template.valid_days) == (1000, 30)
    enrolled = client.post(f"/customers/{cid}/loyalty/enrol", data={"csrf_token": csrf}, headers=HX)
    assert '<p class="banner" role="status">Enrolled</p>' in enrolled.text
    assert db.get(LoyaltyMember, cid) is not None
    issued = client.post(
        f"/customers/{cid}/loyalty/issue",
        data={"csrf_token": csrf, "template_code": "sorry10", "key": "g1"},
        headers=HX,
    )
    coupon = db.scalar(select(Coupon).where(Coupon.customer_id == cid))
    assert coupon is not None
    shown = f"{coupon.code[:4]}-{coupon.code[4:8]}-{coupon.code[8:]}"
    assert f"Coupon {shown} issued" in issued.text
    used = client.post(
        f"/customers/{cid}/loyalty/use",
        data={"csrf_token": csrf, "code": shown.lower(), "reference": "YT77", "amount": "20"},
        headers=HX,
    )
    assert "Coupon redeemed" in used.text
    db.refresh(coupon)
    assert (coupon.status, coupon.redeemed_ref, coupon.discount_fen) == ("redeemed", "YT77", 1000)
    void = client.post(
        f"/customers/{cid}/loyalty/void",
        data={"csrf_token": csrf, "code": coupon.code, "reason": "test"},
        headers=HX,
    )
    assert "Code: This coupon has already been used (YT77)" in void.text
    # Another customer's panel does not touch this customer's coupons.
    elsewhere = client.post(
        f"/customers/{make_customer().id}/loyalty/void",
        data={"csrf_token": csrf, "code": coupon.code, "reason": "test"},
        headers=HX,
    )
    assert "Code: This coupon belongs to another customer" in elsewhere.text


def test_buy_a_coupon_with_points_from_the_panel(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    manager = make_user("manager")
    cid = make_customer().id
    _points(db, cid, 50_000)  # 500 points
    template_in = CouponTemplateIn.model_validate(
        {"code": "pts300", "name_zh": "积分券", "name_en": "Points coupon", "kind": "amount_off",
         "amount_off_fen": 1000, "valid_days": 30, "points_price": 300}
    )  # fmt: skip
    coupons.save_template(db, template_in=template_in, actor=manager)
    csrf = _sign_in(client, manager.username)
    bought = client.post(
        f"/customers/{cid}/loyalty/buy",
        data={"csrf_token": csrf, "template_code": "pts300", "key": "b1"},
        headers=HX,
    )
    coupon = db.scalar(select(Coupon).where(Coupon.customer_id == cid))
    assert coupon is not None
    assert f"已发放优惠券 {codes.display(coupon.code)}" in bought.text
    assert _balance(db, cid) == 200
    # Not enough points for a second: refused naming the field, nothing moves.
    again = client.post(
        f"/customers/{cid}/loyalty/buy",
        data={"csrf_token": csrf, "template_code": "pts300", "key": "b2"},
        headers=HX,
    )
    assert "积分：积分不足：余额为 200" in again.text
    assert _balance(db, cid) == 200
    assert db.scalar(select(func.count()).select_from(Coupon)) == 1


def test_members_report_and_verify_pages(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    manager = make_user("manager")
    a, b = make_customer("钱多多").id, make_customer("孙小小").id
    _points(db, a, 90_000)
    _points(db, b, 1_000)
    csrf = _sign_in(client, manager.username)
    listed = client.get("/loyalty?sort=balance")
    assert listed.status_code == 200
    rows = re.findall(r'<a href="/customers/(\d+)">', listed.text.split('id="members"')[1])
    assert [int(r) for r in rows] == [a, b]
    assert "孙小小" not in client.get("/loyalty?q=钱").text
    report = client.get("/loyalty/report")
    assert '<strong id="liability">910</strong>' in report.text
    checked = client.post("/loyalty/verify", data={"csrf_token": csrf})
    assert "账本与余额一致" in checked.text


def test_policy_form_saves_and_names_refused_fields(
    client: Any, db: Session, make_user: Any
) -> None:
    manager = make_user("manager")
    csrf = _sign_in(client, manager.username)
    page = client.get("/loyalty/policy")
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    form = {
        k: v for k, v in form.items() if "require_both" not in k and "priority_service" not in k
    }
    form["csrf_token"] = csrf
    form["grace_days"] = "60"
    form["tiers.2.priority_service"] = "1"
    form["tiers.3.priority_service"] = "1"
    saved = client.post("/loyalty/policy", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text[-2000:]
    policy = load_policy(db)
    assert policy.grace_days == 60
    assert [t.code for t in policy.tiers] == ["member", "silver", "gold", "diamond"]
    assert policy.tiers[1].min_spend_fen == 30_000
    assert str(policy.earn.multipliers["express"]) == "1.5"  # type: ignore[index]
    form["tiers.2.min_spend"] = "200"  # gold below silver's ¥300
    refused = client.post("/loyalty/policy", data=form)
    assert refused.status_code == 422
    assert "等级 3 · 消费门槛：须高于下一级（30000）" in refused.text
    assert load_policy(db).tiers[2].min_spend_fen == 100_000


def test_readers_cannot_change_anything(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    auditor = make_user("auditor")
    cid = make_customer().id
    _points(db, cid, 10_000)
    csrf = _sign_in(client, auditor.username)
    panel = client.get(f"/customers/{cid}/loyalty", headers=HX)
    assert "<form" not in panel.text
    assert (
        client.post(
            f"/customers/{cid}/loyalty/adjust",
            data={"csrf_token": csrf, "points": "5", "reason": "x"},
        ).status_code
        == 403
    )
    assert _balance(db, cid) == 100
    before = load_policy(db)
    assert client.post("/loyalty/policy", data={"csrf_token": csrf}).status_code == 403
    assert load_policy(db) == before
    assert _balance(db, cid) == 100
