"""Reading responses back: one response with its answers, and a customer's survey history
for the 360 view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.surveys.models import SurveyAnswer, SurveyResponse, SurveyTemplate, SurveyVersion
from guanxi.surveys.results import DIM_COLUMNS
from guanxi.surveys.schemas import AnswerRead, ResponseRead
from guanxi.surveys.service import version_view


def response_read(session: Session, response: SurveyResponse) -> ResponseRead:
    """A response with its scores and every answer beside its question."""
    view = version_view(session, response.version_id)
    by_question = {
        a.question_id: a
        for a in session.scalars(
            select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
        )
    }
    answers = []
    for q in view.questions:
        a = by_question.get(q.id)
        if a is None:
            continue
        answers.append(
            AnswerRead(
                code=q.code,
                kind=q.kind,
                label_zh=q.label_zh,
                label_en=q.label_en,
                value_int=a.value_int,
                value_text=a.value_text,
                choices=a.choices.split(",") if a.choices else [],
            )
        )
    return ResponseRead(
        id=response.id,
        template=view.template_code,
        version=view.number,
        customer_id=response.customer_id,
        ticket_id=response.ticket_id,
        shipment_id=response.shipment_id,
        trigger=response.trigger,
        channel=response.channel,
        language=response.language,
        entered_by=response.entered_by,
        submitted_at=response.submitted_at,
        csat=response.csat,
        nps=response.nps,
        dimensions={d: getattr(response, col.key) for d, col in DIM_COLUMNS.items()},
        reason=response.reason,
        region=response.region,
        service_type=response.service_type,
        agent_id=response.agent_id,
        follow_up=response.follow_up,
        follow_up_ticket_id=response.follow_up_ticket_id,
        answers=answers,
    )


@dataclass(frozen=True)
class HistoryRow:
    """One of a customer's responses, as the 360 panel lists it."""

    id: int
    submitted_at: datetime
    template_code: str
    name_zh: str
    name_en: str
    version: int
    channel: str
    csat: int | None
    nps: int | None
    follow_up_ticket_id: int | None
    ticket_id: int | None


@dataclass(frozen=True)
class CustomerSurveys:
    """A customer's survey history: the latest NPS and CSAT given, and the newest answers."""

    latest_nps: int | None
    latest_csat: int | None
    responses: list[HistoryRow]
    open_invitations: int


def customer_surveys(session: Session, customer_id: int, *, limit: int = 8) -> CustomerSurveys:
    """The 360 panel's data (two indexed reads on the customer's responses)."""
    from sqlalchemy import func

    from guanxi.core import clock
    from guanxi.surveys.models import SurveyInvitation

    rows = [
        HistoryRow(*row)
        for row in session.execute(
            select(
                SurveyResponse.id,
                SurveyResponse.submitted_at,
                SurveyTemplate.code,
                SurveyTemplate.name_zh,
                SurveyTemplate.name_en,
                SurveyVersion.number,
                SurveyResponse.channel,
                SurveyResponse.csat,
                SurveyResponse.nps,
                SurveyResponse.follow_up_ticket_id,
                SurveyResponse.ticket_id,
            )
            .join(SurveyTemplate, SurveyTemplate.id == SurveyResponse.template_id)
            .join(SurveyVersion, SurveyVersion.id == SurveyResponse.version_id)
            .where(SurveyResponse.customer_id == customer_id)
            .order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())
            .limit(limit)
        )
    ]
    latest_nps = next((r.nps for r in rows if r.nps is not None), None)
    latest_csat = next((r.csat for r in rows if r.csat is not None), None)
    if len(rows) == limit and (latest_nps is None or latest_csat is None):
        # Older answers than the panel shows may hold them.
        for column, known in ((SurveyResponse.nps, latest_nps), (SurveyResponse.csat, latest_csat)):
            if known is None:
                value = session.scalar(
                    select(column)
                    .where(SurveyResponse.customer_id == customer_id, column.is_not(None))
                    .order_by(SurveyResponse.submitted_at.desc())
                    .limit(1)
                )
                if column is SurveyResponse.nps:
                    latest_nps = value
                else:
                    latest_csat = value
    pending = session.scalar(
        select(func.count()).where(
            SurveyInvitation.customer_id == customer_id,
            SurveyInvitation.status == "open",
            SurveyInvitation.expires_at > clock.now(),
        )
    )
    return CustomerSurveys(latest_nps, latest_csat, rows, int(pending or 0))
