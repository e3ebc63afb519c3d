"""The record of processing: built from the field declarations, the retention policies,
the configured recipients and the consent purposes; JSON and CSV downloads are audited;
the page for privacy readers."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.notify.webhooks import create_endpoint
from guanxi.privacy.fields import FIELDS
from guanxi.privacy.processing import CSV_HEADER, build_record
from guanxi.privacy.retention import PolicyUpdate, update_policy
from tests.conftest import PASSWORD, settings_for


def _settings(engine: Any, tmp_path: Any, **changes: Any) -> Any:
    base = settings_for(engine.url.render_as_string(hide_password=False), tmp_path)
    return base.model_copy(update=changes)


def test_the_record_is_built_from_the_declarations(db: Session, engine: Any, tmp_path: Any) -> None:
    update_policy(
        db, category="outbox_contents", policy_in=PolicyUpdate(keep_days=90),
        actor=Actor.system("test"), user_id=None,
    )  # fmt: skip
    settings = _settings(
        engine, tmp_path, sms_provider="aliyun", sms_key_id="k", sms_key_secret="s"
    )
    data = build_record(db, settings=settings, lang="en")
    assert len(data["fields"]) == len(FIELDS)
    body = next(
        f for f in data["fields"] if (f["table"], f["column"]) == ("outbox_message", "body")
    )
    assert body["retention"] == {
        "rule": "outbox_contents",
        "label": "Contents of sent messages",
        "keep_days": 90,
        "counts_from": "after sending; text and address cleared, metadata kept",
        "enabled": True,
    }
    real_name = next(a for a in data["activities"] if a["purpose"] == "real_name")
    assert "customer.id_number_enc" in real_name["sensitive_fields"]
    assert real_name["bases"] == ["contract", "legal_obligation"]
    assert real_name["recipients"] == []
    delivery = next(a for a in data["activities"] if a["purpose"] == "delivery")
    assert delivery["recipients"] == ["Alibaba Cloud SMS (阿里云短信)"]
    assert data["recipients"] == [
        {
            "kind": "sms",
            "name": "Alibaba Cloud SMS (阿里云短信)",
            "purposes": ["delivery", "service", "surveys", "marketing"],
            "data": "phone number, template parameters",
            "cross_border": False,
        }
    ]
    assert data["cross_border"] == "no"
    assert [c["purpose"] for c in data["consent_purposes"] if c["opt_in"]] == [
        "marketing_sms",
        "marketing_email",
        "third_party",
        "cross_border",
    ]
    kept = {r["category"]: r["keep_days"] for r in data["retention"]}
    assert kept["outbox_contents"] == 90
    assert kept["audit_log"] is None
    # Chinese labels on request.
    zh = build_record(db, settings=settings, lang="zh_CN")
    assert next(a for a in zh["activities"] if a["purpose"] == "real_name")["label"] == "实名收寄"


def test_smtp_and_webhooks_are_recipients_to_confirm(
    db: Session, engine: Any, tmp_path: Any
) -> None:
    create_endpoint(
        db, name="ERP", url="https://erp.example.com/hook", events=["consent.withdrawn"],
        actor=Actor.system("test"),
    )  # fmt: skip
    settings = _settings(engine, tmp_path, smtp_host="smtp.example.com")
    data = build_record(db, settings=settings, lang="en")
    assert [(r["kind"], r["name"], r["cross_border"]) for r in data["recipients"]] == [
        ("smtp", "smtp.example.com", None),
        ("webhook", "ERP (erp.example.com)", None),
    ]
    assert data["cross_border"] == "to_confirm"


def _web_login(client: Any, user: Any) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    data = {"username": user.username, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    client.post("/login", data=data)


def test_downloads_are_audited_and_complete(client: Any, login: Any, db: Session) -> None:
    auditor, headers = login("auditor")
    resp = client.get("/api/v1/privacy/processing?format=json", headers=headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert re.fullmatch(
        r'attachment; filename="record-of-processing-\d{8}\.json"',
        resp.headers["content-disposition"],
    )
    data = json.loads(resp.content)
    assert len(data["fields"]) == len(FIELDS)
    resp = client.get("/api/v1/privacy/processing?format=csv", headers=headers)
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 1 + len(FIELDS)
    id_number = next(r for r in rows if r[:2] == ["customer", "id_number_enc"])
    assert id_number[2:8] == [
        "identity",
        "yes",
        "real_name",
        "legal_obligation",
        "archived_customers",
        "1095",
    ]
    bad = client.get("/api/v1/privacy/processing?format=xml", headers=headers)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["query.format"]
    entries = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "privacy.processing_exported")
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.actor_id, e.target_id, (e.after or {})["format"]) for e in entries] == [
        (auditor.id, "json", "json"),
        (auditor.id, "csv", "csv"),
    ]


def test_the_page_shows_the_record_and_links_the_downloads(
    client: Any, make_user: Any, db: Session
) -> None:
    officer = make_user("privacy_officer")
    _web_login(client, officer)
    page = client.get("/privacy/processing")
    assert page.status_code == 200
    assert "个人信息处理活动记录" in page.text
    assert "customer.id_number_enc" in page.text
    assert 'href="/privacy/processing/download?format=csv"' in page.text
    assert "未配置任何外部接收方。" in page.text
    # Viewing the page is not an export; downloading is.
    assert (
        db.scalars(
            select(AuditEntry).where(AuditEntry.action == "privacy.processing_exported")
        ).all()
        == []
    )
    download = client.get("/privacy/processing/download?format=csv")
    assert download.status_code == 200
    assert download.text.splitlines()[0] == ",".join(CSV_HEADER)
    assert client.get("/privacy/processing/download?format=pdf").status_code == 422
    assert (
        len(
            db.scalars(
                select(AuditEntry).where(AuditEntry.action == "privacy.processing_exported")
            ).all()
        )
        == 1
    )
