"""The survey after a resolved ticket replaces the service desk's 1-5 check: the customer is
invited (SMS with the short link, or the link in the resolution mail), the CSAT answer
becomes the ticket's satisfaction (1-10, the ticket stays resolved), and a detractor's
answer opens exactly one follow-up ticket."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.notify.models import OutboxMessage
from guanxi.surveys import followups, responses
from guanxi.surveys.enums import FollowUp
from guanxi.surveys.invitations import hash_token
from guanxi.surveys.models import SurveyInvitation, SurveyResponse
from guanxi.surveys.responses import SurveyLinkError
from guanxi.tickets.models import Ticket, TicketEvent
from tests.integration.surveys.helpers import DETRACTOR, PROMOTER, resolved_ticket

LINK = re.compile(r"https?://[^\s]+/q/([A-Za-z0-9_-]{22})")


def _messages(db: Session, prefix: str) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.key.startswith(prefix))
            .order_by(OutboxMessage.id)
        )
    )


def test_resolving_invites_by_sms_and_the_mail_carries_the_link(
    db: Session, agent: Any, mobile_customer: Any
) -> None:
    ticket = resolved_ticket(db, agent, mobile_customer.id)
    invitation = db.scalar(select(SurveyInvitation).where(SurveyInvitation.ticket_id == ticket.id))
    assert invitation is not None
    assert (invitation.key, invitation.channel, invitation.trigger, invitation.status) == (
        f"ticket:{ticket.id}:0",
        "sms",
        "ticket",
        "open",
    )
    assert (invitation.expires_at - invitation.created_at).days == 14
    [sms] = _messages(db, f"survey-invite:{invitation.id}")
    assert (sms.channel, sms.category, sms.template, sms.customer_id, sms.source) == (
        "sms",
        "service",
        "survey_invite",
        mobile_customer.id,
        f"survey:{invitation.id}",
    )
    token = json.loads(sms.params or "{}")["link"].rsplit("/q/", 1)[1]
    # Only the secret's hash is stored.
    assert invitation.token_hash == hash_token(token) != token
    # The resolution mail carries the same link instead of the old 1-5 question.
    [mail] = _messages(db, f"selfservice-resolved:{ticket.id}:")
    assert LINK.search(mail.body).group(1) == token  # type: ignore[union-attr]
    assert "1 到 5" not in mail.body
    assert "from 1 to 5" not in mail.body
    # A second run of the hook invites nobody again.
    from guanxi.surveys.triggers import invite_after_ticket

    assert invite_after_ticket(db, ticket, True) is None
    assert db.scalar(select(func.count()).where(SurveyInvitation.ticket_id == ticket.id)) == 1


def test_without_a_mobile_the_resolution_mail_is_the_invitation(
    db: Session, agent: Any, email_customer: Any
) -> None:
    ticket = resolved_ticket(db, agent, email_customer.id)
    invitation = db.scalar(select(SurveyInvitation).where(SurveyInvitation.ticket_id == ticket.id))
    assert invitation is not None
    assert invitation.channel == "email"
    assert _messages(db, f"survey-invite:{invitation.id}") == []  # no second mail
    [mail] = _messages(db, f"selfservice-resolved:{ticket.id}:")
    assert LINK.search(mail.body) is not None


def _token(db: Session, ticket: Ticket) -> str:
    [mail] = _messages(db, f"selfservice-resolved:{ticket.id}:")
    found = LINK.search(mail.body)
    assert found is not None
    return found.group(1)


def test_a_promoter_sets_the_ticket_satisfaction_without_a_follow_up(
    db: Session, agent: Any, mobile_customer: Any
) -> None:
    ticket = resolved_ticket(db, agent, mobile_customer.id)
    response = responses.answer_link(db, token=_token(db, ticket), answers=PROMOTER, lang="zh_CN")
    assert (response.csat, response.nps) == (9, 10)
    assert (response.dim_service_attitude, response.dim_timeliness) == (9, 8)
    assert (response.trigger, response.channel, response.follow_up) == ("ticket", "sms", "none")
    db.expire_all()
    done = db.get(Ticket, ticket.id)
    assert done is not None
    assert (done.status, done.satisfaction, done.reopened) == ("resolved", 9, 0)
    last = db.scalar(
        select(TicketEvent.action)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
    )
    assert last == "satisfaction"
    assert db.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_detractor_opens_exactly_one_follow_up_ticket(
    db: Session, agent: Any, mobile_customer: Any
) -> None:
    ticket = resolved_ticket(db, agent, mobile_customer.id, region="浙江省")
    token = _token(db, ticket)
    response = responses.answer_link(db, token=token, answers=DETRACTOR, lang="zh_CN")
    db.expire_all()
    stored = db.get(SurveyResponse, response.id)
    assert stored is not None
    assert stored.follow_up == FollowUp.opened.value
    follow_up = db.get(Ticket, stored.follow_up_ticket_id)
    assert follow_up is not None
    assert (follow_up.type, follow_up.category, follow_up.customer_id, follow_up.tags) == (
        "service_request",
        "return_visit.survey",
        mobile_customer.id,
        "survey_follow_up",
    )
    assert "快递三天没动，客服也没回电话" in (follow_up.description or "")
    assert follow_up.subject.startswith("满意度回访")
    # The surveyed ticket keeps its status; its satisfaction is the CSAT answer.
    surveyed = db.get(Ticket, ticket.id)
    assert surveyed is not None
    assert (surveyed.status, surveyed.satisfaction, surveyed.reopened) == ("resolved", 3, 0)
    # Again (a retry, the worker): no second ticket. Answering again: refused.
    assert followups.open_follow_up(db, response.id) is None
    with pytest.raises(SurveyLinkError) as again:
        responses.answer_link(db, token=token, answers=DETRACTOR, lang="zh_CN")
    assert again.value.reason == "answered"
    assert db.scalar(select(func.count()).where(Ticket.tags == "survey_follow_up")) == 1
    # The follow-up ticket's own resolution sends no survey.
    from guanxi.surveys.triggers import invite_after_ticket

    assert invite_after_ticket(db, follow_up, False) is None


def test_a_follow_up_left_pending_is_opened_by_the_worker_once(
    db: Session, agent: Any, mobile_customer: Any, monkeypatch: Any
) -> None:
    from guanxi.surveys import jobs

    ticket = resolved_ticket(db, agent, mobile_customer.id)

    def crash(session: Session, response_id: int) -> None:
        raise RuntimeError("process died before opening the ticket")

    monkeypatch.setattr(responses, "open_follow_up", crash)
    response = responses.answer_link(db, token=_token(db, ticket), answers=DETRACTOR, lang="en")
    monkeypatch.undo()
    db.expire_all()
    assert db.get(SurveyResponse, response.id).follow_up == "pending"  # type: ignore[union-attr]
    assert jobs.follow_ups(db) == {"opened": 1, "failed": 0}
    assert jobs.follow_ups(db) == {"opened": 0, "failed": 0}
    assert db.scalar(select(func.count()).where(Ticket.tags == "survey_follow_up")) == 1


def test_every_answer_emits_a_webhook_and_a_detractor_a_second(
    db: Session, agent: Any, mobile_customer: Any, email_customer: Any
) -> None:
    from guanxi.audit.service import Actor
    from guanxi.notify import webhooks
    from tests.integration.surveys.helpers import invite

    webhooks.create_endpoint(
        db,
        name="BI",
        url="https://bi.example.cn/hooks",
        events=["survey.answered", "survey.detractor"],
        actor=Actor.system("test"),
    )
    happy = invite(db, mobile_customer.id, "relationship")
    unhappy = invite(db, email_customer.id, "relationship")
    one = responses.answer_link(db, token=happy.token, answers={"nps": 9}, lang="zh_CN")
    two = responses.answer_link(db, token=unhappy.token, answers={"nps": 3}, lang="zh_CN")
    hooks = list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.channel == "webhook")
            .order_by(OutboxMessage.id)
        )
    )
    sent = [(m.template, json.loads(m.body)["data"]["response_id"]) for m in hooks]
    assert sent == [
        ("survey.answered", one.id),
        ("survey.answered", two.id),
        ("survey.detractor", two.id),
    ]
    data = json.loads(hooks[2].body)["data"]
    assert (data["nps"], data["template"], data["customer_id"]) == (
        3,
        "relationship",
        email_customer.id,
    )
    # Ids and scores only: no names, phone numbers or free text.
    assert "王小明" not in hooks[0].body
    assert "13912345678" not in hooks[0].body
