"""Leads from new enterprise customers and campaign responses, their announcement to the
sales managers, converting a web lead into a customer, and contacts logged against an
opportunity in the interactions log."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi import domains
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, ValidationFailed
from guanxi.core.web import translate_field_error
from guanxi.customers.models import Customer
from guanxi.customers.service import can_see
from guanxi.interactions.models import Interaction
from guanxi.notify.models import Notification
from guanxi.sales import leads, service
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import Convert, WebLeadIn
from guanxi.security.models import User
from guanxi.security.scope import set_scope
from tests.conftest import PASSWORD
from tests.integration.sales.conftest import Crew


def _leads_of(db: Session, customer_id: int) -> list[Opportunity]:
    return list(db.scalars(select(Opportunity).where(Opportunity.customer_id == customer_id)))


def test_a_new_enterprise_customer_becomes_a_lead(
    db: Session, crew: Crew, make_customer: Any
) -> None:
    domains.load()
    owned = make_customer("杭州云仓科技有限公司", kind="enterprise", owner_id=crew.member.id)
    unowned = make_customer("宁波港联贸易有限公司", kind="enterprise")
    person = make_customer("张三", kind="individual", owner_id=crew.member.id)
    [lead] = _leads_of(db, owned.id)
    assert (lead.stage, lead.source, lead.owner_id, lead.title) == (
        "lead",
        "new_enterprise",
        crew.member.id,
        "杭州云仓科技有限公司 · 新企业客户",
    )
    [pool] = _leads_of(db, unowned.id)
    assert pool.owner_id is None
    assert _leads_of(db, person.id) == []
    # The team's manager hears of each new lead, once.
    notes = db.scalars(
        select(Notification.key)
        .where(Notification.user_id == crew.manager.id)
        .order_by(Notification.id)
    ).all()
    assert notes == [f"sales_lead:{lead.id}", f"sales_lead:{pool.id}"]


def test_a_campaign_response_makes_one_lead(db: Session, crew: Crew, make_customer: Any) -> None:
    from guanxi.campaigns import tracking

    domains.load()
    assert leads.lead_from_campaign_response in tracking._listeners
    customer = make_customer("回应客户", kind="individual", owner_id=crew.colleague.id)
    for _ in range(2):
        with write_transaction(db):
            leads.lead_from_campaign_response(db, 41, customer.id)
    [lead] = _leads_of(db, customer.id)
    assert (lead.source, lead.campaign_id, lead.owner_id, lead.stage) == (
        "campaign",
        41,
        crew.colleague.id,
        "lead",
    )
    # Another campaign is another lead.
    with write_transaction(db):
        leads.lead_from_campaign_response(db, 42, customer.id)
    assert sorted(o.campaign_id or 0 for o in _leads_of(db, customer.id)) == [41, 42]


def test_a_web_lead_is_encrypted_and_converts_into_a_customer(
    db: Session, crew: Crew, client: Any
) -> None:
    domains.load()
    lead = leads.submit_web_lead(
        db,
        lead_in=WebLeadIn(
            name="陈女士",
            company="温州鞋业有限公司",
            phone="139 1234 5678",
            email="Chen@Example.com",
            message="每月约 3000 票",
        ),
    )
    assert (lead.owner_id, lead.customer_id, lead.source, lead.notes) == (
        None,
        None,
        "web_form",
        "每月约 3000 票",
    )
    # Stored encrypted: the number is nowhere in clear.
    assert "13912345678" not in (lead.contact_phone_enc or "")
    assert "温州" not in (lead.contact_company_enc or "")
    read = service.to_read(lead)
    assert read.contact is not None
    assert (read.contact.name, read.contact.company, read.contact.phone, read.contact.email) == (
        "陈女士",
        "温州鞋业有限公司",
        "139****5678",
        "C***@example.com",
    )
    service.claim(db, opportunity_id=lead.id, actor=crew.member)
    leads.convert_lead(db, opportunity_id=lead.id, convert_in=Convert(), actor=crew.member)
    db.expire_all()
    converted = db.get(Opportunity, lead.id)
    assert converted is not None
    assert converted.customer_id is not None
    customer = db.get(Customer, converted.customer_id)
    assert customer is not None
    assert (customer.name, customer.kind, customer.owner_id, customer.source) == (
        "温州鞋业有限公司",
        "enterprise",
        crew.member.id,
        "website",
    )
    assert [c.name for c in customer.contacts] == ["陈女士"]
    # The lead's own copy of the contact is gone, and no second lead was made.
    assert (converted.contact_phone_enc, converted.contact_name_enc) == (None, None)
    assert [o.id for o in _leads_of(db, customer.id)] == [lead.id]


def test_a_conversion_that_cannot_link_the_lead_leaves_no_customer(
    db: Session, crew: Crew, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new customer and the lead's link are one transaction: if the lead cannot be
    linked (converted by someone else meanwhile), no customer is left behind."""
    domains.load()
    lead = _web_lead(db, "宁波港务有限公司")
    service.claim(db, opportunity_id=lead.id, actor=crew.member)
    customers = db.scalar(select(func.count()).select_from(Customer))

    def taken(*_args: Any, **_kwargs: Any) -> Opportunity:
        raise Conflict("lead_converted", field="customer_id")

    monkeypatch.setattr(leads, "_link", taken)
    with pytest.raises(Conflict):
        leads.convert_lead(db, opportunity_id=lead.id, convert_in=Convert(), actor=crew.member)
    assert db.scalar(select(func.count()).select_from(Customer)) == customers
    assert db.scalar(select(Customer.id).where(Customer.name == "宁波港务有限公司")) is None
    monkeypatch.undo()
    # Nothing half-done: the same conversion then goes through, once.
    converted = leads.convert_lead(
        db, opportunity_id=lead.id, convert_in=Convert(), actor=crew.member
    )
    assert converted.customer_id is not None
    assert db.scalar(select(func.count()).select_from(Customer)) == customers + 1
    assert [o.id for o in _leads_of(db, converted.customer_id)] == [lead.id]


