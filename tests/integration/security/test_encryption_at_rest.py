"""After a customer is created, the raw database files hold no clear phone or ID digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from guanxi.app import create_app
from guanxi.core.migrate import upgrade
from tests.conftest import PASSWORD, settings_for
from tests.helpers import credit_code, resident_id


def test_raw_sqlite_files_contain_no_clear_identifiers(tmp_path: Path) -> None:
    db_path = tmp_path / "raw.db"
    app = create_app(settings_for(f"sqlite:///{db_path}", tmp_path))
    upgrade(app.state.engine)
    from guanxi.audit.service import Actor
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    with app.state.sessionmaker() as session:
        create_user(
            session,
            user_in=UserCreate(
                username="agent1", display_name="a", role="agent", password=PASSWORD
            ),  # type: ignore[arg-type]
            actor=Actor.system("t"),
        )
    rid = resident_id(area="110105", birth="19750304", seq="457")
    code = credit_code("91110105MA01ABCD1")
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/token", json={"username": "agent1", "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        resp: Any = client.post(
            "/api/v1/customers",
            json={
                "name": "王小明",
                "phones": ["+86 186-0010-4321"],
                "id_number": rid,
                "email": "wxm@example.cn",
            },
            headers=headers,
        )
        assert resp.status_code == 201, resp.text
        org = client.post(
            "/api/v1/customers",
            json={
                "kind": "enterprise",
                "name": "北京某某科技有限公司",
                "credit_code": code,
                "contacts": [{"name": "联系人", "phone": "13501234567"}],
            },
            headers=headers,
        )
        assert org.status_code == 201, org.text
    app.state.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("raw.db*"))
    assert len(raw) > 0
    for secret in (
        "18600104321",
        "8618600104321",
        rid,
        rid[6:14] + rid[14:],
        code,
        "wxm@example.cn",
        "13501234567",
    ):
        assert secret.encode() not in raw, secret
    # The name is not a protected identifier and is stored in clear (sanity check of the method).
    assert "王小明".encode() in raw
