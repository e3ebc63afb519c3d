"""The rules of tickets: intake with a priority from the matrix, 首问负责制 (the first agent
to take a ticket owns it until a recorded hand-over), the workflow state machine, and
service levels measured on China's working calendar with the clock paused while waiting.

Every write is one transaction with its timeline event and audit entry. Taking a ticket is
a single conditional UPDATE, so of two agents taking it at once exactly one wins.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, case, false, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from guanxi.audit.sealing import seal_about_customer
from guanxi.audit.service import Actor, record
from guanxi.config import get_settings
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.customers.models import Customer
from guanxi.customers.service import get_customer, region_clause
from guanxi.interactions.service import schedule_follow_up
from guanxi.notify.service import notify
from guanxi.security.crypto import cipher
from guanxi.security.models import User
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.security.scope import scope_of
from guanxi.security.service import actor_of, has_permission
from guanxi.shipments.models import Shipment
from guanxi.tickets.categories import check_code
from guanxi.tickets.desk import DEFAULT_POLICY, DeskPolicy, load_policy
from guanxi.tickets.enums import (
    DONE,
    Priority,
    Severity,
    TicketAction,
    TicketChannel,
    TicketStatus,
    TicketType,
    next_status,
)
from guanxi.tickets.models import Ticket, TicketEvent
from guanxi.tickets.routing import route
from guanxi.tickets.schemas import TicketCreate, TicketEventRead, TicketRead
from guanxi.tickets.sla import (
    SlaContext,
    calendar_for,
    recorded_moments,
    sla,
    sla_context,
    sla_moments,
)

log = logging.getLogger(__name__)

# The reopen and repeat windows, the priority matrix and the SLA targets are the
# administrator's policy (tickets/desk.py).
# Satisfaction (1-10, from the survey) at or below this is recorded as "not satisfied"
# on the timeline; the survey's detractor follow-up ticket takes it from there.
UNSATISFIED_AT_MOST = 4
# A closed complaint gets a return visit (回访) this many working days later (the manuals'
# tracking cycle is 3-7 working days).
RETURN_VISIT_WORKDAYS = 3

# Called after a ticket is resolved (committed): the satisfaction survey of a later issue
# registers here. Each receives (session, ticket).
ResolvedHook = Callable[[Session, Ticket], None]
_resolved_hooks: list[ResolvedHook] = []


_Hook = TypeVar("_Hook")


def _add_hook(hooks: list[_Hook], hook: _Hook) -> None:
    """Add ``hook`` to ``hooks`` once: domains register at every app start (and tests)."""
    if hook not in hooks:
        hooks.append(hook)


def _run_after(hooks: list[ResolvedHook], kind: str, session: Session, ticket: Ticket) -> None:
    """Run the after-commit ``hooks`` of a ticket step.

    The step is committed: a failing hook (a mail that cannot be queued) must not turn the
    agent's successful step into an error page. Logged by ticket id and hook name only - no
    personal data.
    """
    for hook in hooks:
        try:
            hook(session, ticket)
        except Exception:
            session.rollback()
            log.exception("%s hook %s failed for ticket %s", kind, hook.__name__, ticket.id)


def register_resolved_hook(hook: ResolvedHook) -> None:
    """Run ``hook`` after every resolution (surveys, notifications)."""
    _add_hook(_resolved_hooks, hook)


# Called after a ticket is closed (committed): thanks after a complaint (care/) registers
# here. Each receives (session, ticket).
_closed_hooks: list[ResolvedHook] = []


def register_closed_hook(hook: ResolvedHook) -> None:
    """Run ``hook`` after every closing (care messages)."""
    _add_hook(_closed_hooks, hook)


# Asked when a ticket is created for a customer: a hook returning a mark (e.g. loyalty's
# "会员优先" for members whose tier grants priority service) lifts the ticket to at least
# high priority and puts the mark among its tags. Each receives (session, customer_id).
PriorityHook = Callable[[Session, int], str | None]
_priority_hooks: list[PriorityHook] = []


def register_priority_hook(hook: PriorityHook) -> None:
    """Let ``hook`` lift new tickets of some customers (loyalty's priority service)."""
    _add_hook(_priority_hooks, hook)


_PRIORITY_ORDER = [Priority.low, Priority.normal, Priority.high, Priority.urgent]


def _lifted(
    session: Session, customer_id: int | None, priority: Priority, tags: list[str]
) -> tuple[Priority, list[str]]:
    """The priority and tags after the priority hooks (at least high when one marks)."""
    if customer_id is None:
        return priority, tags
    for hook in _priority_hooks:
        mark = hook(session, customer_id)
        if mark:
            if _PRIORITY_ORDER.index(priority) < _PRIORITY_ORDER.index(Priority.high):
                priority = Priority.high
            tags = [*tags, mark]
    return priority, tags


def priority_for(
    type_: TicketType,
    severity: Severity,
    channel: TicketChannel,
    policy: DeskPolicy = DEFAULT_POLICY,
) -> Priority:
    """The priority matrix: regulator referrals and critical complaints first."""
    return policy.priority(type_, severity, channel)


def _refresh_sla(session: Session, ticket: Ticket, now: datetime) -> None:
    """Re-materialise the ticket's due and check moments after a change (same transaction)."""
    session.flush()
    ctx = sla_context(session)
    ticket.sla_due_at, ticket.sla_check_at = sla_moments(
        ticket,
        events_of(session, ticket.id),
        now,
        ctx,
        recorded_moments(session, [ticket.id])[ticket.id],
    )


# --------------------------------------------------------------------------- private links

_LINK_CONTEXT = "guanxi.selfservice.ticket"
# The timeline action of a message the customer wrote on the self-service page.
CUSTOMER_MESSAGE = "customer_message"


# The server secret links are made with: the running app's (set_link_secret, called by
# create_app), else the process settings'.
_link_secret: dict[str, str] = {}


def set_link_secret(secret_key: str) -> None:
    """Make private links with the app's secret key."""
    _link_secret["key"] = secret_key


def public_token(ticket: Ticket, secret_key: str | None = None) -> str:
    """The secret of the ticket's private follow-up link: an HMAC of the server's secret
    over the ticket's id and creation time, so it can be put in any later mail without
    being stored (only its SHA-256 is). 43 URL-safe characters, 256 bits."""
    key = secret_key or _link_secret.get("key") or get_settings().secret_key
    message = f"{_LINK_CONTEXT}:{ticket.id}:{int(ticket.created_at.timestamp())}"
    mac = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What is stored of a private-link secret: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def contact_email(ticket: Ticket) -> str | None:
    """The address the customer asked to be answered at for this ticket, in clear."""
    return cipher().decrypt("email", ticket.contact_email_enc) if ticket.contact_email_enc else None


# --------------------------------------------------------------------------- writes


def _event(
    session: Session,
    ticket: Ticket,
    action: str,
    from_status: str | None,
    actor: User | Actor,
    note: str | None = None,
    internal: bool = True,
    to_user_id: int | None = None,
) -> None:
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            occurred_at=clock.now(),
            actor_id=actor.id,
            action=action,
            from_status=from_status,
            to_status=ticket.status,
            to_user_id=to_user_id,
            note=note,
            internal=internal,
        )
    )


