"""Deletion as anonymisation of sales opportunities (:mod:`guanxi.privacy.anonymise`): a
deleted customer's opportunities stay in the pipeline figures (stage, source, amounts,
dates, stage history) without their texts or the contact person."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core.scrub import blank_rows, clear_column
from guanxi.sales.models import Opportunity, StageChange


def anonymise_sales_data(session: Session, customer_ids: list[int], *, placeholder: str) -> int:
    """Remove the personal texts of these customers' opportunities inside the caller's
    transaction: titles become ``placeholder``; next steps, notes, the contact's name,
    company, phone and e-mail (with their blind indexes) and the stage changes' reasons
    go; stages, sources, amounts and dates stay. Returns how many opportunities were
    changed."""
    theirs = select(Opportunity.id).where(Opportunity.customer_id.in_(customer_ids))
    clear_column(session, StageChange.reason, StageChange.opportunity_id.in_(theirs))
    # The version changes so that an editor still holding the old one cannot write the
    # texts back.
    return blank_rows(
        session,
        Opportunity.customer_id,
        customer_ids,
        {
            "title": placeholder,
            "next_step": None,
            "notes": None,
            "contact_name_enc": None,
            "contact_company_enc": None,
            "contact_phone_enc": None,
            "contact_phone_bidx": None,
            "contact_email_enc": None,
            "contact_email_bidx": None,
            "version": Opportunity.version + 1,
        },
    )
