"""Deletion as anonymisation of contracts (:mod:`guanxi.privacy.anonymise`): a deleted
customer's contracts stay as numbered, dated agreements with their terms and amounts
(revenue and renewal figures), without their texts, the amendments' contents or the
documents (rows here; the files are the caller's to remove after commit)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from guanxi.contracts.models import Contract, ContractAmendment, ContractDocument
from guanxi.core.db import rowcount
from guanxi.core.scrub import blank_rows


def anonymise_contracts_data(
    session: Session, customer_ids: list[int], *, placeholder: str
) -> tuple[dict[str, int], list[str]]:
    """Remove the personal texts of these customers' contracts inside the caller's
    transaction: titles become the contract number and notes go; the amendments' recorded
    changes are emptied and their reasons become ``placeholder``; the documents' rows are
    deleted. Numbers, dates, terms, commitments and statuses stay. Returns the rows
    changed per table and the documents' storage keys, whose files the caller removes once
    its transaction has committed (a file removed before a rolled-back delete would leave
    a row pointing at nothing)."""
    contracts = select(Contract.id).where(Contract.customer_id.in_(customer_ids))
    counts = {
        "contract": blank_rows(
            session,
            Contract.customer_id,
            customer_ids,
            {"title": Contract.number, "notes": None, "version": Contract.version + 1},
        )
    }
    blank_rows(
        session, ContractAmendment.contract_id, contracts, {"changes": "{}", "reason": placeholder}
    )
    documents = ContractDocument.contract_id.in_(contracts)
    keys = list(session.scalars(select(ContractDocument.storage_key).where(documents)))
    counts["contract_document"] = rowcount(
        session.execute(delete(ContractDocument).where(documents))
    )
    return counts, keys
