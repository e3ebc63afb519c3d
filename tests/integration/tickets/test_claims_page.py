"""The claims pages on both databases: the tabs with their amounts, a claim's standard and
how it was computed, approval limits enforced through the page (with the limit named in
the user's language and nothing changed), payout, evidence uploads, the ticket page's
attachments section and filing a claim from a ticket."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.tickets import claims, service
from guanxi.tickets.enums import ClaimReason
from guanxi.tickets.models import Attachment, Claim
from guanxi.tickets.schemas import TicketCreate
from tests.conftest import PASSWORD
from tests.integration.tickets.test_attachments import PE, png, shipment

ZH = {"Accept-Language": "zh-CN"}


def _sign_in(client: Any, username: str) -> str:
    client.cookies.clear()
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 200
    page = client.get("/tickets/new")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def _ids(page: str) -> list[int]:
    table = page.split('id="claims"', 1)[1].split("</table>", 1)[0] if 'id="claims"' in page else ""
    return list(dict.fromkeys(int(i) for i in re.findall(r'href="/claims/(\d+)"', table)))


def _claim_actions(db: Session, claim_id: int) -> list[str]:
    return list(
        db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == "claim", AuditEntry.target_id == str(claim_id))
            .order_by(AuditEntry.id)
        )
    )


def test_the_list_shows_each_tab_with_amounts_in_yuan(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    agent, admin = make_user("agent"), make_user("admin")
    customer = make_customer(name="理赔列表客户")
    shipment(db, agent, customer, "SFLIST00001", fee=1500, insured=0)
    shipment(db, agent, customer, "SFLIST00002", fee=2000, insured=300_000)

    def file(no: str, fen: int, reason: ClaimReason = ClaimReason.damage) -> Claim:
        return claims.file_claim(db, waybill_no=no, reason=reason, requested_fen=fen, actor=agent)

    waiting = file("SFLIST00001", 10_000)  # standard: 3 x 15 元 = 45 元
    approved = file("SFLIST00002", 123_456, ClaimReason.loss)
    claims.decide(db, claim_id=approved.id, approve=True, actor=admin)
    paid = file("SFLIST00002", 5_000)
    claims.decide(db, claim_id=paid.id, approve=True, actor=admin)
    claims.mark_paid(db, claim_id=paid.id, payout_ref="BANK-1", actor=admin)
    rejected = file("SFLIST00001", 800)
    claims.decide(db, claim_id=rejected.id, approve=False, actor=admin, note="无损失证明")

    _sign_in(client, agent.username)
    page = client.get("/claims", headers=ZH)
    assert page.status_code == 200
    assert _ids(page.text) == [waiting.id]
    assert "待审批 (1)" in page.text
    assert "已批准待赔付 (1)" in page.text
    row = page.text.split('id="claims"', 1)[1]
    for text in ("SFLIST00001", "理赔列表客户", "破损", "100.00", "45.00", "0 分钟"):
        assert text in row
    assert '<strong id="my-limit">¥200.00</strong>' in page.text
    assert '<a href="/claims"' in page.text  # the nav link

    approved_tab = client.get("/claims?tab=approved", headers=ZH).text
    assert _ids(approved_tab) == [approved.id]
    assert "1,234.56" in approved_tab  # requested and approved (insured: up to 3,000 元)
    assert _ids(client.get("/claims?tab=paid").text) == [paid.id]
    assert _ids(client.get("/claims?tab=rejected").text) == [rejected.id]
    assert client.get("/claims?tab=everything").status_code == 422

    sales = make_user("sales")
    _sign_in_sales = client.post(
        "/login", data={"username": sales.username, "password": PASSWORD, "next": "/"}
    )
    assert _sign_in_sales.status_code == 200
    assert client.get("/claims").status_code == 403
    assert 'href="/claims"' not in client.get("/customers").text


def test_approval_limits_are_enforced_through_the_page(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent", display_name="客服 李娜")
    manager = make_user("manager", display_name="主管 王芳")
    customer = make_customer(name="限额客户")
    shipment(db, agent, customer, "SFLIMIT0001", fee=10_000, insured=0)
    claim = claims.file_claim(
        db, waybill_no="SFLIMIT0001", reason=ClaimReason.loss, requested_fen=30_000, actor=agent
    )
    assert claim.standard_fen == 30_000  # 300 元: above the agent's 200 元

    csrf = _sign_in(client, agent.username)
    page = client.get(f"/claims/{claim.id}", headers=ZH)
    assert '<strong id="approver-limit">¥200.00</strong>' in page.text
    assert "标准赔偿金额" in page.text
    assert "未保价：按实际损失赔偿，最高不超过运费 ¥100.00 的 3 倍。" in page.text
    assert "标准金额超出您的审批权限" in page.text

    url = f"/claims/{claim.id}/decision"
    for amount in ("", "300", "200.01"):
        refused = client.post(
            url, data={"csrf_token": csrf, "decision": "approve", "amount": amount}, headers=ZH
        )
        assert refused.status_code == 422
        assert '<p class="error" id="e-amount" role="alert">超出您的审批权限 ¥200.00</p>' in (
            refused.text
        )
    english = client.post(
        url,
        data={"csrf_token": csrf, "decision": "approve", "amount": "250"},
        headers={"Accept-Language": "en"},
    )
    assert "Above your approval limit of ¥200.00" in english.text
    bad = client.post(
        url, data={"csrf_token": csrf, "decision": "approve", "amount": "两百"}, headers=ZH
    )
    assert bad.status_code == 422
    assert "不是以元为单位的金额（最多两位小数）" in bad.text
    no_csrf = client.post(url, data={"decision": "approve", "amount": "100"})
    assert no_csrf.status_code == 403
    db.expire_all()
    unchanged = db.get(Claim, claim.id)
    assert unchanged is not None
    assert (unchanged.status, unchanged.approved_fen, unchanged.version) == ("submitted", None, 1)
    assert _claim_actions(db, claim.id) == ["claim.submitted"]

    csrf = _sign_in(client, manager.username)
    assert (
        '<strong id="approver-limit">¥5,000.00</strong>' in client.get(f"/claims/{claim.id}").text
    )
    above = client.post(
        url, data={"csrf_token": csrf, "decision": "approve", "amount": "300.01"}, headers=ZH
    )
    assert above.status_code == 422
    assert '<p class="error" id="e-amount" role="alert">超过公布的赔偿标准</p>' in above.text
    done = client.post(
        url,
        data={"csrf_token": csrf, "decision": "approve", "amount": "280.50", "note": "核实丢失"},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, f"/claims/{claim.id}")
    again = client.post(url, data={"csrf_token": csrf, "decision": "reject"}, headers=ZH)
    assert again.status_code == 409
    assert '<p class="error banner" role="alert" id="claim-error">该理赔已处理（已批准）</p>' in (
        again.text
    )

    pay_url = f"/claims/{claim.id}/payout"
    short = client.post(pay_url, data={"csrf_token": csrf, "payout_ref": "x"}, headers=ZH)
    assert short.status_code == 422
    assert '<p class="error" id="e-payout_ref" role="alert">内容过短</p>' in short.text
    paid = client.post(
        pay_url, data={"csrf_token": csrf, "payout_ref": "WX-20261125-0001"}, follow_redirects=False
    )
    assert paid.status_code == 303
    db.expire_all()
    final = db.get(Claim, claim.id)
    assert final is not None
    assert (final.status, final.approved_fen, final.payout_ref, final.decided_by) == (
        "paid",
        28_050,
        "WX-20261125-0001",
        manager.id,
    )
    assert _claim_actions(db, claim.id) == ["claim.submitted", "claim.approved", "claim.paid"]
    shown = client.get(f"/claims/{claim.id}", headers=ZH).text
    assert '<dd class="mono" id="claim-payout">WX-20261125-0001</dd>' in shown
    assert 'id="decision-form"' not in shown
    assert 'id="payout-form"' not in shown


def test_a_rejection_with_its_note(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent")
    customer = make_customer(name="拒赔客户")
    shipment(db, agent, customer, "SFREJECT001", fee=1000, insured=0)
    claim = claims.file_claim(
        db, waybill_no="SFREJECT001", reason=ClaimReason.delay, requested_fen=1000, actor=agent
    )
    csrf = _sign_in(client, agent.username)
    resp = client.post(
        f"/claims/{claim.id}/decision",
        data={"csrf_token": csrf, "decision": "reject", "note": "延误未超过承诺时限"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.expire_all()
    row = db.get(Claim, claim.id)
    assert row is not None
    assert (row.status, row.approved_fen, row.decision_note) == (
        "rejected",
        None,
        "延误未超过承诺时限",
    )
    page = client.get(f"/claims/{claim.id}", headers=ZH).text
    assert '<span class="pill bad" id="claim-status">已拒绝</span>' in page


def test_evidence_is_uploaded_on_the_claim_page(
    client: Any, db: Session, make_user: Any, make_customer: Any, app: Any
) -> None:
    agent = make_user("agent", display_name="客服 李娜")
    customer = make_customer(name="证据客户")
    shipment(db, agent, customer, "SFPROOF0001", fee=1000, insured=0)
    claim = claims.file_claim(
        db, waybill_no="SFPROOF0001", reason=ClaimReason.damage, requested_fen=1000, actor=agent
    )
    csrf = _sign_in(client, agent.username)
    url = f"/claims/{claim.id}/attachments"
    data = png(pad=10)
    ok = client.post(
        url,
        data={"csrf_token": csrf},
        files={"file": ("破损外箱.png", data, "image/png")},
        follow_redirects=False,
    )
    assert (ok.status_code, ok.headers["location"]) == (303, f"/claims/{claim.id}#evidence")
    row = db.scalars(select(Attachment).where(Attachment.claim_id == claim.id)).one()
    page = client.get(f"/claims/{claim.id}", headers=ZH).text
    assert f'<a href="/api/v1/attachments/{row.id}" download>破损外箱.png</a>' in page
    assert "客服 李娜" in page
    assert client.get(f"/api/v1/attachments/{row.id}").content == data

    refused = client.post(
        url,
        data={"csrf_token": csrf},
        files={"file": ("发票.jpg", PE, "image/jpeg")},
        headers=ZH,
    )
    assert refused.status_code == 422
    assert '<p class="error" id="e-file" role="alert">文件内容与文件名不符（.jpg）</p>' in (
        refused.text
    )
    huge = client.post(
        url,
        data={"csrf_token": csrf},
        files={"file": ("huge.png", png(pad=11 * 1024 * 1024), "image/png")},
        headers=ZH,
    )
    assert huge.status_code == 413
    assert '<p class="error" role="alert" id="upload-error">文件大于 10 MiB</p>' in huge.text
    assert f'href="/claims/{claim.id}"' in huge.text
    assert db.scalar(select(func.count(Attachment.id))) == 1
    stored = [
        p for p in (Path(app.state.settings.data_dir) / "attachments").rglob("*") if p.is_file()
    ]
    assert len(stored) == 1


def test_the_ticket_page_lists_files_and_files_a_claim(
    client: Any, db: Session, make_user: Any, make_customer: Any
) -> None:
    agent = make_user("agent", display_name="客服 李娜")
    customer = make_customer(name="工单理赔客户")
    shipment(db, agent, customer, "SFTICKET001", fee=2000, insured=0)
    ticket = service.create_ticket(
        db,
        ticket_in=TicketCreate(
            type="claim",  # type: ignore[arg-type]
            channel="hotline",  # type: ignore[arg-type]
            subject="外箱破损要求赔偿",
            customer_id=customer.id,
            waybill_no="SFTICKET001",
        ),
        actor=agent,
    )
    csrf = _sign_in(client, agent.username)
    page = client.get(f"/tickets/{ticket.id}", headers=ZH).text
    assert f'hx-get="/tickets/{ticket.id}/attachments"' in page

    url = f"/tickets/{ticket.id}/attachments"
    ok = client.post(
        url,
        data={"csrf_token": csrf},
        files={
            "file": (
                "通话录音.mp3",
                b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 50,
                "audio/mpeg",
            )
        },
        follow_redirects=False,
    )
    assert (ok.status_code, ok.headers["location"]) == (303, f"/tickets/{ticket.id}#attachments")
    refused = client.post(
        url,
        data={"csrf_token": csrf},
        files={"file": ("notes.txt", b"<html><script>alert(1)</script></html>", "text/plain")},
        follow_redirects=False,
    )
    assert refused.status_code == 303
    assert (
        refused.headers["location"] == f"/tickets/{ticket.id}?error=attachment_refused#attachments"
    )
    shown = client.get(refused.headers["location"].split("#")[0], headers=ZH).text
    banner = '<p class="error banner" role="alert" id="ticket-error">{}</p>'
    assert banner.format("不能上传程序、脚本、网页或带宏的文档") in shown

    fragment = client.get(url, headers={**ZH, "HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "通话录音.mp3" in fragment.text
    assert "客服 李娜" in fragment.text
    assert f'href="/claims/new?ticket_id={ticket.id}"' in fragment.text
    assert "此工单尚未提交理赔。" in fragment.text
    assert "<html" in client.get(url).text  # without htmx: a page of its own

    form = client.get(f"/claims/new?ticket_id={ticket.id}", headers=ZH).text
    assert 'value="SFTICKET001"' in form
    assert f'name="ticket_id" value="{ticket.id}"' in form
    data = {"csrf_token": csrf, "ticket_id": str(ticket.id), "waybill_no": "SFTICKET001"}
    missing = client.post("/claims", data={**data, "reason": "damage", "requested": ""}, headers=ZH)
    assert missing.status_code == 422
    assert '<p class="error" id="e-requested" role="alert">必须大于 0</p>' in missing.text
    unknown = client.post(
        "/claims",
        data={**data, "waybill_no": "SFNOSUCH001", "reason": "damage", "requested": "50"},
        headers=ZH,
    )
    assert unknown.status_code == 422
    assert '<p class="error" id="e-waybill_no" role="alert">' in unknown.text
    filed = client.post(
        "/claims",
        data={**data, "reason": "damage", "requested": "¥80.5", "evidence": "外箱压坏"},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    claim = db.scalars(select(Claim).where(Claim.ticket_id == ticket.id)).one()
    assert filed.headers["location"] == f"/claims/{claim.id}"
    assert (claim.requested_fen, claim.standard_fen, claim.reason, claim.evidence) == (
        8050,
        6000,
        "damage",
        "外箱压坏",
    )
    fragment = client.get(url, headers={**ZH, "HX-Request": "true"}).text
    assert f'<a href="/claims/{claim.id}">理赔 #{claim.id}</a>' in html.unescape(fragment)
