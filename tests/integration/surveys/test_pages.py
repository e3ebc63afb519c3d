"""The staff pages: results, templates, policy, outlets with their QR codes (and the QR
page customers answer on), agent entry from the 360 view and the ticket page, the 360
panel; each refused to roles without the permission."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.surveys.models import SurveyOutlet, SurveyResponse
from guanxi.surveys.policy import load_policy
from tests.conftest import PASSWORD
from tests.integration.surveys.helpers import PROMOTER, resolved_ticket

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def _sign_in(client: Any, username: str) -> str:
    """Sign in through the login form; returns the CSRF token of the session."""
    client.post("/login", data={"username": username, "password": PASSWORD})
    page = client.get("/surveys/enter", headers=EN)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if found is None:
        page = client.get("/", headers=EN)
        found = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_outlet_qr_code_and_anonymous_answers(
    client: Any, db: Session, manager: Any, mobile_customer: Any
) -> None:
    csrf = _sign_in(client, manager.username)
    made = client.post(
        "/surveys/outlets",
        data={"csrf_token": csrf, "code": "hz_linping", "name": "杭州临平营业部",
              "region": "浙江省", "template": "after_delivery"},
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303, made.text
    page = client.get("/surveys/outlets", headers=ZH)
    assert "杭州临平营业部" in page.text
    assert "<svg" in page.text
    svg = client.get(f"/surveys/outlets/{db.scalar(select(SurveyOutlet.id))}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    link = re.search(r'/q/o/([^"<\s]+)', client.get("/api/v1/surveys/outlets").text)
    assert link is not None
    code = link.group(1).rstrip('"}')
    public = client.get(f"/q/o/{code}", headers=ZH)
    assert public.status_code == 200
    assert "派送服务满意度调查" in public.text
    assert 'name="phone"' in public.text
    # Anonymous, then with the phone of a known customer.
    no = {"follow_redirects": False}
    assert client.post(f"/q/o/{code}", data={"q_csat": "9"}, **no).status_code == 303
    bad = client.post(f"/q/o/{code}", data={"q_csat": "9", "phone": "12"}, headers=EN)
    assert bad.status_code == 422
    assert "Not a valid mobile number" in bad.text
    ok = client.post(f"/q/o/{code}", data={"q_csat": "4", "phone": "139 1234 5678"}, **no)
    assert ok.status_code == 303
    assert ok.headers["location"].endswith("followup=1")
    db.expire_all()
    rows = list(db.scalars(select(SurveyResponse).order_by(SurveyResponse.id)))
    assert [(r.channel, r.trigger, r.csat, r.customer_id, r.region) for r in rows] == [
        ("qr", "outlet", 9, None, "浙江省"),
        ("qr", "outlet", 4, mobile_customer.id, "浙江省"),
    ]
    assert rows[1].phone_enc is not None
    assert "13912345678" not in rows[1].phone_enc
    # A tampered code, and the rate limit per client (10 an hour by default).
    assert client.get(f"/q/o/{code[:-2]}xx").status_code == 404
    assert load_policy(db).outlet_limit == "10/hour"
    codes = [client.post(f"/q/o/{code}", data={"q_csat": "8"}, **no).status_code for _ in range(9)]
    assert codes == [303] * 7 + [429] * 2  # 3 used above (the invalid one counts too)


def test_agent_enters_a_phone_answer_from_the_ticket_page(
    client: Any, db: Session, agent: Any, mobile_customer: Any
) -> None:
    ticket = resolved_ticket(db, agent, mobile_customer.id)
    csrf = _sign_in(client, agent.username)
    detail = client.get(f"/tickets/{ticket.id}", headers=EN)
    assert f'href="/surveys/enter?ticket_id={ticket.id}&amp;customer_id={mobile_customer.id}"' in (
        detail.text
    )
    form = client.get(
        f"/surveys/enter?ticket_id={ticket.id}&customer_id={mobile_customer.id}", headers=EN
    )
    assert form.status_code == 200
    assert "After a ticket" in form.text
    bad = client.post(
        "/surveys/enter",
        data={"csrf_token": csrf, "template": "after_ticket", "channel": "phone",
              "ticket_id": ticket.id, "customer_id": mobile_customer.id, "q_nps": "9"},
        headers=EN,
    )  # fmt: skip
    assert bad.status_code == 422
    assert "Question 1 “Overall, how satisfied are you with our service this time?”" in bad.text
    data = {"csrf_token": csrf, "template": "after_ticket", "channel": "phone",
            "ticket_id": ticket.id, "customer_id": mobile_customer.id}  # fmt: skip
    data.update({f"q_{k}": str(v) for k, v in PROMOTER.items()})
    sent = client.post("/surveys/enter", data=data, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    db.expire_all()
    response = db.scalar(select(SurveyResponse))
    assert response is not None
    assert (response.channel, response.entered_by, response.ticket_id, response.trigger) == (
        "phone",
        agent.id,
        ticket.id,
        "ticket",
    )
    assert response.invitation_id is not None  # the ticket's invitation is used up
    # The ticket's satisfaction is recorded in the agent's name.
    from guanxi.tickets.models import TicketEvent

    last = db.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
    ).first()
    assert last is not None
    assert (last.action, last.actor_id) == ("satisfaction", agent.id)
    shown = client.get(sent.headers["location"], headers=EN)
    assert shown.status_code == 200
    assert 'id="r-nps">10<' in shown.text
    panel = client.get(f"/customers/{mobile_customer.id}/surveys", headers=EN)
    assert 'id="sp-nps">10<' in panel.text
    assert 'id="sp-csat">9<' in panel.text
    assert f'href="/surveys/enter?customer_id={mobile_customer.id}"' in panel.text
    # The old form of the ticket page is sent to the survey.
    old = client.post(
        f"/tickets/{ticket.id}/satisfaction", data={"csrf_token": csrf, "score": "5"},
        follow_redirects=False,
    )  # fmt: skip
    assert old.headers["location"] == f"/surveys/enter?ticket_id={ticket.id}"


def test_staff_pages_render_and_are_guarded(client: Any, db: Session, make_user: Any) -> None:
    manager = make_user("manager")
    csrf = _sign_in(client, manager.username)
    for path in ("/surveys", "/surveys/compare", "/surveys/templates", "/surveys/policy",
                 "/surveys/outlets", "/surveys/templates/1"):  # fmt: skip
        assert client.get(path, headers=ZH).status_code == 200, path
    results = client.get("/surveys?by=segment&period=week", headers=EN)
    assert 'id="tile-nps"' in results.text
    assert "What drives overall satisfaction" in results.text
    saved = client.post(
        "/surveys/policy",
        data={"csrf_token": csrf, "expiry_days": "10", "reminder_after_days": "12",
              "after_ticket": "1", "delivery_rate": "0.1"},
        headers=EN,
    )  # fmt: skip
    assert saved.status_code == 422
    assert "must be less than expiry_days" in saved.text
    good = client.post(
        "/surveys/policy",
        data={"csrf_token": csrf, "expiry_days": "10", "reminder_after_days": "2",
              "after_ticket": "1", "delivery_rate": "0.1",
              "milestones": "2026-10-01 新派送流程上线\n"},
        follow_redirects=False,
    )  # fmt: skip
    assert good.status_code == 303
    policy = load_policy(db)
    assert (policy.expiry_days, policy.after_delivery, policy.delivery_rate) == (10, False, 0.1)
    assert [(m.name, m.on.isoformat()) for m in policy.milestones] == [
        ("新派送流程上线", "2026-10-01")
    ]
    compare = client.get("/surveys/compare?milestone=新派送流程上线", headers=EN)
    assert 'id="cmp-result"' in compare.text
    assert "2026-10-01" in compare.text
    # An agent: no results, no templates; entry yes.
    agent = make_user("agent")
    client.post("/logout", data={"csrf_token": csrf})
    _sign_in(client, agent.username)
    assert client.get("/surveys", headers=EN).status_code == 403
    assert client.get("/surveys/templates", headers=EN).status_code == 403
    assert client.get("/surveys/enter", headers=EN).status_code == 200
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0
