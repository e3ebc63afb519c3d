"""The service desk through the API: create, queue with SLA countdowns, take, the workflow,
hand-over, refusals in the user's language, and who may do what."""

from __future__ import annotations

from typing import Any


def _create(client: Any, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    body = {"type": "complaint", "channel": "hotline", "subject": "包裹破损", **kw}
    resp = client.post("/api/v1/tickets", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_a_complaint_from_intake_to_close(client: Any, login: Any, make_customer: Any) -> None:
    agent, headers = login("agent")
    customer = make_customer(name="破损客户")
    ticket = _create(client, headers, customer_id=customer.id, severity="major")
    assert (ticket["status"], ticket["priority"], ticket["owner_id"]) == ("new", "high", None)
    assert [s["target"] for s in ticket["sla"]] == ["first_response", "resolution"]
    assert [(s["hours"], s["business_hours"]) for s in ticket["sla"]] == [(2.0, True), (24.0, True)]

    queue = client.get("/api/v1/tickets?unassigned=true", headers=headers).json()
    assert [t["id"] for t in queue] == [ticket["id"]]
    assert queue[0]["events"] == []  # the queue carries countdowns, not timelines

    taken = client.post(f"/api/v1/tickets/{ticket['id']}/take", headers=headers).json()
    assert (taken["owner_id"], taken["status"]) == (agent.id, "assigned")
    mine = client.get("/api/v1/tickets?mine=true", headers=headers).json()
    assert [t["id"] for t in mine] == [ticket["id"]]

    version = taken["version"]
    for action, reply in (("start", False), ("resolve", True), ("close", False)):
        resp = client.post(
            f"/api/v1/tickets/{ticket['id']}/actions",
            json={"action": action, "version": version, "note": "已处理", "reply": reply},
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        version = resp.json()["version"]
    done = client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers).json()
    assert done["status"] == "closed"
    assert [e["action"] for e in done["events"]] == ["create", "take", "start", "resolve", "close"]
    assert [e["internal"] for e in done["events"]][3] is False  # the reply is customer-visible
    assert client.get("/api/v1/tickets", headers=headers).json() == []  # closed: off the queue


def test_refusals_name_the_field_in_the_users_language(client: Any, login: Any) -> None:
    _, headers = login("agent")
    zh = {**headers, "Accept-Language": "zh-CN"}
    ticket = _create(client, headers)
    client.post(f"/api/v1/tickets/{ticket['id']}/take", headers=headers)
    resp = client.post(
        f"/api/v1/tickets/{ticket['id']}/actions",
        json={"action": "close", "version": 2},
        headers=zh,
    )
    assert resp.status_code == 409
    assert resp.json()["errors"][0]["field"] == "action"
    assert resp.json()["errors"][0]["message"] == "工单当前状态为 assigned，不能执行此操作"
    _, other = login("agent")
    again = client.post(
        f"/api/v1/tickets/{ticket['id']}/take", headers={**other, "Accept-Language": "zh-CN"}
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["message"] == "该工单已被其他人受理"
    bad = client.post(
        "/api/v1/tickets", json={"type": "complaint", "channel": "fax", "subject": ""}, headers=zh
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"channel", "subject"}
    unknown = client.post(
        "/api/v1/tickets",
        json={
            "type": "claim",
            "channel": "outlet",
            "subject": "理赔",
            "waybill_no": "SF1234567890",
        },
        headers=zh,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "waybill_no"


def test_roles(client: Any, login: Any, make_user: Any) -> None:
    _, sales = login("sales")
    assert client.get("/api/v1/tickets", headers=sales).status_code == 403
    _, analyst = login("analyst")
    assert client.post("/api/v1/tickets", json={}, headers=analyst).status_code == 403
    first, agent = login("agent")
    ticket = _create(client, agent)
    client.post(f"/api/v1/tickets/{ticket['id']}/take", headers=agent)
    second = make_user("agent")
    moved = client.post(
        f"/api/v1/tickets/{ticket['id']}/hand-over",
        json={"to_user_id": second.id, "reason": "转交理赔组"},
        headers=agent,
    ).json()
    assert (moved["owner_id"], moved["first_owner_id"]) == (second.id, first.id)
    assert moved["events"][-1]["note"] == "转交理赔组"
    # The former owner may no longer work it; a supervisor may step in.
    resp = client.post(
        f"/api/v1/tickets/{ticket['id']}/actions",
        json={"action": "start", "version": moved["version"]},
        headers=agent,
    )
    assert resp.status_code == 403
    _, manager = login("manager")
    resp = client.post(
        f"/api/v1/tickets/{ticket['id']}/actions",
        json={"action": "start", "version": moved["version"]},
        headers=manager,
    )
    assert resp.json()["status"] == "in_progress"