def create_ticket(session: Session, *, ticket_in: TicketCreate, actor: User | Actor) -> Ticket:
    """Record a ticket: priority from the matrix, repeat and major flags, routed to a team
    and agent by the routing rules, SLA moments materialised; audited.

    ``actor`` is the agent recording it, or a system :class:`Actor` for a ticket the
    customer filed (self-service: the caller has proven the waybill, so no viewer check).
    """
    with write_transaction(session):
        policy = load_policy(session)
        if ticket_in.customer_id is not None and isinstance(actor, User):
            get_customer(session, customer_id=ticket_in.customer_id, viewer=actor)
        check_code(session, ticket_in.category)
        region = ticket_in.region
        waybill = ticket_in.waybill_no.upper() if ticket_in.waybill_no else None
        if waybill is not None:
            shipment = session.execute(
                select(Shipment.id, Shipment.dest_province).where(Shipment.waybill_no == waybill)
            ).first()
            if shipment is None:
                raise ValidationFailed(
                    [FieldError(("waybill_no",), "waybill_unknown", "No shipment has this waybill")]
                )
            region = region or shipment.dest_province
        now = clock.now()
        priority, tags = _lifted(
            session,
            ticket_in.customer_id,
            policy.priority(ticket_in.type, ticket_in.severity, ticket_in.channel),
            list(ticket_in.tags),
        )
        major = (
            ticket_in.severity is Severity.critical
            or ticket_in.channel is TicketChannel.regulator
            or ticket_in.media
            or (ticket_in.amount_fen or 0) >= policy.major_amount_fen > 0
        )
        ticket = Ticket(
            contact_email_enc=cipher().encrypt("email", ticket_in.contact_email)
            if ticket_in.contact_email
            else None,
            is_repeat=_is_repeat(session, ticket_in.customer_id, waybill, now, policy.repeat_days),
            is_major=major,
            type=ticket_in.type.value,
            channel=ticket_in.channel.value,
            customer_id=ticket_in.customer_id,
            waybill_no=waybill,
            category=ticket_in.category,
            region=region,
            tags=",".join(dict.fromkeys(tags)) or None,
            severity=ticket_in.severity.value,
            priority=priority.value,
            subject=ticket_in.subject,
            description=ticket_in.description,
            status=TicketStatus.new.value,
            created_by=actor.id,
            created_at=now,
            updated_at=now,
            reopened=0,
            version=1,
        )
        session.add(ticket)
        session.flush()
        # Every ticket has its private link from the start (self-service, resolution mail).
        ticket.public_token_hash = token_hash(public_token(ticket))
        _event(session, ticket, "create", None, actor)
        routed = route(session, ticket)
        if routed is not None:
            ticket.team_id = routed.team_id
            if routed.owner_id is not None:
                _assign(session, ticket, routed.owner_id, actor)
        if ticket.is_major or ticket.is_repeat:
            _alert_supervisors(session, ticket)
        _refresh_sla(session, ticket, now)
        record(
            session,
            actor=actor_of(actor) if isinstance(actor, User) else actor,
            action="ticket.created",
            target_type="ticket",
            target_id=ticket.id,
            after={
                "type": ticket.type,
                "priority": ticket.priority,
                "customer_id": ticket.customer_id,
                "team_id": ticket.team_id,
                "owner_id": ticket.owner_id,
                "routing_rule": routed.rule_id if routed else None,
                "is_major": ticket.is_major,
                "is_repeat": ticket.is_repeat,
            },
        )
    return ticket


