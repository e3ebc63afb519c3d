"""Each domain's share of deletion as anonymisation (its ``purge`` module): the rows it
reports, which become the per-table counts of the ``customer.anonymised`` audit entry, and
that another customer's rows stay as they were. (What the canary test in
``test_anonymise.py`` cannot see: it checks texts, not counts or bystanders.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.analytics.models import TermWeek
from guanxi.analytics.purge import anonymise_analytics_data
from guanxi.audit.models import AuditEntry
from guanxi.audit.service import Actor
from guanxi.contracts.models import Contract, ContractAmendment, ContractDocument
from guanxi.contracts.purge import anonymise_contracts_data
from guanxi.imports.models import ImportRowError
from guanxi.imports.purge import anonymise_imports_data
from guanxi.interactions.models import ActionItem, Interaction
from guanxi.interactions.purge import anonymise_interactions_data
from guanxi.loyalty.models import PointsEntry
from guanxi.loyalty.purge import anonymise_loyalty_data
from guanxi.notify.models import Notification
from guanxi.notify.purge import anonymise_notification_texts
from guanxi.pool.models import PoolEvent
from guanxi.pool.purge import anonymise_pool_data
from guanxi.privacy.anonymise import ANON, anonymise_customers
from guanxi.sales.models import Opportunity
from guanxi.sales.purge import anonymise_sales_data
from guanxi.shipments.models import Shipment, ShipmentEvent
from guanxi.shipments.purge import anonymise_shipments_data
from tests.conftest import settings_for
from tests.integration.privacy.test_anonymise import (
    CONTACT,
    INTERACTION,
    NAME,
    NOTES,
    PHONE,
    RECEIVER,
    _plant,
)

# What the canary world's person and the record merged into it hold, table by table.
ROWS = {
    "attachment": 2,
    "audit_subject_key": 2,
    "claim": 1,
    "contact_person": 1,
    "contract": 1,
    "contract_document": 1,
    "customer_address": 1,
    "customer_phone": 1,
    "duplicate_pair": 1,
    "interaction": 1,
    "notification": 2,
    "opportunity": 1,
    "outbox_message": 1,
    "shipment": 1,
    "survey_response": 1,
    "ticket": 1,
}


def test_the_audit_entry_counts_the_rows_of_every_domain(db: Session, tmp_path: Path) -> None:
    pid, merged, _bystander = _plant(db, tmp_path)

    done = anonymise_customers(
        db,
        customer_ids=[pid],
        actor=Actor.system("privacy-test"),
        reason="deletion request #2",
        settings=settings_for("sqlite://", tmp_path),
    )

    assert done == 2
    entries = db.execute(
        select(AuditEntry.target_id, AuditEntry.after)
        .where(AuditEntry.action == "customer.anonymised")
        .order_by(AuditEntry.target_id)
    ).all()
    assert sorted(entries) == sorted(
        (str(cid), {"reason": "deletion request #2", "rows": ROWS}) for cid in (pid, merged)
    )


def _anonymise_each(db: Session, ids: list[int]) -> dict[str, Any]:
    """Every domain function of the rows keyed to the customer, in privacy's order: what
    each returned."""
    shipments = anonymise_shipments_data(db, ids)
    interactions = anonymise_interactions_data(db, ids, placeholder=ANON)
    opportunities = anonymise_sales_data(db, ids, placeholder=ANON)
    contracts = anonymise_contracts_data(db, ids, placeholder=ANON)
    return {
        "shipments": shipments,
        "interactions": interactions,
        "opportunities": opportunities,
        "contracts": contracts,
        "pool": anonymise_pool_data(db, ids),
        "loyalty": anonymise_loyalty_data(db, ids),
    }


def _texts(db: Session) -> dict[str, Any]:
    """The texts those functions blank, as they stand."""
    db.expire_all()
    return {
        "shipment": db.execute(select(Shipment.receiver_name, Shipment.receiver_phone_enc)).all(),
        "event": db.scalars(select(ShipmentEvent.note)).all(),
        "interaction": db.execute(
            select(Interaction.summary, Interaction.participants, Interaction.outcome)
        ).all(),
        "action_item": db.scalars(select(ActionItem.title)).all(),
        "opportunity": db.execute(
            select(Opportunity.title, Opportunity.notes, Opportunity.next_step)
        ).all(),
        "contract": db.execute(select(Contract.title, Contract.notes)).all(),
        "amendment": db.execute(select(ContractAmendment.changes, ContractAmendment.reason)).all(),
        "documents": db.scalar(select(func.count(ContractDocument.id))),
        "pool": db.scalars(select(PoolEvent.note)).all(),
        "points": db.scalars(select(PointsEntry.reason)).all(),
    }


def test_each_domain_reports_the_rows_it_changed_and_no_others(db: Session, tmp_path: Path) -> None:
    pid, merged, bystander = _plant(db, tmp_path)
    planted = _texts(db)
    # The texts are there to begin with (the canary world plants each once).
    assert planted["shipment"][0][0] == RECEIVER
    assert planted["interaction"] == [(INTERACTION, CONTACT, INTERACTION)]
    assert planted["pool"] == planted["points"] == [NOTES]
    assert planted["documents"] == 1
    document = db.scalar(select(ContractDocument.storage_key))

    # Another customer's anonymisation changes none of the person's rows.
    assert _anonymise_each(db, [bystander]) == {
        "shipments": 0,
        "interactions": 0,
        "opportunities": 0,
        "contracts": ({"contract": 0, "contract_document": 0}, []),
        "pool": 0,
        "loyalty": {"points_entry": 0, "coupon": 0},
    }
    assert _texts(db) == planted

    assert _anonymise_each(db, [pid, merged]) == {
        "shipments": 1,
        "interactions": 1,
        "opportunities": 1,
        "contracts": ({"contract": 1, "contract_document": 1}, [document]),
        "pool": 1,
        "loyalty": {"points_entry": 1, "coupon": 0},
    }
    assert _texts(db) == {
        "shipment": [(None, None)],
        "event": [None],
        "interaction": [(ANON, None, None)],
        "action_item": [ANON],
        "opportunity": [(ANON, None, None)],
        # A contract keeps its number as its title.
        "contract": [("HT-CANARY-1", None)],
        "amendment": [("{}", ANON)],
        "documents": 0,
        "pool": [None],
        "points": [None],
    }


def test_texts_found_by_the_persons_values(db: Session, tmp_path: Path) -> None:
    _plant(db, tmp_path)

    # LIKE's wildcards in a value are literal: they match nothing here.
    for values in (["旁观者"], ["%", "_"]):
        assert anonymise_notification_texts(db, values, placeholder=ANON) == 0
        assert anonymise_analytics_data(db, values) == 0
        assert anonymise_imports_data(db, values) == 0
    assert db.scalars(select(ImportRowError.value)).all() == [PHONE[3:]]

    # Subject and body both named the person: two texts. The longer name goes first,
    # whatever the order given (else a part of it would be left behind).
    assert anonymise_notification_texts(db, ["金丝雀", NAME], placeholder=ANON) == 2
    assert db.execute(select(Notification.subject, Notification.body)).all() == [
        ("合同即将到期：***", "客户 *** 的合同")
    ]
    assert anonymise_analytics_data(db, [CONTACT, NAME]) == 1
    assert db.scalar(select(func.count(TermWeek.id))) == 0
    assert anonymise_imports_data(db, [NAME, PHONE[3:]]) == 1
    assert db.scalars(select(ImportRowError.value)).all() == [None]
