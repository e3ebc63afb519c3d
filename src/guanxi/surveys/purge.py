"""Retention of survey invitation links: an invitation that was never answered and whose
link expired long ago is deleted (its customer, channel and link hash). Answered
invitations stay: the answer points back to them. Called by the retention purge
(:mod:`guanxi.privacy.retention`) inside its transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, select, true, update
from sqlalchemy.orm import Session

from guanxi.core.db import rowcount
from guanxi.surveys.models import SurveyAnswer, SurveyInvitation, SurveyResponse


def _expired_before(before: datetime) -> ColumnElement[bool]:
    return and_(SurveyInvitation.status != "answered", SurveyInvitation.expires_at < before)


def count_expired_invitations(session: Session, *, before: datetime) -> int:
    """Unanswered invitations whose link expired before ``before``."""
    query = select(func.count(SurveyInvitation.id)).where(_expired_before(before))
    return int(session.scalar(query) or 0)


def purge_expired_invitations(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` unanswered invitations whose link expired before ``before``."""
    ids = list(
        session.scalars(
            select(SurveyInvitation.id)
            .where(_expired_before(before))
            .order_by(SurveyInvitation.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(session.execute(delete(SurveyInvitation).where(SurveyInvitation.id.in_(ids))))


def oldest_invitation(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest unanswered invitation still kept was created."""
    kept = true() if before is None else ~_expired_before(before)
    return session.scalar(
        select(func.min(SurveyInvitation.created_at)).where(
            SurveyInvitation.status != "answered", kept
        )
    )


def anonymise_surveys_data(session: Session, customer_ids: list[int]) -> int:
    """Remove the personal texts of these customers' survey responses inside the caller's
    transaction (deletion as anonymisation): reasons, phones and free-text answers; the
    scores stay for the statistics. Returns how many responses were changed."""
    responses = rowcount(
        session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.customer_id.in_(customer_ids))
            .values(reason=None, phone_enc=None, phone_bidx=None)
        )
    )
    session.execute(
        update(SurveyAnswer)
        .where(
            SurveyAnswer.response_id.in_(
                select(SurveyResponse.id).where(SurveyResponse.customer_id.in_(customer_ids))
            ),
            SurveyAnswer.value_text.is_not(None),
        )
        .values(value_text=None)
    )
    return responses
