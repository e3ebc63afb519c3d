"""A customer's export holds everything about them, decrypted, in JSON and in CSV; the
set of tables is checked complete against the schema."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core.db import Base
from guanxi.privacy.export import EXCLUDED, export_customer, plan
from guanxi.security.crypto import cipher
from guanxi.shipments.models import Shipment, ShipmentEvent
from guanxi.tickets.models import Ticket, TicketEvent
from tests.helpers import resident_id

# Column names that say "personal information" wherever they appear.
_PERSONAL_HINTS = ("_enc", "phone", "email", "receiver_", "participants", "contact_")


def _looks_personal(table: Table) -> bool:
    return any(hint in c.name for c in table.columns for hint in _PERSONAL_HINTS)


def _linked_to_customers() -> set[str]:
    """Tables whose rows belong to a customer: a customer_id column or a foreign key to the
    customer, or a foreign key to such a table, at any depth."""
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    linked = {"customer"}
    linked |= {n for n, t in tables.items() if "customer_id" in t.columns}
    grew = True
    while grew:
        grew = False
        for name, table in tables.items():
            if name in linked:
                continue
            if any(fk.column.table.name in linked for fk in table.foreign_keys):
                linked.add(name)
                grew = True
    return linked


def test_export_is_checked_complete_against_the_schema() -> None:
    exported = set(plan().tables)
    holding = _linked_to_customers() | {
        t.name for t in Base.metadata.sorted_tables if _looks_personal(t)
    }
    # Every table holding customer data is exported or excluded with a reason.
    assert sorted(holding - exported - set(EXCLUDED)) == []
    # Exclusions name real tables, say why, and are not exported after all.
    assert sorted(set(EXCLUDED) - set(Base.metadata.tables)) == []
    assert all(len(reason) > 20 for reason in EXCLUDED.values())
    assert exported & set(EXCLUDED) == set()
    # The customer's own tables and those reached through them are in.
    assert {
        "customer",
        "customer_phone",
        "customer_address",
        "contact_person",
        "customer_consent_event",
        "shipment",
        "shipment_event",
        "ticket",
        "ticket_event",
        "attachment",
        "survey_response",
        "survey_answer",
        "outbox_message",
        "privacy_request",
    } <= exported


def _customer(make_customer: Any) -> Any:
    return make_customer(
        "陈导出",
        phones=["+8613511112222"],
        email="chen.export@example.com",
        id_number=resident_id("440301", "19851212", "321"),
        addresses=[{"province": "广东省", "city": "深圳市", "detail": "科技园一路1号"}],
    )


def test_export_holds_everything_decrypted_without_indexes(db: Session, make_customer: Any) -> None:
    customer = _customer(make_customer)
    other = make_customer("别人")
    ship = Shipment(
        waybill_no="YT900000001",
        customer_id=customer.id,
        receiver_name="陈收件",
        receiver_phone_enc=cipher().encrypt("phone", "+8613600001111"),
        receiver_phone_bidx=cipher().blind_index("phone", "+8613600001111"),
        fee_fen=880,
        created_at=datetime(2026, 5, 1, 2, 0, tzinfo=UTC),
    )
    db.add_all([ship, Shipment(waybill_no="YT900000002", customer_id=other.id)])
    db.flush()
    db.add(ShipmentEvent(shipment_id=ship.id, occurred_at=ship.created_at, status="signed"))
    ticket = Ticket(
        type="complaint",
        channel="phone",
        customer_id=customer.id,
        subject="包裹延误",
        contact_email_enc=cipher().encrypt("email", "chen.export@example.com"),
        public_token_hash="b" * 64,
    )
    db.add(ticket)
    db.flush()
    db.add(TicketEvent(ticket_id=ticket.id, action="created", to_status="new", note="来电"))
    db.commit()

    result = export_customer(db, customer.id)

    counts = result.counts()
    assert counts == {
        "customer": 1,
        "customer_phone": 1,
        "customer_address": 1,
        "shipment": 1,
        "shipment_event": 1,
        "ticket": 1,
        "ticket_event": 1,
    }
    doc = json.loads(result.to_json())
    tables = doc["tables"]
    assert doc["customer_id"] == customer.id
    (row,) = tables["customer"]
    assert (row["name"], row["email_enc"], row["id_number_enc"]) == (
        "陈导出",
        "chen.export@example.com",
        resident_id("440301", "19851212", "321"),
    )
    assert [p["phone_enc"] for p in tables["customer_phone"]] == ["+8613511112222"]
    assert tables["shipment"][0]["receiver_phone_enc"] == "+8613600001111"
    assert tables["shipment"][0]["waybill_no"] == "YT900000001"
    assert tables["ticket"][0]["contact_email_enc"] == "chen.export@example.com"
    assert [e["note"] for e in tables["ticket_event"]] == ["来电"]
    # No blind index, hash or internal token anywhere.
    keys = {k for rows in tables.values() for r in rows for k in r}
    assert sorted(k for k in keys if k.endswith(("_bidx", "_hash")) or k == "storage_key") == []

    archive = zipfile.ZipFile(io.BytesIO(result.to_csv_zip()))
    assert sorted(archive.namelist()) == sorted(f"{name}.csv" for name in result.tables)
    text = archive.read("customer.csv").decode("utf-8-sig")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [(r["name"], r["email_enc"]) for r in parsed] == [("陈导出", "chen.export@example.com")]
    assert "phone_bidx" not in archive.read("customer_phone.csv").decode("utf-8-sig")


def test_export_neutralises_spreadsheet_formulas(db: Session, make_customer: Any) -> None:
    customer = make_customer("=HYPERLINK(1)", actor=Actor.system("test"))
    archive = zipfile.ZipFile(io.BytesIO(export_customer(db, customer.id).to_csv_zip()))
    parsed = list(csv.DictReader(io.StringIO(archive.read("customer.csv").decode("utf-8-sig"))))
    assert parsed[0]["name"] == "'=HYPERLINK(1)"