def _assign(session: Session, ticket: Ticket, owner_id: int, actor: User | Actor) -> None:
    """Give a new ticket to the agent routing chose; they own it (首问负责制) and are told."""
    ticket.owner_id = owner_id
    ticket.first_owner_id = owner_id
    ticket.status = TicketStatus.assigned.value
    _event(session, ticket, "assign", TicketStatus.new.value, actor, to_user_id=owner_id)
    notify(
        session,
        user_ids=[owner_id],
        key=f"assigned:{ticket.id}:{owner_id}",
        kind="ticket_assigned",
        subject=f"#{ticket.id} {ticket.subject}",
        link=f"/tickets/{ticket.id}",
    )


def escalation_people(session: Session) -> tuple[list[int], list[int]]:
    """(supervisors, managers and administrators) among active users: who hears of major
    complaints and breaches, and who of escalations."""
    supervisors, top = [], []
    for uid, role in session.execute(select(User.id, User.role).where(User.is_active.is_(True))):
        if role_has(role, Permission.ticket_manage):
            supervisors.append(uid)
        if role in (Role.manager.value, Role.admin.value):
            top.append(uid)
    return supervisors, top


def _alert_supervisors(session: Session, ticket: Ticket) -> None:
    """Major and repeated complaints go to the supervisors at once (escalated on intake)."""
    supervisors, _top = escalation_people(session)
    kind = "ticket_major" if ticket.is_major else "ticket_repeat"
    notify(
        session,
        user_ids=supervisors,
        key=f"{kind}:{ticket.id}",
        kind=kind,
        subject=f"#{ticket.id} {ticket.subject}",
        link=f"/tickets/{ticket.id}",
    )


