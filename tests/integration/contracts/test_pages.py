"""The contract pages: list, new contract form (percentages and yuan typed by people),
refusals beside their fields in the user's language, the contract page's actions and
history, documents, the report, the 360 panel and the policy form."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.contracts.models import Contract, ContractAmendment, ContractDocument
from guanxi.core import clock
from tests.conftest import PASSWORD

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _sign_in(client: Any, username: str, lang: str = "zh_CN") -> str:
    client.cookies.set("guanxi_lang", lang)
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 200
    page = client.get("/contracts")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def _form(csrf: str, customer_id: int | None = None, **kw: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "title": "年度快递服务协议",
        "discount_pct": "12.5",
        "commit_shipments": "3000",
        "commit_revenue": "50000.50",
        "start_date": "2026-11-01",
        "end_date": "2027-10-31",
        "reminder_days": "",
        "notes": "",
        **kw,
    }
    if customer_id is not None:
        data["customer_id"] = str(customer_id)
    return data


def test_create_amend_activate_and_terminate_through_the_pages(
    client: Any, db: Session, seller: Any, firm: Any
) -> None:
    csrf = _sign_in(client, seller.username)
    page = client.get(f"/contracts/new?customer_id={firm.id}")
    assert page.status_code == 200
    assert "杭州云栖电子商务有限公司" in page.text

    # A discount that is no percentage is refused beside its field, in Chinese.
    resp = client.post(
        "/contracts",
        data={**_form(csrf, firm.id, discount_pct="150"), "owner_id": str(seller.id)},
    )
    assert resp.status_code == 422
    assert "<li>折扣: 请填写 0 到 100 之间的百分比，最多两位小数</li>" in resp.text
    assert 'id="e-discount_bp"' in resp.text
    assert db.scalar(select(func.count(Contract.id))) == 0
    # A customer number beyond any id is refused too (not looked up).
    resp = client.post(
        "/contracts",
        data={**_form(csrf), "customer_id": "9" * 20, "owner_id": str(seller.id)},
    )
    assert resp.status_code == 422
    assert 'id="e-customer_id"' in resp.text

    with clock.frozen(NOW):
        resp = client.post(
            "/contracts",
            data={**_form(csrf, firm.id, auto_renew="on"), "owner_id": str(seller.id)},
            follow_redirects=False,
        )
    assert resp.status_code == 303
    contract = db.scalars(select(Contract)).one()
    assert resp.headers["location"] == f"/contracts/{contract.id}?saved=1"
    assert (
        contract.number,
        contract.discount_bp,
        contract.commit_shipments,
        contract.commit_revenue_fen,
        contract.auto_renew,
        contract.status,
    ) == ("CT-202611-0001", 1250, 3000, 5_000_050, True, "draft")

    page = client.get(f"/contracts/{contract.id}")
    assert page.status_code == 200
    assert 'id="activate"' in page.text
    resp = client.post(
        f"/contracts/{contract.id}/activate",
        data={"csrf_token": csrf, "version": "1"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.refresh(contract)
    assert contract.status == "active"

    # Amending without a reason is refused; with one it is in the history.
    amend = {
        **_form(csrf, discount_pct="15", auto_renew="on"),
        "owner_id": str(seller.id),
        "version": str(contract.version),
    }
    resp = client.post(f"/contracts/{contract.id}", data=amend)
    assert resp.status_code == 422
    assert "请说明变更生效合同的原因" in resp.text
    resp = client.post(
        f"/contracts/{contract.id}",
        data={**amend, "reason": "客户月发货量提升"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = client.get(f"/contracts/{contract.id}")
    assert 'data-amendment="' in page.text
    assert "<li>折扣: 12.5 % → 15 %</li>" in page.text
    assert "客户月发货量提升" in page.text

    db.refresh(contract)
    resp = client.post(
        f"/contracts/{contract.id}/terminate",
        data={
            "csrf_token": csrf,
            "version": str(contract.version),
            "ended_on": "2026-11-30",
            "terminate_reason": "",
        },
    )
    assert resp.status_code == 422
    assert 'id="e-terminate_reason"' in resp.text
    resp = client.post(
        f"/contracts/{contract.id}/terminate",
        data={
            "csrf_token": csrf,
            "version": str(contract.version),
            "ended_on": "2026-11-30",
            "terminate_reason": "客户停业",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.refresh(contract)
    assert (contract.status, contract.ended_on) == ("terminated", date(2026, 11, 30))
    assert db.scalar(select(func.count(ContractAmendment.id))) == 2


def test_documents_report_panel_and_policy_pages(
    client: Any, db: Session, make_user: Any, make_contract: Any, seller: Any, firm: Any
) -> None:
    contract = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31), commit_shipments=10)
    manager = make_user("manager")
    csrf = _sign_in(client, manager.username, lang="en")
    resp = client.post(
        f"/contracts/{contract.id}/documents",
        data={"csrf_token": csrf},
        files={"file": ("签约版.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    doc = db.scalars(select(ContractDocument)).one()
    page = client.get(f"/contracts/{contract.id}")
    assert f'href="/api/v1/contracts/documents/{doc.id}"' in page.text
    resp = client.post(
        f"/contracts/{contract.id}/documents",
        data={"csrf_token": csrf},
        files={"file": ("evil.html", b"<script>x</script>", "text/html")},
    )
    assert resp.status_code == 422
    assert db.scalar(select(func.count(ContractDocument.id))) == 1

    with clock.frozen(NOW):
        report = client.get("/contracts/report?month=2026-11")
        bad = client.get("/contracts/report?month=11-2026")
    assert report.status_code == 200
    assert f'data-contract="{contract.id}" class="below"' in report.text
    assert "1 contracts, 1 below commitment" in report.text
    assert bad.status_code == 422
    assert "Give a month like 2026-11" in bad.text

    customer_page = client.get(f"/customers/{firm.id}")
    assert f'hx-get="/customers/{firm.id}/contracts"' in customer_page.text
    panel = client.get(f"/customers/{firm.id}/contracts")
    assert f'data-contract="{contract.id}"' in panel.text
    assert f"/contracts/new?customer_id={firm.id}" in panel.text

    resp = client.post("/contracts/policy", data={"csrf_token": csrf, "reminder_days": "0"})
    assert resp.status_code == 422
    assert "Must be at least 1" in resp.text
    resp = client.post(
        "/contracts/policy",
        data={"csrf_token": csrf, "reminder_days": "45"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert client.get("/api/v1/contracts/policy").json() == {"reminder_days": 45}


def test_pages_by_role(
    client: Any, db: Session, make_user: Any, make_contract: Any, seller: Any, firm: Any
) -> None:
    contract = make_contract(firm, date(2026, 1, 1), date(2026, 12, 31))
    agent = make_user("agent")
    csrf = _sign_in(client, agent.username)
    # Agents read contracts (they see every customer) but write none.
    assert client.get(f"/contracts/{contract.id}").status_code == 200
    assert 'id="contract-form"' not in client.get(f"/contracts/{contract.id}").text
    assert client.get("/contracts/new").status_code == 403
    resp = client.post(f"/contracts/{contract.id}/renew", data={"csrf_token": csrf})
    assert resp.status_code == 403
    assert db.scalar(select(func.count(Contract.id))) == 1
    client.cookies.clear()
    other = make_user("sales")
    _sign_in(client, other.username)
    assert client.get(f"/contracts/{contract.id}").status_code == 404
    assert f'data-contract="{contract.id}"' not in client.get("/contracts").text
    # The customer's salesperson reads the manager's contract but may not change it;
    # another manager (not its owner) may, holding sales.manage.
    client.cookies.clear()
    _sign_in(client, seller.username)
    page = client.get(f"/contracts/{contract.id}")
    assert page.status_code == 200
    assert 'id="contract-form"' not in page.text
    client.cookies.clear()
    _sign_in(client, make_user("manager").username)
    assert 'id="contract-form"' in client.get(f"/contracts/{contract.id}").text


def test_list_and_report_pages_query_a_fixed_number_of_times(
    client: Any,
    db: Session,
    engine: Any,
    make_customer: Any,
    make_contract: Any,
    seller: Any,
    manager: Any,
) -> None:
    from sqlalchemy import event

    _sign_in(client, manager.username)
    counts: dict[str, list[int]] = {"/contracts": [], "/contracts/report?month=2026-11": []}
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    made = 0
    for batch in (2, 12):
        for n in range(batch - made):
            customer = make_customer(f"批量{batch}-{n}公司", kind="enterprise", owner_id=seller.id)
            make_contract(customer, date(2026, 1, 1), date(2026, 12, 31), commit_shipments=5)
        made = batch
        for url, found in counts.items():
            statements.clear()
            event.listen(engine, "before_cursor_execute", count)
            try:
                with clock.frozen(NOW):
                    assert client.get(url).status_code == 200
            finally:
                event.remove(engine, "before_cursor_execute", count)
            found.append(len(statements))
    # No query per contract: the same count for 2 and 12 contracts.
    assert [c[0] == c[1] for c in counts.values()] == [True, True], counts
