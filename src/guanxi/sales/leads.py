"""Where leads come from, and what becomes of a web lead.

- a new enterprise customer (``customers.service.register_created_hook``): a lead owned by
  the customer's owner, or unowned (in the pool of leads);
- a campaign response (``campaigns.tracking.register_response_listener``): one lead per
  campaign and customer, on the recipient's first click;
- the public web form (``/forms/lead``): a lead without a customer, its contact stored
  encrypted, later converted into a customer.

Every new lead is announced to the sales managers (``notify``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import guanxi.sales.messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import is_unique_violation, write_transaction
from guanxi.core.errors import Conflict, FieldError, ValidationFailed
from guanxi.customers.enums import CustomerKind, SourceChannel
from guanxi.customers.models import Customer
from guanxi.customers.service import lookup_form
from guanxi.notify.service import notify
from guanxi.sales.enums import LeadSource, Stage
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import Convert, WebLeadIn
from guanxi.sales.service import (
    _audited,
    _bump,
    _changeable,
    add_stage_change,
    customer_in_reach,
    get_opportunity,
    in_scope,
    sales_managers,
)
from guanxi.security.crypto import cipher
from guanxi.security.models import User
from guanxi.security.service import actor_of

# Set while a web lead becomes a new customer: instead of making a second lead, that
# customer's creation links the lead to it, in the same transaction.
_converting: ContextVar[Callable[[Session, Customer], None] | None] = ContextVar(
    "sales_converting", default=None
)


@contextmanager
def _conversion(link: Callable[[Session, Customer], None]) -> Iterator[None]:
    token = _converting.set(link)
    try:
        yield
    finally:
        _converting.reset(token)


def _announce(session: Session, opportunity: Opportunity) -> None:
    """Tell the sales managers of a new lead (in the caller's transaction); a manager
    with a row-level scope hears only of the leads inside it (the subject names the
    customer)."""
    managers = [
        uid
        for uid in sales_managers(session)
        if (user := session.get(User, uid)) is not None and in_scope(session, user, opportunity)
    ]
    notify(
        session,
        user_ids=managers,
        key=f"sales_lead:{opportunity.id}",
        kind="sales_lead",
        subject=f"新销售线索 New lead #{opportunity.id}: {opportunity.title}",
        link=f"/sales/opportunities/{opportunity.id}",
    )


def _new_lead(
    session: Session,
    *,
    title: str,
    source: LeadSource,
    customer_id: int | None,
    owner_id: int | None,
    actor: Actor,
    campaign_id: int | None = None,
) -> Opportunity:
    """Add a lead in the caller's transaction, with its first history row and audit."""
    now = clock.now()
    lead = Opportunity(
        customer_id=customer_id,
        title=title[:200],
        stage=Stage.lead.value,
        owner_id=owner_id,
        expected_revenue=0,
        source=source.value,
        campaign_id=campaign_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(lead)
    session.flush()
    add_stage_change(session, lead, None, actor.id)
    record(
        session,
        actor=actor,
        action="sales.lead_created",
        target_type="opportunity",
        target_id=lead.id,
        after={**_audited(lead), "source": source.value},
    )
    return lead


# --------------------------------------------------------------------------- (a) new customers


def lead_from_new_customer(session: Session, customer: Customer) -> None:
    """A new enterprise customer becomes a lead of its owner (or of the pool); runs inside
    ``create_customer``'s transaction. Other kinds, and customers made from a web lead,
    make none."""
    link = _converting.get()
    if link is not None:
        link(session, customer)
        return
    if customer.kind != CustomerKind.enterprise.value:
        return
    lead = _new_lead(
        session,
        title=f"{customer.name} · 新企业客户",
        source=LeadSource.new_enterprise,
        customer_id=customer.id,
        owner_id=customer.owner_id,
        actor=Actor.system("sales"),
    )
    _announce(session, lead)


# --------------------------------------------------------------------------- (b) campaigns


def lead_from_campaign_response(session: Session, campaign_id: int, customer_id: int) -> None:
    """A campaign recipient's first click becomes a lead (at most one per campaign and
    customer: later clicks, and a second call, find it and add nothing). Runs in the
    caller's transaction; a customer gone meanwhile makes none."""
    existing = session.scalar(
        select(Opportunity.id).where(
            Opportunity.campaign_id == campaign_id, Opportunity.customer_id == customer_id
        )
    )
    customer = session.get(Customer, customer_id)
    if existing is not None or customer is None:
        return
    try:
        # A savepoint: a concurrent click that wrote the same lead first leaves the
        # caller's transaction usable.
        with session.begin_nested():
            lead = _new_lead(
                session,
                title=f"{customer.name} · 营销活动响应 #{campaign_id}",
                source=LeadSource.campaign,
                customer_id=customer_id,
                owner_id=customer.owner_id,
                actor=Actor.system("campaigns"),
                campaign_id=campaign_id,
            )
    except IntegrityError as exc:
        if is_unique_violation(exc):
            return
        raise
    _announce(session, lead)


# --------------------------------------------------------------------------- (c) web form


def submit_web_lead(session: Session, *, lead_in: WebLeadIn) -> Opportunity:
    """A prospect's request from the public form: an unowned lead, the contact encrypted
    (phone and e-mail already normalised by the schema), the sales managers told."""
    phone, email = lead_in.phone, lead_in.email
    c = cipher()
    with write_transaction(session):
        lead = _new_lead(
            session,
            title=f"{lead_in.company} · 网站咨询",
            source=LeadSource.web_form,
            customer_id=None,
            owner_id=None,
            actor=Actor.system("web-form"),
        )
        lead.contact_name_enc = c.encrypt("lead_name", lead_in.name)
        lead.contact_company_enc = c.encrypt("lead_company", lead_in.company)
        lead.contact_phone_enc = c.encrypt("lead_phone", phone)
        lead.contact_phone_bidx = c.blind_index("phone", lookup_form("phone", phone))
        if email:
            lead.contact_email_enc = c.encrypt("lead_email", email)
            lead.contact_email_bidx = c.blind_index("email", lookup_form("email", email))
        lead.notes = lead_in.message or None
        session.flush()
        _announce(session, lead)
    return lead


def convert_lead(
    session: Session, *, opportunity_id: int, convert_in: Convert, actor: User
) -> Opportunity:
    """Make a web lead a customer's: an existing customer, or a new enterprise customer
    from the lead's contact (owned by the lead's owner). The lead's own copy of the contact
    is erased then: the customer record holds it (minimal collection)."""
    from guanxi import domains
    from guanxi.customers.schemas import ContactIn, CustomerCreate
    from guanxi.customers.service import create_customer

    # The new-customer hook that links the lead is wired there (once per process).
    domains.load()
    with write_transaction(session):
        lead = _changeable(session, opportunity_id, actor)
        if lead.customer_id is not None:
            raise Conflict("lead_converted", field="customer_id")
        if convert_in.customer_id is None and lead.contact_company_enc is None:
            raise ValidationFailed(
                [FieldError(("customer_id",), "lead_no_contact", "Name the customer")]
            )
        if convert_in.customer_id is not None:
            if not customer_in_reach(session, convert_in.customer_id, actor):
                raise ValidationFailed(
                    [FieldError(("customer_id",), "sales_customer_unknown", "No such customer")]
                )
            return _link(session, opportunity_id, convert_in.customer_id, actor, new=False)
        c = cipher()
        phone = c.decrypt("lead_phone", lead.contact_phone_enc or "")
        email = c.decrypt("lead_email", lead.contact_email_enc) if lead.contact_email_enc else None
        new_customer = CustomerCreate(
            kind=CustomerKind.enterprise,
            name=c.decrypt("lead_company", lead.contact_company_enc or ""),
            source=SourceChannel.website,
            region=convert_in.region,
            owner_id=lead.owner_id,
            phones=[phone],
            contacts=[
                ContactIn(
                    name=c.decrypt("lead_name", lead.contact_name_enc or ""),
                    phone=phone,
                    email=email,
                    is_primary=True,
                )
            ],
        )

    def link(session: Session, customer: Customer) -> None:
        _link(session, opportunity_id, customer.id, actor, new=True)

    # The customer's own service writes it; its new-customer hook links this lead in the
    # same transaction (a lead converted meanwhile by someone else leaves no customer).
    with _conversion(link):
        create_customer(session, customer_in=new_customer, actor=actor)
    return get_opportunity(session, opportunity_id=opportunity_id, viewer=actor)


def _link(
    session: Session, opportunity_id: int, customer_id: int | None, actor: User, *, new: bool
) -> Opportunity:
    """Make the lead the customer's, erase its own copy of the contact; audited."""
    lead = _changeable(session, opportunity_id, actor)
    if lead.customer_id is not None:
        raise Conflict("lead_converted", field="customer_id")
    lead.customer_id = customer_id
    for name in (
        "contact_name_enc",
        "contact_company_enc",
        "contact_phone_enc",
        "contact_phone_bidx",
        "contact_email_enc",
        "contact_email_bidx",
    ):
        setattr(lead, name, None)
    _bump(session, lead, actor)
    record(
        session,
        actor=actor_of(actor),
        action="sales.lead_converted",
        target_type="opportunity",
        target_id=lead.id,
        after={"customer_id": customer_id, "new_customer": new},
    )
    return lead
