"""The review queue through the API and the pages, the create-form check, and the CLI."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from guanxi.audit.service import Actor
from guanxi.customers.models import Customer
from guanxi.dedupe import service
from guanxi.dedupe.models import DuplicatePair
from tests.conftest import PASSWORD

BOT = Actor.system("test")


def _grey_pair(make_customer: Any) -> tuple[Any, Any]:
    """Same name in the same district, another street, no phone: queued, not merged."""
    a = make_customer(
        name="赵敏",
        addresses=[{"line": "广东省深圳市南山区科技园路5号101室"}],
        email="zhao@example.cn",
    )
    b = make_customer(
        name="赵敏",
        addresses=[{"line": "广东省深圳市南山区学府路8号"}],
        industry="电商",
        birthday="1990-03-04",
    )
    return a, b


def test_api_queue_merge_and_undo(db: Session, client: Any, login: Any, make_customer: Any) -> None:
    a, b = _grey_pair(make_customer)
    service.run(db, actor=BOT)
    _, headers = login("manager")

    page = client.get("/api/v1/duplicates", headers=headers).json()
    assert page["total"] == 1
    pair = page["items"][0]
    assert (pair["left_id"], pair["right_id"]) == (a.id, b.id)
    assert pair["agreed"] == ["address", "name"]

    detail = client.get(f"/api/v1/duplicates/{pair['id']}", headers=headers).json()
    assert (
        detail["left"]["email"] == "zh***@example.cn"
        or detail["left"]["email"] != "zhao@example.cn"
    )
    assert "birthday" in detail["mergeable"]

    bad = client.post(
        f"/api/v1/duplicates/{pair['id']}/merge",
        json={"survivor_id": 999, "take": []},
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "survivor_id"

    merged = client.post(
        f"/api/v1/duplicates/{pair['id']}/merge",
        json={"survivor_id": b.id, "take": ["email"]},
        headers=headers,
    )
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert (body["survivor_id"], body["merged_id"]) == (b.id, a.id)
    assert body["changed_fields"] == ["email"]
    assert body["moved"]["customer_address"] == 1
    again = client.post(
        f"/api/v1/duplicates/{pair['id']}/merge", json={"survivor_id": b.id}, headers=headers
    )
    assert again.status_code == 409

    history = client.get(f"/api/v1/customers/{b.id}/merges", headers=headers).json()
    assert [m["id"] for m in history] == [body["id"]]
    undone = client.post(f"/api/v1/merges/{body['id']}/undo", headers=headers)
    assert undone.status_code == 200
    assert undone.json()["kept_fields"] == []
    db.expire_all()
    assert db.get(Customer, a.id).status == "active"  # type: ignore[union-attr]
    assert db.get(Customer, b.id).email_enc is None  # type: ignore[union-attr]
    pair_row = db.get(DuplicatePair, pair["id"])
    assert pair_row is not None
    assert pair_row.status == "distinct"


def test_api_roles_and_distinct(db: Session, client: Any, login: Any, make_customer: Any) -> None:
    _grey_pair(make_customer)
    service.run(db, actor=BOT)
    _, agent = login("agent")
    assert client.get("/api/v1/duplicates", headers=agent).status_code == 403
    _, manager = login("manager")
    pair_id = client.get("/api/v1/duplicates", headers=manager).json()["items"][0]["id"]
    assert (
        client.post(
            f"/api/v1/duplicates/{pair_id}/merge", json={"survivor_id": 1}, headers=agent
        ).status_code
        == 403
    )
    resp = client.post(f"/api/v1/duplicates/{pair_id}/distinct", headers=manager)
    assert resp.json()["status"] == "distinct"
    assert client.get("/api/v1/duplicates", headers=manager).json()["total"] == 0
    missing = client.get("/api/v1/duplicates/999999", headers=manager)
    assert missing.status_code == 404


def test_api_duplicate_check(db: Session, client: Any, login: Any, make_customer: Any) -> None:
    old = make_customer(name="周杰", phones=["13700001234"])
    _, agent = login("agent")
    resp = client.post(
        "/api/v1/duplicates/check", json={"name": "周傑", "phones": ["13700001234"]}, headers=agent
    )
    assert resp.status_code == 200
    assert [c["customer_id"] for c in resp.json()] == [old.id]
    bad = client.post(
        "/api/v1/duplicates/check",
        json={"name": "周傑", "phones": ["12"]},
        headers={**agent, "Accept-Language": "zh-CN"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "phones.0"


def _sign_in(client: Any, username: str) -> str:
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/customers/new").text)
    assert match
    return match.group(1)


def test_pages_review_merge_and_undo(
    db: Session, client: Any, make_user: Any, make_customer: Any
) -> None:
    a, b = _grey_pair(make_customer)
    service.run(db, actor=BOT)
    manager = make_user("manager")
    csrf = _sign_in(client, manager.username)

    queue = client.get("/duplicates", headers={"Accept-Language": "zh-CN"})
    assert queue.status_code == 200
    assert "重复客户" in queue.text
    assert "赵敏" in queue.text
    pair_id = db.scalar(select(DuplicatePair.id))
    page = client.get(f"/duplicates/{pair_id}")
    assert page.status_code == 200
    assert 'name="pick_industry"' in page.text
    assert 'name="survivor"' in page.text

    resp = client.post(
        f"/duplicates/{pair_id}/merge",
        data={
            "csrf_token": csrf,
            "survivor": "left",
            "pick_industry": "right",
            "pick_birthday": "left",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/customers/{a.id}"
    db.expire_all()
    survivor = db.get(Customer, a.id)
    assert survivor is not None
    assert (survivor.industry, survivor.birthday) == ("电商", None)
    profile = client.get(f"/customers/{b.id}", headers={"Accept-Language": "en"})
    assert "This record was merged into" in profile.text
    merge_id = re.search(r'action="/merges/(\d+)/undo"', profile.text)
    assert merge_id
    undo = client.post(
        f"/merges/{merge_id.group(1)}/undo", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert undo.status_code == 303
    db.expire_all()
    assert db.get(Customer, b.id).status == "active"  # type: ignore[union-attr]
    assert db.get(Customer, a.id).industry is None  # type: ignore[union-attr]


def test_create_form_warns_of_a_likely_duplicate(
    client: Any, make_user: Any, make_customer: Any
) -> None:
    old = make_customer(name="周杰", phones=["13700001234"])
    agent = make_user("agent")
    csrf = _sign_in(client, agent.username)
    form = client.get("/customers/new")
    assert 'hx-post="/duplicates/check"' in form.text
    resp = client.post(
        "/duplicates/check",
        data={
            "csrf_token": csrf,
            "name": "周傑",
            "phones": "137 0000 1234",
            "email": "not-an-email",
        },
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 200
    assert f'href="/customers/{old.id}"' in resp.text
    assert "Possible duplicate" in resp.text
    nothing = client.post("/duplicates/check", data={"csrf_token": csrf, "name": "完全不同"})
    assert nothing.status_code == 200
    assert nothing.text.strip() == ""


def test_cli_run_queue_merge_undo(committed_engine: Any, tmp_path: Any, monkeypatch: Any) -> None:
    from guanxi.cli import app
    from guanxi.core.db import make_sessionmaker
    from guanxi.customers.schemas import CustomerCreate
    from guanxi.customers.service import create_customer

    url = committed_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GUANXI_DATABASE_URL", url)
    monkeypatch.setenv("GUANXI_ENV", "test")
    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path))
    from guanxi.config import get_settings

    get_settings.cache_clear()
    from tests.conftest import TEST_BLIND_KEY, TEST_FIELD_KEY

    monkeypatch.setenv("GUANXI_FIELD_KEYS", json.dumps({"t1": TEST_FIELD_KEY}))
    monkeypatch.setenv("GUANXI_ACTIVE_FIELD_KEY", "t1")
    monkeypatch.setenv("GUANXI_BLIND_INDEX_KEY", TEST_BLIND_KEY)
    monkeypatch.setenv("GUANXI_SECRET_KEY", "test-secret")
    get_settings.cache_clear()
    session = make_sessionmaker(committed_engine)()
    ids = [
        create_customer(
            session, customer_in=CustomerCreate(name=n, phones=["13812345678"]), actor=BOT
        ).id
        for n in ("钱进", "錢進")
    ]
    session.close()
    runner = CliRunner()
    out = runner.invoke(app, ["dedupe", "run", "--json", "--no-merge"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert (result["customers"], result["candidates"], result["queued"]) == (2, 1, 1)
    queue = runner.invoke(app, ["dedupe", "queue", "--json"])
    assert json.loads(queue.stdout)["pairs"][0]["left_id"] == ids[0]
    merge = runner.invoke(app, ["dedupe", "merge", str(ids[0]), str(ids[1])])
    assert merge.exit_code == 0, merge.output
    merge_id = re.search(r"merge (\d+)", merge.output)
    assert merge_id
    undo = runner.invoke(app, ["dedupe", "undo", merge_id.group(1)])
    assert undo.exit_code == 0, undo.output
    assert runner.invoke(app, ["dedupe", "undo", merge_id.group(1)]).exit_code == 2
    get_settings.cache_clear()
