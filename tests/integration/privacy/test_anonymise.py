"""Deletion as anonymisation leaves no plaintext anywhere: canary strings planted in every
place a customer's data lives are gone from every text column of every table and from
every file under the data directory, while the aggregates stay."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import JSON, Engine, LargeBinary, String, Text, func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry, AuditSubjectKey
from guanxi.audit.sealing import is_sealed, subject_of, unseal
from guanxi.audit.service import Actor, verify
from guanxi.core.db import Base, make_sessionmaker
from guanxi.customers.models import Customer, CustomerAddress, SearchToken
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.privacy.anonymise import ANON, anonymise_customers
from guanxi.privacy.models import Anonymisation
from tests.conftest import settings_for
from tests.helpers import resident_id

NAME = "金丝雀甲乙"
CONTACT = "雀联系人丙"
PHONE = "+8613912345678"
CONTACT_PHONE = "+8613787654321"
EMAIL = "canary.person@example.com"
ID_NUMBER = resident_id("110101", "19900307", "456")
ADDRESS = "金丝雀路八十八号三单元"
NOTES = "CANARY-NOTE-备注金丝雀"
TICKET_TEXT = "CANARY-TICKET-快递丢了金丝雀"
RECEIVER = "收件人金丝雀"
SURVEY_TEXT = "CANARY-SURVEY-很不满意"
INTERACTION = "CANARY-CALL-电话回访"
MESSAGE = "CANARY-SMS-尊敬的客户"
FILE_TEXT = "CANARY-FILE-附件内容"

# Values that are never written to the audit log in clear (masked there).
IDENTIFIERS = [PHONE[3:], CONTACT_PHONE[3:], EMAIL, ID_NUMBER]
CANARIES = [
    NAME,
    CONTACT,
    ADDRESS,
    NOTES,
    TICKET_TEXT,
    RECEIVER,
    SURVEY_TEXT,
    INTERACTION,
    MESSAGE,
    FILE_TEXT,
    *IDENTIFIERS,
]

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def world(committed_engine: Engine, tmp_path: Path) -> Iterator[tuple[Session, Any]]:
    settings = settings_for(committed_engine.url.render_as_string(hide_password=False), tmp_path)
    with make_sessionmaker(committed_engine)() as session:
        yield session, settings


def _store_file(root: Path, text: str) -> tuple[str, str, int]:
    data = text.encode()
    key = os.urandom(16).hex()  # the attachments' key form
    path = root / "attachments" / key[:2] / key[2:4] / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return key, hashlib.sha256(data).hexdigest(), len(data)


def _plant(session: Session, data_dir: Path) -> tuple[int, int, int]:
    """A customer with canaries everywhere, a record merged into it, and a bystander.
    Returns their ids."""
    from guanxi.analytics.models import AnalyticsRun, TermWeek
    from guanxi.contracts.models import Contract, ContractAmendment, ContractDocument
    from guanxi.dedupe.models import CustomerMerge, DuplicatePair
    from guanxi.imports.models import ImportJob, ImportRowError
    from guanxi.interactions.models import ActionItem, Interaction
    from guanxi.loyalty.models import PointsEntry
    from guanxi.notify.models import Notification, OutboxMessage
    from guanxi.pool.models import PoolEvent
    from guanxi.sales.models import Opportunity
    from guanxi.security.crypto import cipher
    from guanxi.security.models import User
    from guanxi.shipments.models import Shipment, ShipmentEvent
    from guanxi.surveys.models import (
        SurveyAnswer,
        SurveyQuestion,
        SurveyResponse,
        SurveyTemplate,
        SurveyVersion,
    )
    from guanxi.tickets.models import Attachment, Claim, Ticket, TicketEvent

    actor = Actor.system("test")
    person = create_customer(
        session,
        customer_in=CustomerCreate(
            name=NAME,
            phones=[PHONE],
            email=EMAIL,
            id_number=ID_NUMBER,
            addresses=[{"province": "浙江省", "city": "杭州市", "detail": ADDRESS}],
            contacts=[{"name": CONTACT, "phone": CONTACT_PHONE}],
            notes=NOTES,
            region="华东",
        ),
        actor=actor,
    )
    bystander = create_customer(session, customer_in=CustomerCreate(name="旁观者"), actor=actor)
    duplicate = create_customer(
        session, customer_in=CustomerCreate(name=NAME + "二", notes=NOTES), actor=actor
    )
    pid = person.id
    user = User(username="canary_agent", display_name="agent", role="agent", password_hash="x")
    session.add(user)
    session.flush()
    ship = Shipment(
        waybill_no="SF100200300",
        customer_id=pid,
        receiver_name=RECEIVER,
        receiver_phone_enc=cipher().encrypt("phone", PHONE),
        dest_province="浙江省",
        dest_city="杭州市",
        fee_fen=1250,
        created_at=T0,
    )
    session.add(ship)
    session.flush()
    session.add(ShipmentEvent(shipment_id=ship.id, occurred_at=T0, status="signed", note=RECEIVER))
    ticket = Ticket(
        type="complaint",
        channel="phone",
        customer_id=pid,
        subject=f"{NAME} {TICKET_TEXT}",
        description=f"{TICKET_TEXT} {PHONE[3:]} {EMAIL}",
        contact_email_enc=cipher().encrypt("email", EMAIL),
        public_token_hash="a" * 64,
        category="lost",
        region="华东",
        satisfaction=2,
    )
    session.add(ticket)
    session.flush()
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            action="note",
            to_status="open",
            note=f"{TICKET_TEXT} 联系人电话 {CONTACT_PHONE[3:]}",
        )
    )
    claim = Claim(
        ticket_id=ticket.id,
        shipment_id=ship.id,
        customer_id=pid,
        reason="lost",
        requested_fen=5000,
        standard_fen=3000,
        evidence=TICKET_TEXT,
        decision_note=NAME,
        payout_ref=ID_NUMBER,
    )
    session.add(claim)
    session.flush()
    for owner in ({"ticket_id": ticket.id}, {"claim_id": claim.id}):
        key, digest, size = _store_file(data_dir, FILE_TEXT)
        session.add(
            Attachment(
                **owner,
                filename=f"{NAME}.txt",
                content_type="text/plain",
                size_bytes=size,
                sha256=digest,
                storage_key=key,
            )
        )
    interaction = Interaction(
        customer_id=pid,
        kind="call",
        occurred_at=T0,
        summary=INTERACTION,
        participants=CONTACT,
        outcome=INTERACTION,
    )
    session.add(interaction)
    session.flush()
    session.add(ActionItem(customer_id=pid, title=INTERACTION, due_on=date(2026, 3, 9)))
    template = SurveyTemplate(code="canary", name_zh="测", name_en="t", kind="csat")
    session.add(template)
    session.flush()
    version = SurveyVersion(template_id=template.id, number=1)
    session.add(version)
    session.flush()
    question = SurveyQuestion(
        version_id=version.id, position=1, code="q", kind="text", label_zh="意见", label_en="q"
    )
    session.add(question)
    session.flush()
    response = SurveyResponse(
        template_id=template.id,
        version_id=version.id,
        customer_id=pid,
        trigger="manual",
        channel="phone",
        reason=SURVEY_TEXT,
        phone_enc=cipher().encrypt("phone", PHONE),
        csat=2,
    )
    session.add(response)
    session.flush()
    session.add(
        SurveyAnswer(response_id=response.id, question_id=question.id, value_text=SURVEY_TEXT)
    )
    outbox = OutboxMessage(
        key="canary:sms:1",
        channel="sms",
        category="service",
        customer_id=pid,
        to_enc=cipher().encrypt("phone", PHONE),
        params=json.dumps({"name": NAME}, ensure_ascii=False),
        subject="",
        body=f"{MESSAGE}{NAME}",
        status="sent",
    )
    session.add(outbox)
    session.add(
        Opportunity(
            customer_id=pid,
            title=f"{NAME} 月结",
            stage="lead",
            source="manual",
            notes=NOTES,
            next_step=INTERACTION,
            contact_name_enc=cipher().encrypt("name", CONTACT),
            expected_revenue=100,
        )
    )
    contract = Contract(
        number="HT-CANARY-1",
        customer_id=pid,
        title=f"{NAME} 快递服务合同",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
        notes=NOTES,
    )
    session.add(contract)
    session.flush()
    session.add(
        ContractAmendment(
            contract_id=contract.id,
            changes=json.dumps({"notes": [None, NOTES]}, ensure_ascii=False),
            reason=NOTES,
            actor_label="test",
        )
    )
    key, digest, size = _store_file(data_dir, FILE_TEXT)
    session.add(
        ContractDocument(
            contract_id=contract.id,
            filename=f"{NAME}.pdf",
            content_type="application/pdf",
            size_bytes=size,
            sha256=digest,
            storage_key=key,
        )
    )
    session.add(PoolEvent(customer_id=pid, kind="released", note=NOTES))
    session.add(
        PointsEntry(
            customer_id=pid,
            kind="adjust",
            points=10,
            source_key="canary:1",
            occurred_at=T0,
            reason=NOTES,
        )
    )
    session.add(
        DuplicatePair(left_id=pid, right_id=bystander.id, probability=0.5, weight=1.0, rule="model")
    )
    session.add(
        CustomerMerge(
            survivor_id=pid,
            merged_id=duplicate.id,
            fields={"name": [NAME, NAME + "二"], "notes": [None, NOTES]},
            moved={},
            merged_status="active",
        )
    )
    job = ImportJob(kind="customers", file_name="客户.csv", file_sha256="0" * 64, mapping={})
    session.add(job)
    session.flush()
    session.add(
        ImportRowError(job_id=job.id, row=2, column="phone", value=PHONE[3:], code="x", message="m")
    )
    session.add(
        Notification(
            user_id=user.id,
            key="canary:1",
            kind="contract_renewal",
            subject=f"合同即将到期：{NAME}",
            body=f"客户 {NAME} 的合同",
        )
    )
    run = AnalyticsRun(as_of=T0)
    session.add(run)
    session.flush()
    session.add(TermWeek(run_id=run.id, week=date(2026, 3, 2), term=NAME, count=3, share=0.1))
    session.commit()
    # The local SMS gateway's file: the message and an unrelated one.
    sms = data_dir / "sms" / "outbox.jsonl"
    sms.parent.mkdir(parents=True, exist_ok=True)
    sms.write_text(
        json.dumps({"out_id": "canary:sms:1", "text": f"{MESSAGE}"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"out_id": "other:1", "text": "您的快件已签收"}, ensure_ascii=False)
        + "\n",
        "utf-8",
    )
    return pid, duplicate.id, bystander.id


def _db_hits(session: Session) -> dict[str, set[str]]:
    """Per canary, the table.column places where it occurs (JSON read back in clear)."""
    hits: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        columns = [
            c for c in table.columns if isinstance(c.type, String | Text | JSON | LargeBinary)
        ]
        if not columns:
            continue
        for row in session.execute(select(*columns)):
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                if isinstance(value, bytes):
                    text = value.decode("utf-8", "ignore")
                elif isinstance(value, str):
                    text = value
                else:
                    text = json.dumps(value, ensure_ascii=False)
                for canary in CANARIES:
                    if canary in text:
                        hits.setdefault(canary, set()).add(f"{table.name}.{column.name}")
    return hits


def _sealed_values(session: Session, *customer_ids: int) -> list[str]:
    """The sealed texts about these customers in the audit entries' before/after, in
    entry order."""
    wanted = {("customer", str(i)) for i in customer_ids}
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif is_sealed(value) and subject_of(value) in wanted:
            out.append(value)

    for before, after in session.execute(
        select(AuditEntry.before, AuditEntry.after).order_by(AuditEntry.id)
    ):
        walk(before)
        walk(after)
    return out


def _file_hits(data_dir: Path) -> dict[str, set[str]]:
    """Per canary, the files under the data directory that hold it (parquet read back)."""
    hits: dict[str, set[str]] = {}
    for folder, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(folder) / name
            if path.suffix == ".parquet":
                text = json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False, default=str)
            else:
                text = path.read_bytes().decode("utf-8", "ignore")
            for canary in CANARIES:
                if canary in text:
                    hits.setdefault(canary, set()).add(str(path.relative_to(data_dir)))
    return hits


def test_no_canary_survives_anonymisation(world: tuple[Session, Any]) -> None:
    from guanxi.analytics.runner import snapshot_for
    from guanxi.shipments.models import Shipment
    from guanxi.tickets.models import Ticket

    session, settings = world
    data_dir = Path(settings.data_dir)
    pid, merged, bystander = _plant(session, data_dir)
    snapshot_for(settings).refresh()

    before = _db_hits(session)
    # The scan sees every canary before: otherwise its silence afterwards proves nothing.
    # (The files' text is in files only.)
    assert sorted(before) == sorted(set(CANARIES) - {FILE_TEXT})
    # The audit log holds the person's texts sealed, readable while the key lives.
    sealed_before = _sealed_values(session, pid, merged)
    assert {unseal(session, v) for v in sealed_before} == {
        NAME,
        NAME + "二",
        "浙江省杭州市" + ADDRESS,
        CONTACT + " 137****4321",
        NOTES,
    }
    files_before = _file_hits(data_dir)
    assert any(p.startswith("attachments/") for p in files_before[FILE_TEXT])
    assert "sms/outbox.jsonl" in files_before[MESSAGE]
    assert any(p.startswith("analytics/snapshot/ticket/") for p in files_before[TICKET_TEXT])

    count = anonymise_customers(
        session,
        customer_ids=[pid],
        actor=Actor.system("privacy-test"),
        reason="deletion request #1",
        settings=settings,
    )
    # The customer and the record merged into it (the same person).
    assert count == 2

    # No canary anywhere, the audit log included.
    assert _db_hits(session) == {}
    # The audit entries about the person hold their texts sealed; the keys are shredded,
    # so not one of them can be read any more (and the chain is intact).
    assert _sealed_values(session, pid, merged) == sealed_before
    assert [unseal(session, v) for v in sealed_before] == [None] * len(sealed_before)
    # The bystander's key stays, and so do the texts sealed under it.
    assert session.scalars(select(AuditSubjectKey.subject_id)).all() == [str(bystander)]
    assert [unseal(session, v) for v in _sealed_values(session, bystander)] == ["旁观者"]
    assert verify(session) == (session.scalar(select(func.count(AuditEntry.id))), [])
    assert _file_hits(data_dir) == {}
    # The unrelated SMS line stays.
    assert "您的快件已签收" in (data_dir / "sms" / "outbox.jsonl").read_text("utf-8")

    # Aggregates stay: shipment count and amount, region and city, ticket statistics.
    customer = session.get(Customer, pid)
    assert customer is not None
    assert (customer.name, customer.region, customer.status) == (ANON, "华东", "archived")
    assert session.scalar(select(func.count()).where(SearchToken.customer_id == pid)) == 0
    assert session.execute(
        select(CustomerAddress.province, CustomerAddress.city, CustomerAddress.detail).where(
            CustomerAddress.customer_id == pid
        )
    ).all() == [("浙江省", "杭州市", "")]
    assert session.execute(
        select(func.count(), func.sum(Shipment.fee_fen)).where(Shipment.customer_id == pid)
    ).one() == (1, 1250)
    assert session.execute(
        select(Ticket.category, Ticket.region, Ticket.satisfaction, Ticket.subject).where(
            Ticket.customer_id == pid
        )
    ).all() == [("lost", "华东", 2, ANON)]
    assert session.get(Customer, bystander).name == "旁观者"  # type: ignore[union-attr]
    marks = session.execute(select(Anonymisation.customer_id, Anonymisation.reason)).all()
    assert sorted(marks) == sorted([(pid, "deletion request #1"), (merged, "deletion request #1")])
    entries = session.scalars(
        select(AuditEntry.target_id).where(AuditEntry.action == "customer.anonymised")
    ).all()
    assert sorted(entries) == sorted([str(pid), str(merged)])

    # Again: nothing left to do, nothing audited twice.
    again = anonymise_customers(
        session,
        customer_ids=[pid],
        actor=Actor.system("privacy-test"),
        reason="again",
        settings=settings,
    )
    assert again == 0


def test_reason_is_required(db: Session, make_customer: Any) -> None:
    from guanxi.core.errors import ValidationFailed

    customer = make_customer()
    with pytest.raises(ValidationFailed) as err:
        anonymise_customers(db, customer_ids=[customer.id], actor=Actor.system("t"), reason=" ")
    assert [e.loc for e in err.value.errors] == [("reason",)]
    assert db.get(Customer, customer.id).name == "张三丰"  # type: ignore[union-attr]


def test_many_customers_at_once_scrub_staff_texts(
    db: Session, make_customer: Any, make_user: Any
) -> None:
    from guanxi.notify.models import Notification

    user = make_user("manager")
    people = [
        make_customer(f"批量客户{i:02d}号", phones=[f"+86139000000{i:02d}"]) for i in range(60)
    ]
    for p in people:
        db.add(
            Notification(
                user_id=user.id,
                key=f"n:{p.id}",
                kind="contract_renewal",
                subject=f"合同到期：{p.name}",
            )
        )
    db.add(Notification(user_id=user.id, key="other", kind="x", subject="合同到期：旁人"))
    db.commit()

    done = anonymise_customers(
        db, customer_ids=[p.id for p in people], actor=Actor.system("t"), reason="retention"
    )

    assert done == 60
    subjects = db.scalars(select(Notification.subject).order_by(Notification.id)).all()
    assert subjects == ["合同到期：***"] * 60 + ["合同到期：旁人"]
