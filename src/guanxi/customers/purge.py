"""Customers whose retention has run out: archived (no longer served) for longer than the
retention period. The retention purge (:mod:`guanxi.privacy.retention`) anonymises them
through the privacy domain's anonymisation, which keeps the aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, true, update
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.db import rowcount
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
    SearchToken,
)


def _archived_before(before: datetime, excluding: Any) -> ColumnElement[bool]:
    # ``excluding``: a subquery of customer ids already dealt with (anonymised).
    return and_(
        Customer.status == CustomerStatus.archived.value,
        Customer.archived_at < before,
        Customer.id.not_in(excluding),
    )


def archived_ids(session: Session, *, before: datetime, excluding: Any, limit: int) -> list[int]:
    """Up to ``limit`` customers archived before ``before`` and not in ``excluding``."""
    query = (
        select(Customer.id)
        .where(_archived_before(before, excluding))
        .order_by(Customer.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def count_archived(session: Session, *, before: datetime, excluding: Any) -> int:
    """Customers archived before ``before`` and not in ``excluding``."""
    query = select(func.count(Customer.id)).where(_archived_before(before, excluding))
    return int(session.scalar(query) or 0)


def oldest_archived(
    session: Session, *, excluding: Any, before: datetime | None = None
) -> datetime | None:
    """When the earliest archived customer still holding personal data was archived."""
    kept = true() if before is None else Customer.archived_at >= before
    return session.scalar(
        select(func.min(Customer.archived_at)).where(
            Customer.status == CustomerStatus.archived.value, Customer.id.not_in(excluding), kept
        )
    )


def anonymise_customers_data(
    session: Session, customer_ids: list[int], *, placeholder: str
) -> dict[str, int]:
    """Remove the personal information of these customer records inside the caller's
    transaction (deletion as anonymisation, :mod:`guanxi.privacy.anonymise`): the name
    becomes ``placeholder``; identifiers, blind indexes, birthday, customer number and
    notes go; phones and contact persons are removed; address lines are blanked (the
    division stays for regional statistics); the name-search index goes. Records not
    merged are archived. Returns the rows changed per child table."""
    now = clock.now()
    for status_filter, values in (
        (Customer.status == CustomerStatus.merged.value, {}),
        (
            Customer.status != CustomerStatus.merged.value,
            {"status": CustomerStatus.archived.value},
        ),
    ):
        session.execute(
            update(Customer)
            .where(Customer.id.in_(customer_ids), status_filter)
            .values(
                name=placeholder,
                external_id=None,
                email_enc=None,
                email_bidx=None,
                id_number_enc=None,
                id_number_bidx=None,
                credit_code_enc=None,
                credit_code_bidx=None,
                birthday=None,
                notes=None,
                updated_at=now,
                archived_at=func.coalesce(Customer.archived_at, now),
                version=Customer.version + 1,
                **values,
            )
            .execution_options(synchronize_session=False)
        )
    counts = {
        "customer_phone": rowcount(
            session.execute(
                delete(CustomerPhone).where(CustomerPhone.customer_id.in_(customer_ids))
            )
        ),
        "contact_person": rowcount(
            session.execute(
                delete(ContactPerson).where(ContactPerson.customer_id.in_(customer_ids))
            )
        ),
        "customer_address": rowcount(
            session.execute(
                update(CustomerAddress)
                .where(CustomerAddress.customer_id.in_(customer_ids))
                .values(label=None, detail="")
            )
        ),
    }
    session.execute(delete(SearchToken).where(SearchToken.customer_id.in_(customer_ids)))
    return counts
