"""Responses: storing the checked answers (answers.py) in one transaction, what follows
a stored response, and the ways in: a link, a ticket's private page, an outlet's QR code,
an agent typing in a paper or phone answer.

Storing through an invitation first marks it answered with one conditional UPDATE
(``status = 'open' AND expires_at > now``): of two submissions racing, one updates the
row and the other finds it answered, on SQLite (writers serialised by ``BEGIN
IMMEDIATE``) and on PostgreSQL (the second UPDATE waits for the first to commit and then
re-reads the row). The response's unique ``invitation_id`` backs this up.

After the commit: the CSAT score goes to the ticket surveyed (``tickets.service.
record_satisfaction``, 1-10), and a detractor (NPS 0-6, or CSAT <= 4 where no NPS was
asked) gets exactly one follow-up ticket: the response is marked ``pending`` with the
answer and its ticket opened once (followups.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.surveys import invitations
from guanxi.surveys.answers import Parsed, parse_answers, scores_of
from guanxi.surveys.enums import (
    FollowUp,
    InvitationStatus,
    ResponseChannel,
    Trigger,
)
from guanxi.surveys.followups import open_follow_up
from guanxi.surveys.invitations import InvitationView
from guanxi.surveys.models import SurveyAnswer, SurveyInvitation, SurveyResponse
from guanxi.surveys.schemas import AnswerValue
from guanxi.surveys.service import VersionView, version_view

log = logging.getLogger("guanxi.surveys")

# Who answered, in the audit log, when the customer did (no sign-in on the survey page).
RESPONDENT = Actor(None, "survey")


class SurveyLinkError(DomainError):
    """A survey link that cannot be answered: ``reason`` is ``invalid`` (unknown,
    malformed, tampered), ``expired`` or ``answered``. The page says which only for a
    real link (the holder knows it is real)."""

    status = 404
    code = "survey_link"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = {"invalid": 404, "expired": 410, "answered": 409}[reason]


# --------------------------------------------------------------------------- storing


@dataclass(frozen=True)
class Context:
    """Where and by whom the service surveyed was given (fixed at the time of the answer)."""

    region: str | None = None
    service_type: str | None = None
    agent_id: int | None = None


def context_of(
    session: Session,
    *,
    ticket_id: int | None,
    shipment_id: int | None,
    customer_id: int | None,
    region: str | None = None,
) -> Context:
    """The ticket's region and owner, the shipment's service type and destination, else
    the customer's region."""
    from guanxi.customers.models import Customer
    from guanxi.shipments.models import Shipment
    from guanxi.tickets.models import Ticket

    service_type: str | None = None
    agent_id: int | None = None
    if ticket_id is not None:
        row = session.execute(
            select(Ticket.region, Ticket.owner_id, Ticket.waybill_no).where(Ticket.id == ticket_id)
        ).first()
        if row is not None:
            region = region or row.region
            agent_id = row.owner_id
            if row.waybill_no and shipment_id is None:
                service_type = session.scalar(
                    select(Shipment.service_type).where(Shipment.waybill_no == row.waybill_no)
                )
    if shipment_id is not None:
        found = session.execute(
            select(Shipment.service_type, Shipment.dest_province).where(Shipment.id == shipment_id)
        ).first()
        if found is not None:
            service_type = found.service_type
            region = region or found.dest_province
    if region is None and customer_id is not None:
        region = session.scalar(select(Customer.region).where(Customer.id == customer_id))
    return Context((region or None) and region[:30], service_type, agent_id)


_DIM_COLUMNS = {
    "service_attitude": "dim_service_attitude",
    "timeliness": "dim_timeliness",
    "process": "dim_process",
    "price": "dim_price",
    "after_sales": "dim_after_sales",
}


