"""The public lead form /forms/lead: bilingual, no sign-in; a honeypot, a signed time token
(too fast, stale or forged is refused), a per-address rate limit, and messages naming the
field. A good request becomes an unowned lead and the sales managers are told."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.notify.models import Notification
from guanxi.sales.models import Opportunity

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
GOOD = {
    "name": "陈女士",
    "company": "温州鞋业有限公司",
    "phone": "13912345678",
    "email": "",
    "message": "每月约 3000 票",
    "website": "",
}


def _count(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(Opportunity)) or 0)


def _token(client: Any, at: datetime, lang: str = "zh-CN") -> tuple[str, str]:
    with clock.frozen(at):
        page = client.get("/forms/lead", headers={"Accept-Language": lang})
    assert page.status_code == 200
    match = re.search(r'name="token" value="([^"]+)"', page.text)
    assert match
    return match.group(1), page.text


def _send(client: Any, at: datetime, data: dict[str, str], lang: str = "zh-CN") -> Any:
    with clock.frozen(at):
        return client.post(
            "/forms/lead", data=data, headers={"Accept-Language": lang}, follow_redirects=False
        )


def test_a_good_request_becomes_a_lead_and_managers_hear_of_it(
    client: Any, db: Session, make_user: Any
) -> None:
    manager = make_user("manager")
    token, page = _token(client, T0)
    assert "联系我们的销售团队" in page
    assert 'name="website"' in page  # the honeypot is there, hidden from people
    resp = _send(client, T0 + timedelta(seconds=20), {**GOOD, "token": token})
    assert (resp.status_code, resp.headers["location"]) == (303, "/forms/lead/thanks")
    db.expire_all()
    [lead] = db.scalars(select(Opportunity)).all()
    assert (lead.source, lead.owner_id, lead.customer_id, lead.title) == (
        "web_form",
        None,
        None,
        "温州鞋业有限公司 · 网站咨询",
    )
    assert db.scalars(select(Notification.key).where(Notification.user_id == manager.id)).all() == [
        f"sales_lead:{lead.id}"
    ]
    thanks = client.get("/forms/lead/thanks", headers={"Accept-Language": "en"})
    assert "Thank you!" in thanks.text


def test_robots_are_refused(client: Any, db: Session) -> None:
    token, _ = _token(client, T0)
    # The honeypot filled: thanked, nothing kept.
    resp = _send(
        client, T0 + timedelta(seconds=20), {**GOOD, "website": "http://spam", "token": token}
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/forms/lead/thanks")
    # Too fast to be typed.
    resp = _send(client, T0 + timedelta(seconds=2), {**GOOD, "token": token})
    assert resp.status_code == 422
    assert "快得不像人工填写" in resp.text
    # A stale page.
    resp = _send(client, T0 + timedelta(hours=3), {**GOOD, "token": token}, lang="en")
    assert resp.status_code == 422
    assert "The form has expired: please send it again" in resp.text
    # A forged or missing token.
    for forged in (token[:-2] + "xx", ""):
        resp = _send(client, T0 + timedelta(seconds=20), {**GOOD, "token": forged}, lang="en")
        assert resp.status_code == 422
    assert _count(db) == 0


def test_fields_are_validated_by_name(client: Any, db: Session) -> None:
    token, _ = _token(client, T0, lang="en")
    at = T0 + timedelta(seconds=30)
    resp = _send(client, at, {**GOOD, "name": "", "phone": "12345", "token": token}, lang="en")
    assert resp.status_code == 422
    assert re.search(r'id="e-name" role="alert">Your name: [^<]+<', resp.text)
    assert 'id="e-phone" role="alert">Phone: Not a valid phone number<' in resp.text
    # What was typed is kept.
    assert 'value="温州鞋业有限公司"' in resp.text
    resp = _send(client, at, {**GOOD, "email": "not-mail", "token": token}, lang="zh-CN")
    assert resp.status_code == 422
    assert 'id="e-email" role="alert">电子邮箱（选填）: 电子邮箱地址无效<' in resp.text
    assert _count(db) == 0


def test_each_address_has_a_budget(client: Any, db: Session) -> None:
    token, _ = _token(client, T0)
    codes = [
        _send(client, T0 + timedelta(seconds=10 + n), {**GOOD, "token": token}).status_code
        for n in range(6)
    ]
    assert codes == [303, 303, 303, 303, 303, 429]
    assert _count(db) == 5