def _is_repeat(
    session: Session, customer_id: int | None, waybill: str | None, now: datetime, days: int
) -> bool:
    """Whether the customer or the waybill already had a ticket in the repeat window."""
    keys = []
    if customer_id is not None:
        keys.append(Ticket.customer_id == customer_id)
    if waybill is not None:
        keys.append(Ticket.waybill_no == waybill)
    if not keys or days <= 0:
        return False
    since = now - timedelta(days=days)
    found = session.scalar(select(Ticket.id).where(or_(*keys), Ticket.created_at >= since).limit(1))
    return found is not None


def ticket_clause(viewer: User) -> ColumnElement[bool] | None:
    """The tickets a viewer may see, as a condition on ``Ticket``; None when the viewer is
    unscoped (every ticket). A scoped viewer (security/scope.py) sees the tickets of their
    teams and those of customers in their regions."""
    scope = scope_of(viewer)
    if scope is None:
        return None
    parts: list[ColumnElement[bool]] = []
    if scope.team_ids:
        parts.append(Ticket.team_id.in_(scope.team_ids))
    if scope.regions:
        parts.append(Ticket.customer_id.in_(select(Customer.id).where(region_clause(scope))))
    return or_(*parts) if parts else false()


def can_see_ticket(session: Session, viewer: User, ticket: Ticket) -> bool:
    """The rule of :func:`ticket_clause` for one loaded ticket."""
    scope = scope_of(viewer)
    if scope is None or (ticket.team_id is not None and ticket.team_id in scope.team_ids):
        return True
    if ticket.customer_id is None or not scope.regions:
        return False
    customer = session.get(Customer, ticket.customer_id)
    return customer is not None and scope.covers_region(customer.region)


def get_ticket(session: Session, ticket_id: int, viewer: User | None = None) -> Ticket:
    """One ticket, or NotFound (also when ``viewer`` may not see it: out of scope looks
    the same as missing). Without a viewer: the system's own reads (jobs, hooks)."""
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None or (viewer is not None and not can_see_ticket(session, viewer, ticket)):
        raise NotFound("ticket not found", ticket_id=ticket_id)
    return ticket


def events_of(session: Session, ticket_id: int) -> list[TicketEvent]:
    """A ticket's timeline, oldest first."""
    return list(
        session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
    )


def take(session: Session, *, ticket_id: int, actor: User) -> Ticket:
    """Take an unowned ticket (首问负责制). Of two agents taking it at once, one wins; the
    other gets Conflict ``ticket_taken``."""
    with write_transaction(session):
        before = get_ticket(session, ticket_id, actor).status
        status = TicketStatus.assigned.value if before == TicketStatus.new.value else before
        # One conditional statement: the database decides who was first.
        result = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.owner_id.is_(None))
            .values(
                owner_id=actor.id,
                first_owner_id=func.coalesce(Ticket.first_owner_id, actor.id),
                status=status,
                version=Ticket.version + 1,
                updated_at=clock.now(),
            )
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise Conflict("ticket_taken", field="ticket_id")
        ticket = get_ticket(session, ticket_id)
        _event(session, ticket, "take", before, actor, to_user_id=actor.id)
        _refresh_sla(session, ticket, clock.now())
        record(
            session,
            actor=actor_of(actor),
            action="ticket.taken",
            target_type="ticket",
            target_id=ticket_id,
            before={"status": before},
            after={"owner_id": actor.id, "status": ticket.status},
        )
    return ticket