def _mark_answered(session: Session, invitation: InvitationView, now: datetime) -> None:
    """Use the invitation up; refuse (naming why) when it is answered or expired."""
    result = session.execute(
        update(SurveyInvitation)
        .where(
            SurveyInvitation.id == invitation.id,
            SurveyInvitation.status == InvitationStatus.open.value,
            SurveyInvitation.expires_at > now,
        )
        .values(status=InvitationStatus.answered.value, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], result).rowcount == 1:
        return
    status = session.scalar(
        select(SurveyInvitation.status).where(SurveyInvitation.id == invitation.id)
    )
    raise SurveyLinkError("answered" if status == InvitationStatus.answered.value else "expired")


def _emit(session: Session, response: SurveyResponse, view: VersionView) -> None:
    """Webhooks "survey.answered" for every answer, "survey.detractor" for a detractor
    (queued in the response's transaction; no personal data in the payload)."""
    try:
        from guanxi.notify.webhooks import emit
    except ImportError:  # the notify part without webhooks: nothing to tell
        return
    payload = {
        "response_id": response.id,
        "template": view.template_code,
        "version": view.number,
        "customer_id": response.customer_id,
        "ticket_id": response.ticket_id,
        "shipment_id": response.shipment_id,
        "trigger": response.trigger,
        "channel": response.channel,
        "csat": response.csat,
        "nps": response.nps,
        "dimensions": {dim: getattr(response, col) for dim, col in _DIM_COLUMNS.items()},
        "submitted_at": response.submitted_at.isoformat(),
    }
    emit(session, "survey.answered", payload)
    if response.follow_up != FollowUp.none.value:
        emit(session, "survey.detractor", payload)


@dataclass(frozen=True)
class Respondent:
    """Everything about a response that is not an answer."""

    trigger: Trigger
    channel: ResponseChannel
    language: str
    customer_id: int | None = None
    ticket_id: int | None = None
    shipment_id: int | None = None
    outlet_id: int | None = None
    entered_by: int | None = None
    phone_enc: str | None = None
    phone_bidx: str | None = None
    region: str | None = None


def store(
    session: Session,
    *,
    view: VersionView,
    parsed: list[Parsed],
    who: Respondent,
    invitation: InvitationView | None,
    actor: Actor,
) -> SurveyResponse:
    """Write the response and its answers in one transaction (the invitation used up
    first), with its webhooks and audit entry; then run what follows an answer."""
    scores = scores_of(parsed)
    ctx = context_of(
        session,
        ticket_id=who.ticket_id,
        shipment_id=who.shipment_id,
        customer_id=who.customer_id,
        region=who.region,
    )
    with write_transaction(session):
        now = clock.now()
        if invitation is not None:
            _mark_answered(session, invitation, now)
        response = SurveyResponse(
            invitation_id=invitation.id if invitation else None,
            template_id=view.template_id,
            version_id=view.id,
            customer_id=who.customer_id,
            ticket_id=who.ticket_id,
            shipment_id=who.shipment_id,
            outlet_id=who.outlet_id,
            trigger=who.trigger.value,
            channel=who.channel.value,
            language=who.language,
            entered_by=who.entered_by,
            submitted_at=now,
            csat=scores.csat,
            nps=scores.nps,
            reason=scores.reason,
            region=ctx.region,
            service_type=ctx.service_type,
            agent_id=ctx.agent_id,
            phone_enc=who.phone_enc,
            phone_bidx=who.phone_bidx,
            follow_up=(FollowUp.pending if scores.detractor else FollowUp.none).value,
        )
        for dim, value in scores.dims.items():
            setattr(response, _DIM_COLUMNS[dim], value)
        session.add(response)
        session.flush()
        if parsed:
            session.execute(
                insert(SurveyAnswer),
                [
                    {
                        "response_id": response.id,
                        "question_id": p.question.id,
                        "value_int": p.value_int,
                        "value_text": p.value_text,
                        "choices": ",".join(p.choices) or None,
                    }
                    for p in parsed
                ],
            )
        _emit(session, response, view)
        record(
            session,
            actor=actor,
            action="survey.answered",
            target_type="survey_response",
            target_id=response.id,
            after={
                "template": view.template_code,
                "version": view.number,
                "channel": response.channel,
                "invitation_id": response.invitation_id,
                "customer_id": response.customer_id,
                "ticket_id": response.ticket_id,
                "csat": response.csat,
                "nps": response.nps,
            },
        )
    after_answer(session, response, actor=actor)
    return response


