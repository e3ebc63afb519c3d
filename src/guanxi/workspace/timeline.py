"""One service timeline of a customer for the 360 page: contacts logged (calls, visits,
return visits), the steps of their tickets (opened, handed over, resolved, reopened,
closed, the customer's own messages and satisfaction) and their compensation claims
(filed, decided, paid), newest first. Read-only; each source is one indexed query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import i18n
from guanxi.interactions.enums import LABELS as CONTACT_LABELS
from guanxi.interactions.service import history
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.tickets.enums import LABELS as DESK_LABELS
from guanxi.tickets.models import Claim, Ticket, TicketEvent

# The ticket steps a customer's timeline shows (taking, starting and internal notes are
# the desk's own business and stay on the ticket).
TICKET_STEPS = (
    "create",
    "hand_over",
    "resolve",
    "reopen",
    "unsatisfied",
    "satisfaction",
    "close",
    "customer_message",
)


@dataclass(frozen=True)
class TimelineEntry:
    """One moment: when, what kind of thing (contact / ticket / claim), its title in the
    reader's language, a line of detail and where to open it."""

    at: datetime
    source: str
    title: str
    text: str
    link: str | None


def service_timeline(
    session: Session, *, customer_id: int, viewer: User, lang: str, limit: int = 30
) -> list[TimelineEntry]:
    """The customer's contacts, ticket steps and claims, newest first (tickets and claims
    only for users who may read tickets)."""

    def label(labels: dict[str, str], code: str) -> str:
        return i18n.gettext(lang, labels.get(code, code))

    out = [
        TimelineEntry(
            i.occurred_at,
            "contact",
            label(CONTACT_LABELS, i.kind),
            i.summary + (f" → {i.outcome}" if i.outcome else ""),
            None,
        )
        for i in history(session, customer_id=customer_id, viewer=viewer, limit=limit)
    ]
    if has_permission(viewer, Permission.ticket_read):
        steps = session.execute(
            select(TicketEvent, Ticket.subject)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(Ticket.customer_id == customer_id, TicketEvent.action.in_(TICKET_STEPS))
            .order_by(TicketEvent.occurred_at.desc(), TicketEvent.id.desc())
            .limit(limit)
        )
        for event, subject in steps:
            # Internal notes never leave the ticket; replies and customer messages may.
            note = f" — {event.note}" if event.note and not event.internal else ""
            out.append(
                TimelineEntry(
                    event.occurred_at,
                    "ticket",
                    label(DESK_LABELS, event.action),
                    f"#{event.ticket_id} {subject}{note}",
                    f"/tickets/{event.ticket_id}",
                )
            )
        claims = session.scalars(
            select(Claim)
            .where(Claim.customer_id == customer_id)
            .order_by(Claim.id.desc())
            .limit(limit)
        )
        for claim in claims:
            amount = claim.approved_fen if claim.approved_fen is not None else claim.requested_fen
            text = f"#{claim.id} ¥{amount / 100:,.2f}"
            link = f"/claims/{claim.id}"
            out.append(
                TimelineEntry(
                    claim.created_at, "claim", label(DESK_LABELS, "submitted"), text, link
                )
            )
            if claim.decided_at is not None:
                decided = "rejected" if claim.status == "rejected" else "approved"
                out.append(
                    TimelineEntry(
                        claim.decided_at, "claim", label(DESK_LABELS, decided), text, link
                    )
                )
            if claim.paid_at is not None:
                out.append(
                    TimelineEntry(claim.paid_at, "claim", label(DESK_LABELS, "paid"), text, link)
                )
    out.sort(key=lambda e: e.at, reverse=True)
    return out[:limit]