def _web_lead(db: Session, company: str) -> Opportunity:
    return leads.submit_web_lead(
        db, lead_in=WebLeadIn(name="周先生", company=company, phone="13812345678")
    )


def test_a_scoped_salesperson_keeps_the_customer_a_lead_becomes(
    db: Session, crew: Crew, client: Any
) -> None:
    """Converting a web lead makes the new customer in the salesperson's region: scoped to
    one, that one; to several, the one named; outside them, refused on the region field
    with nothing written (before, the customer had no region and vanished from their
    pipeline together with the lead)."""
    domains.load()
    # Claimed before the scope is set: a scoped salesperson sees only their own leads.
    lead = _web_lead(db, "温州鞋业有限公司")
    second = _web_lead(db, "深圳电子有限公司")
    service.claim(db, opportunity_id=lead.id, actor=crew.member)
    service.claim(db, opportunity_id=second.id, actor=crew.member)
    set_scope(db, user_id=crew.member.id, regions=["浙江省"], team_ids=[], actor=crew.admin)
    db.expire_all()
    member = db.get(User, crew.member.id)
    assert member is not None
    leads.convert_lead(db, opportunity_id=lead.id, convert_in=Convert(), actor=member)
    db.expire_all()
    member = db.get(User, crew.member.id)
    assert member is not None
    converted = service.get_opportunity(db, opportunity_id=lead.id, viewer=member)
    customer = db.get(Customer, converted.customer_id)
    assert customer is not None
    assert (customer.name, customer.region) == ("温州鞋业有限公司", "浙江省")
    assert can_see(member, customer)

    set_scope(
        db, user_id=crew.member.id, regions=["浙江省", "广东省"], team_ids=[], actor=crew.admin
    )
    lead = second
    customers = db.scalar(select(func.count()).select_from(Customer))
    for region in (None, "上海市"):
        db.expire_all()
        member = db.get(User, crew.member.id)
        assert member is not None
        with pytest.raises(ValidationFailed) as refused:
            leads.convert_lead(
                db, opportunity_id=lead.id, convert_in=Convert(region=region), actor=member
            )
        [error] = refused.value.errors
        assert (error.loc, error.code, error.params) == (
            ("region",),
            "region_outside_scope",
            {"regions": ["广东省", "浙江省"]},
        )
        assert translate_field_error(error, "zh_CN") == "请选择您负责的地区：广东省, 浙江省"
    assert db.scalar(select(func.count()).select_from(Customer)) == customers
    db.expire_all()
    member = db.get(User, crew.member.id)
    assert member is not None
    leads.convert_lead(
        db, opportunity_id=lead.id, convert_in=Convert(region="广东省深圳市"), actor=member
    )
    db.expire_all()
    opened = db.get(Opportunity, lead.id)
    assert opened is not None
    assert db.get(Customer, opened.customer_id).region == "广东省深圳市"  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(Customer)) == customers + 1