def after_answer(session: Session, response: SurveyResponse, *, actor: Actor = RESPONDENT) -> None:
    """What follows a committed response: the ticket's satisfaction (1-10), recorded by
    ``actor`` (the customer, or the agent who typed the answer in), and the detractor's
    follow-up ticket. A failure here is logged (by id only) and never undoes the stored
    answer; a follow-up left pending is opened by the worker."""
    if response.ticket_id is not None and response.csat is not None:
        from guanxi.tickets.service import record_satisfaction

        try:
            record_satisfaction(
                session,
                ticket_id=response.ticket_id,
                score=response.csat,
                actor=actor,
                comment=response.reason,
            )
        except DomainError as exc:
            # The ticket was reopened or removed since: the survey still counts.
            session.rollback()
            log.info("survey %s: ticket satisfaction not recorded (%s)", response.id, exc.code)
    if response.follow_up == FollowUp.pending.value:
        try:
            open_follow_up(session, response.id)
        except Exception:
            session.rollback()
            log.exception(
                "survey %s: follow-up ticket not opened (the worker retries)", response.id
            )


# --------------------------------------------------------------------------- answering


def _usable(invitation: InvitationView | None, now: datetime) -> InvitationView:
    if invitation is None:
        raise SurveyLinkError("invalid")
    if invitation.status == InvitationStatus.answered.value:
        raise SurveyLinkError("answered")
    if invitation.expired(now):
        raise SurveyLinkError("expired")
    return invitation


def open_link(session: Session, token: str) -> tuple[InvitationView, VersionView]:
    """The invitation of a link and the questions it asks; SurveyLinkError when it cannot
    be answered (unknown, tampered, expired or answered)."""
    invitation = _usable(invitations.by_token(session, token), clock.now())
    return invitation, version_view(session, invitation.version_id)


def open_ticket_survey(session: Session, ticket_id: int) -> tuple[InvitationView, VersionView]:
    """The survey of a ticket (from its private page); SurveyLinkError when it has none or
    it cannot be answered."""
    invitation = _usable(invitations.of_ticket(session, ticket_id), clock.now())
    return invitation, version_view(session, invitation.version_id)


def answer_invitation(
    session: Session,
    *,
    invitation: InvitationView,
    answers: Mapping[str, AnswerValue],
    lang: str,
    channel: ResponseChannel | None = None,
    entered_by: User | None = None,
) -> SurveyResponse:
    """Store the answers to an invitation (checked against its version) and use it up."""
    view = version_view(session, invitation.version_id)
    parsed = parse_answers(view, answers, lang)
    who = Respondent(
        trigger=Trigger(invitation.trigger),
        channel=channel or ResponseChannel(invitation.channel),
        language=lang,
        customer_id=invitation.customer_id,
        ticket_id=invitation.ticket_id,
        shipment_id=invitation.shipment_id,
        entered_by=entered_by.id if entered_by else None,
    )
    actor = actor_of(entered_by) if entered_by else RESPONDENT
    return store(session, view=view, parsed=parsed, who=who, invitation=invitation, actor=actor)


def answer_link(
    session: Session, *, token: str, answers: Mapping[str, AnswerValue], lang: str
) -> SurveyResponse:
    """The public page's submission: the link's invitation answered (see
    :func:`answer_invitation`)."""
    invitation, _view = open_link(session, token)
    return answer_invitation(session, invitation=invitation, answers=answers, lang=lang)


def get_response(session: Session, response_id: int) -> SurveyResponse:
    """One response, or NotFound."""
    response = session.get(SurveyResponse, response_id)
    if response is None:
        raise NotFound("survey response not found", response_id=response_id)
    return response