def _may_work(ticket: Ticket, actor: User) -> None:
    """Only the owner works a ticket; supervisors (``ticket.manage``) may step in."""
    if ticket.owner_id != actor.id and not has_permission(actor, Permission.ticket_manage):
        raise PermissionDenied("only the ticket's owner or a supervisor may do this")


def act(
    session: Session,
    *,
    ticket_id: int,
    action: TicketAction,
    actor: User,
    version: int,
    note: str | None = None,
    reply: bool = False,
    resolution_code: str | None = None,
    root_cause: str | None = None,
) -> Ticket:
    """Move a ticket through the workflow; an illegal step is refused naming the status.

    Resolving records the resolution code and root cause given; the resolved hooks run
    after the commit.
    """
    if action is TicketAction.assign:
        raise ValidationFailed(
            [FieldError(("action",), "ticket_use_handover", "Use take or hand-over to assign")]
        )
    try:
        with write_transaction(session):
            ticket = get_ticket(session, ticket_id, actor)
            if ticket.version != version:
                raise Conflict("version_conflict", field="version")
            _may_work(ticket, actor)
            current = TicketStatus(ticket.status)
            target = next_status(current, action)
            if target is None:
                raise Conflict("ticket_transition", field="action", status=current.value)
            now = clock.now()
            days = load_policy(session).reopen_days
            if (
                action is TicketAction.reopen
                and current is TicketStatus.closed
                and ticket.closed_at is not None
                and now - ticket.closed_at > timedelta(days=days)
            ):
                raise Conflict("ticket_reopen_window", field="action", days=days)
            ticket.status = target.value
            if reply and ticket.first_response_at is None:
                ticket.first_response_at = now
            if action is TicketAction.start and ticket.first_response_at is None:
                ticket.first_response_at = now
            if target is TicketStatus.resolved:
                ticket.resolved_at = now
                ticket.resolution_code = resolution_code or ticket.resolution_code
                ticket.root_cause = root_cause or ticket.root_cause
            if target is TicketStatus.closed:
                ticket.closed_at = now
                _schedule_return_visit(session, ticket, now)
            if action is TicketAction.reopen:
                ticket.reopened += 1
                ticket.resolved_at = None
                ticket.closed_at = None
            ticket.updated_at = now
            ticket.version += 1
            session.flush()
            _event(session, ticket, action.value, current.value, actor, note, internal=not reply)
            _refresh_sla(session, ticket, now)
            record(
                session,
                actor=actor_of(actor),
                action=f"ticket.{action.value}",
                target_type="ticket",
                target_id=ticket.id,
                before={"status": current.value},
                after={"status": target.value},
            )
    except StaleDataError as exc:
        raise Conflict("version_conflict", field="version") from exc
    if ticket.status == TicketStatus.resolved.value:
        _run_after(_resolved_hooks, "resolved", session, ticket)
    if action is TicketAction.close and ticket.status == TicketStatus.closed.value:
        _run_after(_closed_hooks, "closed", session, ticket)
    return ticket


def _schedule_return_visit(session: Session, ticket: Ticket, now: datetime) -> None:
    """Book the return visit of a closed complaint for its owner."""
    if ticket.type != TicketType.complaint.value or ticket.customer_id is None:
        return
    calendar = calendar_for(get_settings().timezone)
    day, left = now.astimezone(calendar.tz).date(), RETURN_VISIT_WORKDAYS
    while left:
        day += timedelta(days=1)
        left -= calendar.is_workday(day)
    schedule_follow_up(
        session,
        customer_id=ticket.customer_id,
        owner_id=ticket.owner_id,
        title=ticket.subject,
        due_on=day,
        ticket_id=ticket.id,
    )


