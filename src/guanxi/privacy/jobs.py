"""The periodic job of data-subject requests (``guanxi worker``): the privacy officers are
told, in the app (and by e-mail where they have an address), of open requests due within
the policy's warning days and of those past due — once per request, due date and kind of
notice, so the job is safe to run hourly and on several workers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import i18n
from guanxi.core.db import write_transaction
from guanxi.core.i18n import N_
from guanxi.notify.service import Note, notify_many
from guanxi.privacy.enums import LABELS, OPEN
from guanxi.privacy.models import PrivacyRequest
from guanxi.privacy.service import load_policy, local_day, working_days_left
from guanxi.security.models import User
from guanxi.security.permissions import Permission, Role, role_has
from guanxi.tickets.calendar import BusinessCalendar

DUE_SUBJECT = N_("Privacy request #{id} ({kind}) is due on {due}: {days} working days left")
OVERDUE_SUBJECT = N_("Privacy request #{id} ({kind}) is overdue: it was due on {due}")
# The customer by number only: notifications are also e-mailed, names stay in the app.
BODY = N_("Customer #{customer}. Answer it or reject it with a reason on the request page.")


@dataclass
class DueOutcome:
    """What one run found and sent."""

    due_soon: int = 0
    overdue: int = 0
    notified: int = 0

    def figures(self) -> dict[str, int]:
        """The run's figures for the worker's log."""
        return {"due_soon": self.due_soon, "overdue": self.overdue, "notified": self.notified}


def _officers(session: Session) -> list[int]:
    """Active users whose role works requests (``privacy.manage``), admins aside: the
    privacy officers are the ones responsible (PIPL art. 52)."""
    roles = [r.value for r in Role if role_has(r, Permission.privacy_manage) and r != Role.admin]
    return list(
        session.scalars(
            select(User.id).where(User.role.in_(roles), User.is_active.is_(True)).order_by(User.id)
        )
    )


def notify_due(
    session: Session, *, now: datetime, language: str, calendar: BusinessCalendar
) -> DueOutcome:
    """Tell the privacy officers of open requests due within the warning days and of
    overdue ones (one transaction)."""
    outcome = DueOutcome()
    with write_transaction(session):
        warn = load_policy(session).warn_working_days
        today = local_day(now, calendar)
        officers = _officers(session)
        rows = session.scalars(
            select(PrivacyRequest)
            .where(PrivacyRequest.status.in_(OPEN))
            .order_by(PrivacyRequest.due_on, PrivacyRequest.id)
        ).all()
        notes = []
        for req in rows:
            left = working_days_left(today, req.due_on, calendar)
            params = {
                "id": req.id,
                "kind": i18n.gettext(language, LABELS[req.kind]),
                "due": req.due_on.isoformat(),
            }
            if req.due_on < today:
                outcome.overdue += 1
                key, kind = f"privacy_overdue:{req.id}:{req.due_on.isoformat()}", "privacy_overdue"
                subject = i18n.gettext(language, OVERDUE_SUBJECT, **params)
            elif left <= warn:
                outcome.due_soon += 1
                key, kind = f"privacy_due:{req.id}:{req.due_on.isoformat()}", "privacy_due"
                subject = i18n.gettext(language, DUE_SUBJECT, days=left, **params)
            else:
                continue
            notes.append(
                Note(
                    tuple(officers),
                    key,
                    kind,
                    subject,
                    i18n.gettext(language, BODY, customer=req.customer_id),
                    f"/privacy/requests/{req.id}",
                )
            )
        outcome.notified = notify_many(session, notes)
    return outcome


def privacy_due(
    session_factory: Callable[[], Session], *, now: datetime, timezone: str, language: str
) -> dict[str, int]:
    """The worker's entry: one run of :func:`notify_due` on the site's calendar."""
    from guanxi.tickets.sla import calendar_for

    with session_factory() as session:
        return notify_due(
            session, now=now, language=language, calendar=calendar_for(timezone)
        ).figures()
