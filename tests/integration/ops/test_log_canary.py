"""The personal-data canary: a customer whose every identifier is a unique marker goes
through everything that handles personal data — created, searched by phone and by name
(in query strings), viewed (360, page), revealed, refused an invalid update (422 echoes the
input), imported from a CSV file — and a ticket quoting them is filed; afterwards none of
the markers, nor the phone's digits, appears in any log line or on stdout / stderr.

A real uvicorn server, configured as ``guanxi serve`` configures it, with the root logger
at DEBUG, on both databases (real commits: import jobs run in a thread of the server).
"""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from guanxi.app import create_app
from guanxi.audit.service import Actor
from guanxi.core import logs
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD, settings_for
from tests.integration.ops.conftest import _restore, _snapshot

NAME = "金丝雀甲乙"
PHONE = "13987654321"
EMAIL = "canary.bird@example.org"
ID_NUMBER = "11010519491231002X"
ADDRESS = "浙江省杭州市金丝雀路88号"
NAME_2 = "金丝雀丙丁"
PHONE_2 = "13987650000"
EMAIL_2 = "canary.two@example.org"
ADDRESS_2 = "江苏省南京市金丝雀大街9号"
CANARIES = [
    NAME,
    PHONE,
    "139 8765 4321",
    "87654321",
    EMAIL,
    "canary.bird",
    ID_NUMBER,
    "1949123100",
    ADDRESS,
    "金丝雀路",
    NAME_2,
    PHONE_2,
    "87650000",
    EMAIL_2,
    ADDRESS_2,
    "金丝雀大街",
    "金丝雀",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(committed_engine: Engine, tmp_path: Path) -> Iterator[tuple[str, io.StringIO]]:
    """A uvicorn server on the committed database, its logs (at DEBUG) in a buffer."""
    saved = _snapshot()
    buffer = io.StringIO()
    settings = settings_for(committed_engine.url.render_as_string(hide_password=False), tmp_path)
    settings.log_format = "json"
    settings.log_level = "DEBUG"
    app = create_app(settings)
    with app.state.sessionmaker() as session:
        create_user(
            session,
            user_in=UserCreate(
                username="canary_mgr", display_name="主管", role="manager", password=PASSWORD
            ),  # type: ignore[arg-type]
            actor=Actor.system("canary"),
        )
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=logs.logging_config(settings, stream=buffer),
        access_log=False,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", buffer
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        app.state.engine.dispose()
        _restore(saved)


def _csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["客户编号", "客户名称", "客户类型", "手机", "邮箱", "地址"])
    writer.writerow(["CAN-2", NAME_2, "个人", PHONE_2, EMAIL_2, ADDRESS_2])
    # A row refused for its phone: the error report quotes it, the log must not.
    writer.writerow(["CAN-3", NAME_2 + "戊", "个人", PHONE_2[:-1], EMAIL_2, ADDRESS_2])
    return out.getvalue().encode("utf-8")


def test_no_personal_data_reaches_the_logs(
    server: tuple[str, io.StringIO], capfd: pytest.CaptureFixture[str]
) -> None:
    base, buffer = server
    sent: list[str] = []

    def count(response: httpx.Response) -> None:
        sent.append(response.headers["x-request-id"])

    with httpx.Client(base_url=base, timeout=30, event_hooks={"response": [count]}) as http:
        token = http.post(
            "/api/v1/auth/token", json={"username": "canary_mgr", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        created = http.post(
            "/api/v1/customers",
            json={
                "name": NAME,
                "phones": [PHONE],
                "email": EMAIL,
                "id_number": ID_NUMBER,
                "addresses": [{"line": ADDRESS}],
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]

        for query in (PHONE, "139 8765 4321", NAME, EMAIL):
            found = http.get("/api/v1/customers", params={"q": query}, headers=auth)
            assert found.status_code == 200, found.text
            assert [c["id"] for c in found.json()["items"]] == [cid], query
        page = http.get("/customers", params={"q": PHONE}, headers=auth)
        assert page.status_code == 200
        assert NAME in page.text

        assert http.get(f"/api/v1/customers/{cid}", headers=auth).status_code == 200
        assert http.get(f"/customers/{cid}", headers=auth).status_code == 200
        for field in ("phones", "email", "id_number"):
            revealed = http.post(
                f"/api/v1/customers/{cid}/reveal", json={"field": field}, headers=auth
            )
            assert revealed.status_code == 200, revealed.text

        refused = http.patch(
            f"/api/v1/customers/{cid}",
            json={"email": f"{NAME}@@{ADDRESS}", "phones": [PHONE + "99"]},
            headers=auth,
        )
        assert refused.status_code == 422
        assert {e["field"] for e in refused.json()["errors"]} == {"email", "phones.0"}

        uploaded = http.post(
            "/api/v1/imports/uploads",
            data={"kind": "customers"},
            files={"file": ("金丝雀名单.csv", _csv(), "text/csv")},
            headers=auth,
        )
        assert uploaded.status_code == 200, uploaded.text
        job = http.post(
            "/api/v1/imports/jobs",
            json={"upload_id": uploaded.json()["upload_id"], "kind": "customers", "mapping": {}},
            headers=auth,
        )
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 60
        state = job.json()
        while state["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            state = http.get(f"/api/v1/imports/jobs/{state['id']}", headers=auth).json()
        assert (state["state"], state["imported"], state["rejected"]) == ("finished", 1, 1)
        assert (
            http.get("/api/v1/customers", params={"q": NAME_2}, headers=auth).json()["items"][0][
                "name"
            ]
            == NAME_2
        )

        ticket = http.post(
            "/api/v1/tickets",
            json={
                "type": "complaint",
                "channel": "hotline",
                "customer_id": cid,
                "subject": f"{NAME} 的快件丢失",
                "description": f"{NAME} 来电 {PHONE}，地址 {ADDRESS}，邮箱 {EMAIL}",
            },
            headers=auth,
        )
        assert ticket.status_code == 201, ticket.text

    time.sleep(0.2)  # the last access line is written after the response is sent
    text = buffer.getvalue()
    out, err = capfd.readouterr()
    # The capture saw the traffic: an access line per request, uvicorn's own lines.
    assert text.count('"logger": "guanxi.access"') == len(sent)
    assert all(f'"request_id": "{rid}"' in text for rid in sent)
    assert '"logger": "uvicorn.error"' in text
    assert '"route": "/api/v1/customers/{customer_id}/reveal"' in text
    leaks = [c for c in CANARIES if c in text or c in out or c in err]
    assert leaks == []