def record_satisfaction(
    session: Session,
    *,
    ticket_id: int,
    score: int,
    actor: User | Actor,
    comment: str | None = None,
) -> Ticket:
    """The customer's overall satisfaction with the ticket's handling, 1-10 (the CSAT
    answer of the survey, surveys/responses.py). The ticket stays resolved: a low score
    opens the survey's follow-up ticket instead of reopening this one."""
    if not 1 <= score <= 10:
        raise ValidationFailed(
            [FieldError(("score",), "ticket_score", "Choose a score from 1 to 10")]
        )
    with write_transaction(session):
        ticket = get_ticket(session, ticket_id, actor if isinstance(actor, User) else None)
        current = TicketStatus(ticket.status)
        if current not in DONE:
            raise Conflict("ticket_transition", field="score", status=current.value)
        now = clock.now()
        ticket.satisfaction = score
        ticket.updated_at = now
        ticket.version += 1
        session.flush()
        action = "unsatisfied" if score <= UNSATISFIED_AT_MOST else "satisfaction"
        _event(session, ticket, action, current.value, actor, comment)
        _refresh_sla(session, ticket, now)
        record(
            session,
            actor=actor_of(actor) if isinstance(actor, User) else actor,
            action=f"ticket.{action}",
            target_type="ticket",
            target_id=ticket.id,
            before={"status": current.value},
            after={"status": ticket.status, "satisfaction": score},
        )
    return ticket


def add_customer_message(
    session: Session, *, ticket_id: int, text: str, actor: Actor
) -> TicketEvent:
    """The customer writes (through the self-service page): a customer-visible step on the
    timeline, its owner told in the app; audited. A closed ticket takes no more messages."""
    with write_transaction(session):
        ticket = get_ticket(session, ticket_id)
        if ticket.status == TicketStatus.closed.value:
            raise Conflict("selfservice_closed", field="message")
        event = TicketEvent(
            ticket_id=ticket.id,
            occurred_at=clock.now(),
            actor_id=None,
            action=CUSTOMER_MESSAGE,
            from_status=ticket.status,
            to_status=ticket.status,
            note=text,
            internal=False,
        )
        session.add(event)
        session.flush()
        if ticket.owner_id is not None:
            notify(
                session,
                user_ids=[ticket.owner_id],
                key=f"customer-message:{event.id}",
                kind="ticket_customer_message",
                subject=f"#{ticket.id} {ticket.subject}",
                body=text[:500],
                link=f"/tickets/{ticket.id}",
            )
        record(
            session,
            actor=actor,
            action="ticket.customer_message",
            target_type="ticket",
            target_id=ticket.id,
            after={"event_id": event.id},
        )
    return event


def ensure_public_link(session: Session, ticket: Ticket) -> str:
    """The ticket's private-link secret; a ticket from before links existed gets its hash
    stored now (its own transaction)."""
    token = public_token(ticket)
    if ticket.public_token_hash is None:
        with write_transaction(session):
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id, Ticket.public_token_hash.is_(None))
                .values(public_token_hash=token_hash(token))
                .execution_options(synchronize_session=False)
            )
        set_committed_value(ticket, "public_token_hash", token_hash(token))
    return token


def hand_over(
    session: Session, *, ticket_id: int, to_user_id: int, reason: str, actor: User
) -> Ticket:
    """Hand a ticket to another agent, with the reason on the timeline; the first owner
    stays accountable."""
    with write_transaction(session):
        ticket = get_ticket(session, ticket_id, actor)
        _may_work(ticket, actor)
        receiver = session.get(User, to_user_id)
        if receiver is None or not receiver.is_active:
            raise ValidationFailed(
                [FieldError(("to_user_id",), "owner_unknown", "No such user to own this customer")]
            )
        if not has_permission(receiver, Permission.ticket_write):
            raise ValidationFailed(
                [FieldError(("to_user_id",), "ticket_receiver", "This user cannot work tickets")]
            )
        if ticket.status in {s.value for s in DONE}:
            raise Conflict("ticket_transition", field="action", status=ticket.status)
        previous = ticket.owner_id
        ticket.owner_id = to_user_id
        if ticket.first_owner_id is None:
            ticket.first_owner_id = to_user_id
        if ticket.status == TicketStatus.new.value:
            ticket.status = TicketStatus.assigned.value
        ticket.updated_at = clock.now()
        ticket.version += 1
        session.flush()
        _event(session, ticket, "hand_over", ticket.status, actor, reason, to_user_id=to_user_id)
        # The receiver learns of it in the app (keyed by the event: told once).
        notify(
            session,
            user_ids=[to_user_id],
            key=f"handover:{ticket.id}:{ticket.version}",
            kind="ticket_handover",
            subject=f"#{ticket.id} {ticket.subject}",
            body=reason,
            link=f"/tickets/{ticket.id}",
        )
        record(
            session,
            actor=actor_of(actor),
            action="ticket.handed_over",
            target_type="ticket",
            target_id=ticket.id,
            before={"owner_id": previous},
            after={
                "owner_id": to_user_id,
                "reason": seal_about_customer(session, ticket.customer_id, reason),
            },
        )
    return ticket