def test_a_scoped_agent_cannot_add_a_customer_outside_their_regions(
    client: Any, login: Any, db: Session, make_user: Any
) -> None:
    agent, headers = login("agent")
    admin = make_user("admin")
    set_scope(db, user_id=agent.id, regions=["广东"], team_ids=[], actor=admin)
    db.commit()
    zh = {**headers, "Accept-Language": "zh-CN"}
    refused = client.post(
        "/api/v1/customers", json={"name": "沪上客户", "region": "上海市"}, headers=zh
    )
    assert refused.status_code == 422
    assert [(e["loc"], e["code"], e["message"]) for e in refused.json()["errors"]] == [
        (["region"], "region_outside_scope", "请选择您负责的地区：广东")
    ]
    assert db.scalar(select(Customer.id).where(Customer.name == "沪上客户")) is None
    made = client.post("/api/v1/customers", json={"name": "粤地客户"}, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["region"] == "广东"
    # Their own customer is theirs to open, and stays inside their regions.
    url = f"/api/v1/customers/{made.json()['id']}"
    assert client.get(url, headers=headers).status_code == 200
    moved = client.patch(url, json={"region": "广东省广州市"}, headers=headers)
    assert moved.status_code == 200, moved.text
    for region in ("上海市", None):
        away = client.patch(url, json={"region": region}, headers=zh)
        assert away.status_code == 422
        assert [e["code"] for e in away.json()["errors"]] == ["region_outside_scope"]
    assert client.get(url, headers=headers).json()["customer"]["region"] == "广东省广州市"


def test_contacts_are_logged_against_the_opportunity(
    client: Any, db: Session, crew: Crew, make_customer: Any, enter: Any
) -> None:
    customer = make_customer("对接客户", owner_id=crew.member.id)
    opp = enter(crew.member, "年框合作", customer_id=customer.id)
    other = enter(crew.member, "无客户机会")
    resp = client.post(
        "/api/v1/auth/token", json={"username": crew.member.username, "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    resp = client.post(
        f"/api/v1/sales/opportunities/{opp.id}/interactions",
        json={"customer_id": customer.id, "kind": "visit", "summary": "上门演示报价"},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["opportunity_id"], resp.json()["customer_id"]) == (opp.id, customer.id)
    listed = client.get(f"/api/v1/sales/opportunities/{opp.id}/interactions", headers=headers)
    assert [(i["summary"], i["opportunity_id"]) for i in listed.json()] == [
        ("上门演示报价", opp.id)
    ]
    # Without a customer there is no contact log to write to.
    resp = client.post(
        f"/api/v1/sales/opportunities/{other.id}/interactions",
        json={"customer_id": customer.id, "kind": "call", "summary": "电话"},
        headers=headers,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["customer_id"]
    # The interactions domain checks the link itself too.
    resp = client.post(
        "/api/v1/interactions",
        json={
            "customer_id": customer.id,
            "kind": "call",
            "summary": "错链",
            "opportunity_id": other.id,
        },
        headers=headers,
    )
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["opportunity_id"]
    assert db.scalar(select(func.count()).select_from(Interaction)) == 1
    # The page shows the log and logs a contact.
    client.post(
        "/login", data={"username": crew.member.username, "password": PASSWORD, "next": "/"}
    )
    page = client.get(f"/sales/opportunities/{opp.id}")
    assert "上门演示报价" in page.text.split('id="interactions"')[1]
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    resp = client.post(
        f"/sales/opportunities/{opp.id}/interactions",
        data={"csrf_token": csrf.group(1), "kind": "call", "summary": "电话跟进合同"},
        follow_redirects=False,
    )
    assert (resp.status_code, resp.headers["location"]) == (303, f"/sales/opportunities/{opp.id}")
    db.expire_all()
    assert db.scalars(
        select(Interaction.summary)
        .where(Interaction.opportunity_id == opp.id)
        .order_by(Interaction.id)
    ).all() == ["上门演示报价", "电话跟进合同"]
