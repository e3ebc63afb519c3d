"""The detractor's follow-up ticket (回访): opened once per response.

The response is stored ``pending`` with the answer; one process claims it (``pending`` ->
``opening``, a conditional UPDATE: of two, one wins), opens the ticket through
``tickets.service.create_ticket`` (type service request, category 回访 / 满意度回访, normal
routing, the customer's reason in the description) and records its id (``opened``). A
failure to open puts it back to ``pending`` for the worker (``jobs.follow_ups``); a claim
whose process died is left ``opening`` rather than risk a second ticket.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.config import get_settings
from guanxi.core import i18n
from guanxi.core.db import write_transaction
from guanxi.core.errors import ValidationFailed
from guanxi.core.i18n import N_
from guanxi.surveys.enums import FollowUp
from guanxi.surveys.models import SurveyResponse
from guanxi.surveys.service import version_view

# Who opens the follow-up tickets.
SURVEYS = Actor(None, "surveys")
FOLLOW_UP_CATEGORY = "return_visit.survey"
# The follow-up ticket's tag: its own resolution sends no survey.
FOLLOW_UP_TAG = "survey_follow_up"

FOLLOW_UP_SUBJECT = N_("Survey follow-up: {survey}, NPS {nps}, CSAT {csat}")
FOLLOW_UP_BODY = N_(
    "The customer gave a low score in the survey \u201c{survey}\u201d ({channel}, {at}).\n"
    "NPS {nps} · CSAT {csat}\n\nThe customer's reason: {reason}\n\n"
    "Call the customer back (回访), find out what went wrong and put it right. "
    "The answers: {link}\n"
)


def _follow_up_text(session: Session, response: SurveyResponse, lang: str) -> tuple[str, str]:
    from guanxi.surveys.enums import LABELS
    from guanxi.surveys.invitations import survey_url

    view = version_view(session, response.version_id)
    survey = view.name(lang)
    dash = "—"
    params = {
        "survey": survey,
        "nps": dash if response.nps is None else response.nps,
        "csat": dash if response.csat is None else response.csat,
    }
    base = survey_url("x").rsplit("/q/", 1)[0]
    at = response.submitted_at.astimezone(_zone()).strftime("%Y-%m-%d %H:%M")
    subject = i18n.gettext(lang, FOLLOW_UP_SUBJECT, **params)
    body = i18n.gettext(
        lang,
        FOLLOW_UP_BODY,
        channel=i18n.gettext(lang, LABELS.get(response.channel, response.channel)),
        at=at,
        reason=response.reason or dash,
        link=f"{base}/surveys/responses/{response.id}",
        **params,
    )
    return subject[:200], body


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(get_settings().timezone)


def open_follow_up(session: Session, response_id: int) -> int | None:
    """Open the follow-up ticket of a detractor's response, once: returns its id, or None
    when another process has it (or the response needs none)."""
    from guanxi.tickets.categories import check_code
    from guanxi.tickets.enums import TicketChannel, TicketType
    from guanxi.tickets.schemas import TicketCreate
    from guanxi.tickets.service import create_ticket

    with write_transaction(session):
        claimed = session.execute(
            update(SurveyResponse)
            .where(
                SurveyResponse.id == response_id,
                SurveyResponse.follow_up == FollowUp.pending.value,
            )
            .values(follow_up=FollowUp.opening.value)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], claimed).rowcount != 1:
            return None
    response = session.get(SurveyResponse, response_id, populate_existing=True)
    if response is None:  # pragma: no cover - claimed just above
        return None
    lang = get_settings().default_language
    subject, body = _follow_up_text(session, response, lang)
    try:
        check_code(session, FOLLOW_UP_CATEGORY)
        category: str | None = FOLLOW_UP_CATEGORY
    except ValidationFailed:  # an administrator switched the category off
        category = None
    try:
        ticket = create_ticket(
            session,
            ticket_in=TicketCreate(
                type=TicketType.service_request,
                channel=TicketChannel.api,
                customer_id=response.customer_id,
                category=category,
                subject=subject,
                description=body,
                region=(response.region or None) and response.region[:12],
                tags=[FOLLOW_UP_TAG],
            ),
            actor=SURVEYS,
        )
    except Exception:
        # Nothing was opened: back to pending for the worker's next round.
        session.rollback()
        with write_transaction(session):
            session.execute(
                update(SurveyResponse)
                .where(SurveyResponse.id == response_id)
                .values(follow_up=FollowUp.pending.value)
                .execution_options(synchronize_session=False)
            )
        raise
    with write_transaction(session):
        session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.id == response_id)
            .values(follow_up=FollowUp.opened.value, follow_up_ticket_id=ticket.id)
            .execution_options(synchronize_session=False)
        )
        record(
            session,
            actor=SURVEYS,
            action="survey.follow_up_opened",
            target_type="survey_response",
            target_id=response_id,
            after={"ticket_id": ticket.id},
        )
    return ticket.id


def pending_follow_ups(session: Session, *, limit: int = 200) -> list[int]:
    """Responses whose follow-up ticket is still to be opened."""
    return list(
        session.scalars(
            select(SurveyResponse.id)
            .where(SurveyResponse.follow_up == FollowUp.pending.value)
            .order_by(SurveyResponse.id)
            .limit(limit)
        )
    )