def _no_answers(parsed: list[Parsed]) -> None:
    if not parsed:
        raise ValidationFailed(
            [FieldError(("answers",), "survey_no_answers", "Answer at least one question")]
        )


def _phone(phone: str | None) -> tuple[str | None, str | None]:
    """(ciphertext, blind index) of a typed phone number; a validation error when it is
    not a phone number."""
    from guanxi.customers.validation import InvalidValue, normalize_phone
    from guanxi.security.crypto import cipher

    if not phone or not phone.strip():
        return None, None
    try:
        number = normalize_phone(phone)
    except InvalidValue:
        raise ValidationFailed(
            [FieldError(("phone",), "survey_phone", "Not a valid mobile number")]
        ) from None
    c = cipher()
    return c.encrypt("phone", number), c.blind_index("phone", number)


def answer_at_outlet(
    session: Session,
    *,
    outlet: Any,
    answers: Mapping[str, AnswerValue],
    lang: str,
    phone: str | None = None,
) -> SurveyResponse:
    """An answer given through an outlet's QR code: anonymous, or tied to the customer
    whose phone number was typed (when exactly one customer has it)."""
    from guanxi.customers.models import CustomerPhone

    view = version_view(session, outlet.version_id)
    parsed = parse_answers(view, answers, lang)
    _no_answers(parsed)
    phone_enc, phone_bidx = _phone(phone)
    customer_id: int | None = None
    if phone_bidx is not None:
        owners = set(
            session.scalars(
                select(CustomerPhone.customer_id).where(CustomerPhone.phone_bidx == phone_bidx)
            )
        )
        customer_id = owners.pop() if len(owners) == 1 else None
    who = Respondent(
        trigger=Trigger.outlet,
        channel=ResponseChannel.qr,
        language=lang,
        customer_id=customer_id,
        outlet_id=outlet.id,
        phone_enc=phone_enc,
        phone_bidx=phone_bidx,
        region=outlet.region,
    )
    return store(session, view=view, parsed=parsed, who=who, invitation=None, actor=RESPONDENT)


def enter_answers(session: Session, *, response_in: Any, actor: User) -> SurveyResponse:
    """Answers an agent types in from paper or the phone (``entered_by`` recorded). With a
    ticket whose survey of this template is still open, that invitation is used up."""
    from guanxi.customers.service import get_customer
    from guanxi.surveys.service import live_version_id, template_by_code
    from guanxi.tickets.service import get_ticket

    template = template_by_code(session, response_in.template)
    customer_id = response_in.customer_id
    invitation: InvitationView | None = None
    if response_in.ticket_id is not None:
        ticket = get_ticket(session, response_in.ticket_id)
        if customer_id is not None and ticket.customer_id not in (None, customer_id):
            raise ValidationFailed(
                [FieldError(("ticket_id",), "survey_ticket_customer", "Not this customer's ticket")]
            )
        customer_id = customer_id or ticket.customer_id
        found = invitations.of_ticket(session, ticket.id)
        if (
            found is not None
            and found.template_id == template.id
            and found.status == InvitationStatus.open.value
            and not found.expired(clock.now())
        ):
            invitation = found
    if customer_id is not None:
        # The agent must be able to see the customer (sales: their own book).
        get_customer(session, customer_id=customer_id, viewer=actor)
    version_id = invitation.version_id if invitation else live_version_id(session, template)
    view = version_view(session, version_id)
    parsed = parse_answers(view, response_in.answers, response_in.language)
    _no_answers(parsed)
    who = Respondent(
        trigger=Trigger(invitation.trigger) if invitation else Trigger.agent,
        channel=ResponseChannel(response_in.channel),
        language=response_in.language,
        customer_id=customer_id,
        ticket_id=response_in.ticket_id,
        shipment_id=invitation.shipment_id if invitation else None,
        entered_by=actor.id,
    )
    return store(
        session, view=view, parsed=parsed, who=who, invitation=invitation, actor=actor_of(actor)
    )