# --------------------------------------------------------------------------- reading


def to_read(
    ticket: Ticket,
    events: list[TicketEvent],
    now: datetime,
    ctx: SlaContext,
    *,
    with_events: bool = True,
) -> TicketRead:
    """A ticket with its SLA figures (and its timeline)."""
    read = TicketRead.model_validate(ticket)
    read.sla = sla(ticket, events, now, ctx.calendar_of(ticket), ctx.policy)
    read.events = [TicketEventRead.model_validate(e) for e in events] if with_events else []
    return read


@dataclass(frozen=True)
class TicketFilters:
    """Queue filters: mine, my teams', unassigned, breaching soon, by status, type,
    priority or customer; open ones by default."""

    owner_id: int | None = None
    team_ids: tuple[int, ...] | None = None
    unassigned: bool = False
    status: TicketStatus | None = None
    customer_id: int | None = None
    include_done: bool = False
    type: TicketType | None = None
    priority: Priority | None = None
    # Only tickets whose nearest target falls due before this moment (or is already past).
    due_before: datetime | None = None


def list_tickets(
    session: Session,
    *,
    filters: TicketFilters,
    now: datetime,
    ctx: SlaContext,
    limit: int = 50,
    offset: int = 0,
    viewer: User | None = None,
) -> list[TicketRead]:
    """A queue page, each ticket with its SLA countdowns: urgent first then oldest first;
    the breaching-soon queue soonest due first. With ``viewer``: only the tickets in their
    scope (:func:`ticket_clause`)."""
    stmt = select(Ticket)
    seen = ticket_clause(viewer) if viewer is not None else None
    if seen is not None:
        stmt = stmt.where(seen)
    if filters.owner_id is not None:
        stmt = stmt.where(Ticket.owner_id == filters.owner_id)
    if filters.team_ids is not None:
        stmt = stmt.where(Ticket.team_id.in_(filters.team_ids or (-1,)))
    if filters.unassigned:
        stmt = stmt.where(Ticket.owner_id.is_(None))
    if filters.status is not None:
        stmt = stmt.where(Ticket.status == filters.status.value)
    elif not filters.include_done:
        stmt = stmt.where(Ticket.status.not_in([s.value for s in DONE]))
    if filters.customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == filters.customer_id)
    if filters.type is not None:
        stmt = stmt.where(Ticket.type == filters.type.value)
    if filters.priority is not None:
        stmt = stmt.where(Ticket.priority == filters.priority.value)
    if filters.due_before is not None:
        stmt = stmt.where(Ticket.sla_due_at <= filters.due_before).order_by(Ticket.sla_due_at)
    rank = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=Ticket.priority, else_=4)
    tickets = list(session.scalars(stmt.order_by(rank, Ticket.id).limit(limit).offset(offset)))
    by_ticket: dict[int, list[TicketEvent]] = {t.id: [] for t in tickets}
    if tickets:
        for event in session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id.in_(list(by_ticket)))
            .order_by(TicketEvent.id)
        ):
            by_ticket[event.ticket_id].append(event)
    return [to_read(t, by_ticket[t.id], now, ctx, with_events=False) for t in tickets]
