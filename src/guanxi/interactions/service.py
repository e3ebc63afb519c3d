"""The contact log and contact cadence: record interactions with their action items, and
list, per account owner, the customers due (or overdue) for contact and the follow-ups due.

Cadence rules say how often customers are contacted — those carrying a tag (VIP, 月结客户)
every N days, everyone else every M days; the shortest matching rule applies. A customer is
due when their last interaction is older than that (or there was none since they became a
customer). Other domains schedule follow-ups here (a return visit after a complaint
closes) inside their own transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from guanxi.audit.sealing import seal_about_customer
from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import Base, write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, Tag, customer_tag
from guanxi.customers.service import get_customer
from guanxi.interactions.enums import InteractionKind
from guanxi.interactions.models import ActionItem, CadenceRule, Interaction
from guanxi.interactions.schemas import ActionItemIn, CadenceRuleIn, InteractionCreate
from guanxi.security.models import User
from guanxi.security.service import actor_of


def log_interaction(
    session: Session, *, interaction_in: InteractionCreate, actor: User
) -> Interaction:
    """Record a contact with its action items; a return visit completes the return-visit
    follow-up of its ticket."""
    with write_transaction(session):
        get_customer(session, customer_id=interaction_in.customer_id, viewer=actor)
        _check_refs(session, interaction_in)
        interaction = Interaction(
            customer_id=interaction_in.customer_id,
            kind=interaction_in.kind.value,
            occurred_at=interaction_in.occurred_at or clock.now(),
            user_id=actor.id,
            participants=interaction_in.participants,
            summary=interaction_in.summary,
            outcome=interaction_in.outcome,
            ticket_id=interaction_in.ticket_id,
            opportunity_id=interaction_in.opportunity_id,
            created_at=clock.now(),
        )
        session.add(interaction)
        session.flush()
        for item in interaction_in.action_items:
            session.add(_item(interaction_in.customer_id, item, actor.id, interaction.id))
        if (
            interaction_in.kind is InteractionKind.return_visit
            and interaction_in.ticket_id is not None
        ):
            for open_item in session.scalars(_open_items_of(interaction_in.ticket_id)):
                open_item.done_at = clock.now()
        record(
            session,
            actor=actor_of(actor),
            action="interaction.logged",
            target_type="customer",
            target_id=interaction.customer_id,
            after={"kind": interaction.kind, "interaction_id": interaction.id},
        )
    return interaction


def _check_refs(session: Session, interaction_in: InteractionCreate) -> None:
    """Every user and ticket named must exist (a clear message, not a foreign-key error)."""
    errors = []
    if interaction_in.ticket_id is not None:
        # The ticket table through the shared metadata: tickets depend on this domain, so
        # this domain does not import theirs.
        ticket = Base.metadata.tables["ticket"]
        found = session.scalar(select(ticket.c.id).where(ticket.c.id == interaction_in.ticket_id))
        if found is None:
            errors.append(FieldError(("ticket_id",), "ticket_unknown", "No such ticket"))
    if interaction_in.opportunity_id is not None:
        # The opportunity must be this customer's (sales depends on this domain, so the
        # table is read through the shared metadata, as for tickets).
        opportunity = Base.metadata.tables["opportunity"]
        owner = session.scalar(
            select(opportunity.c.customer_id).where(
                opportunity.c.id == interaction_in.opportunity_id
            )
        )
        if owner is None or owner != interaction_in.customer_id:
            errors.append(
                FieldError(("opportunity_id",), "opportunity_unknown", "No such opportunity")
            )
    for n, item in enumerate(interaction_in.action_items):
        if item.owner_id is not None:
            owner = session.get(User, item.owner_id)
            if owner is None or not owner.is_active:
                errors.append(
                    FieldError(
                        ("action_items", n, "owner_id"),
                        "owner_unknown",
                        "No such user to own this customer",
                    )
                )
    if errors:
        raise ValidationFailed(errors)


def _open_items_of(ticket_id: int) -> Select[ActionItem]:
    """The open follow-ups of a ticket."""
    return select(ActionItem).where(ActionItem.ticket_id == ticket_id, ActionItem.done_at.is_(None))


def _item(
    customer_id: int, item: ActionItemIn, owner_id: int | None, interaction_id: int | None
) -> ActionItem:
    return ActionItem(
        customer_id=customer_id,
        interaction_id=interaction_id,
        owner_id=item.owner_id or owner_id,
        title=item.title,
        due_on=item.due_on,
        created_at=clock.now(),
    )


def schedule_follow_up(
    session: Session,
    *,
    customer_id: int,
    owner_id: int | None,
    title: str,
    due_on: date,
    ticket_id: int | None = None,
) -> ActionItem:
    """A follow-up another domain schedules inside its own transaction (e.g. the return
    visit after a complaint closes). A ticket has at most one open follow-up: scheduling
    again moves its date."""
    if ticket_id is not None:
        open_item = session.scalar(_open_items_of(ticket_id))
        if open_item is not None:
            open_item.due_on = due_on
            open_item.owner_id = owner_id
            return open_item
    item = _item(customer_id, ActionItemIn(title=title, due_on=due_on), owner_id, None)
    item.ticket_id = ticket_id
    session.add(item)
    session.flush()
    return item


def complete_item(session: Session, *, item_id: int, actor: User) -> ActionItem:
    """Mark an action item done."""
    with write_transaction(session):
        item = session.get(ActionItem, item_id)
        if item is None:
            raise NotFound("action item not found", item_id=item_id)
        if item.done_at is not None:
            raise Conflict("item_done", field="item_id")
        get_customer(session, customer_id=item.customer_id, viewer=actor)
        item.done_at = clock.now()
        record(
            session,
            actor=actor_of(actor),
            action="action_item.done",
            target_type="customer",
            target_id=item.customer_id,
            # The title is free text about the customer: sealed (crypto-shredded on
            # anonymisation, audit/sealing.py).
            after={
                "item_id": item.id,
                "title": seal_about_customer(session, item.customer_id, item.title),
            },
        )
    return item


def history(
    session: Session, *, customer_id: int, viewer: User, limit: int = 50
) -> list[Interaction]:
    """A customer's interactions, newest first."""
    get_customer(session, customer_id=customer_id, viewer=viewer)
    return list(
        session.scalars(
            select(Interaction)
            .where(Interaction.customer_id == customer_id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(limit)
        )
    )


def of_customer_for_sales(
    session: Session, *, customer_id: int, limit: int = 50
) -> list[Interaction]:
    """A customer's interactions, newest first, for the page of an opportunity of that
    customer: sales checked the reader may see the opportunity (its owner may not own the
    customer, e.g. a lead claimed from the pool)."""
    return list(
        session.scalars(
            select(Interaction)
            .where(Interaction.customer_id == customer_id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(limit)
        )
    )


def save_rule(session: Session, *, rule_in: CadenceRuleIn, actor: User) -> CadenceRule:
    """Add a cadence rule (or change the one with the same tag)."""
    with write_transaction(session):
        rule = session.scalar(
            select(CadenceRule).where(
                CadenceRule.tag.is_(None) if rule_in.tag is None else CadenceRule.tag == rule_in.tag
            )
        )
        if rule is None:
            rule = CadenceRule(name=rule_in.name, tag=rule_in.tag, every_days=rule_in.every_days)
            session.add(rule)
        else:
            rule.name, rule.every_days = rule_in.name, rule_in.every_days
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="cadence.saved",
            target_type="cadence_rule",
            target_id=rule.id,
            after={"tag": rule.tag, "every_days": rule.every_days},
        )
    return rule


@dataclass(frozen=True)
class DueContact:
    """A customer due for contact: when last contacted, how often they should be, and the
    churn risk that made them due sooner (when the analytics flagged them)."""

    customer_id: int
    name: str
    last_contact: datetime | None
    every_days: int
    due_on: date
    overdue_days: int
    churn_risk: float | None = None


# A customer at high churn risk is due for a return visit when not contacted for this long,
# whatever their cadence rule says.
AT_RISK_EVERY_DAYS = 14
# (session, owner_id) -> {customer_id: churn risk} of the owner's high-risk customers;
# registered by the analytics (guanxi.domains) so this domain does not import them.
_risk_source: Callable[[Session, int], dict[int, float]] | None = None


def register_risk_source(source: Callable[[Session, int], dict[int, float]]) -> None:
    """Let the due list bring forward customers at risk of churning."""
    global _risk_source
    _risk_source = source


def due_contacts(session: Session, *, owner_id: int, today: date) -> list[DueContact]:
    """The owner's customers whose cadence says they are due, most overdue first."""
    rules = list(session.scalars(select(CadenceRule)))
    risks = _risk_source(session, owner_id) if _risk_source is not None else {}
    if not rules and not risks:
        return []
    by_tag = {r.tag: r.every_days for r in rules if r.tag is not None}
    default = min((r.every_days for r in rules if r.tag is None), default=None)
    customers = session.execute(
        select(Customer.id, Customer.name, Customer.created_at).where(
            Customer.owner_id == owner_id, Customer.status == CustomerStatus.active.value
        )
    ).all()
    if not customers:
        return []
    ids = [c.id for c in customers]
    tags: dict[int, set[str]] = defaultdict(set)
    last: dict[int, datetime] = {}
    for lo in range(0, len(ids), 500):
        part = ids[lo : lo + 500]
        for cid, name in session.execute(
            select(customer_tag.c.customer_id, Tag.name)
            .join(Tag, Tag.id == customer_tag.c.tag_id)
            .where(customer_tag.c.customer_id.in_(part))
        ):
            tags[cid].add(name)
        for cid, latest in session.execute(
            select(Interaction.customer_id, func.max(Interaction.occurred_at))
            .where(Interaction.customer_id.in_(part))
            .group_by(Interaction.customer_id)
        ):
            last[cid] = latest
    out = []
    for cid, name, created in customers:
        matching = [by_tag[t] for t in tags[cid] if t in by_tag]
        every = min(matching) if matching else default
        risk = risks.get(cid)
        if risk is not None:
            every = min(every, AT_RISK_EVERY_DAYS) if every is not None else AT_RISK_EVERY_DAYS
        if every is None:
            continue
        since = last.get(cid) or created
        due_on = since.date() + timedelta(days=every)
        if due_on <= today:
            out.append(
                DueContact(cid, name, last.get(cid), every, due_on, (today - due_on).days, risk)
            )
    out.sort(key=lambda d: (-d.overdue_days, d.customer_id))
    return out


def due_items(session: Session, *, owner_id: int, until: date) -> list[ActionItem]:
    """The owner's open action items due by ``until``, earliest first."""
    return list(
        session.scalars(
            select(ActionItem)
            .where(
                ActionItem.owner_id == owner_id,
                ActionItem.done_at.is_(None),
                ActionItem.due_on <= until,
            )
            .order_by(ActionItem.due_on, ActionItem.id)
        )
    )
