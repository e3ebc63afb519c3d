"""Retention of old analytics snapshots.

Each run already drops the results of runs older than the two newest successful ones
(:func:`guanxi.analytics.runner._purge`). What stays behind is the bookkeeping of those
old runs: the run row, its steps and the early warnings it raised. A run that started
before the cut-off and no longer has a result row anywhere is deleted with them (its steps
and alerts go by the foreign keys' cascade). Called by the retention purge
(:mod:`guanxi.privacy.retention`) inside its transaction.

Deletion as anonymisation drops the complaint terms that are an anonymised person's name
(:func:`anonymise_analytics_data`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.orm import Session

from guanxi.analytics.models import (
    AnalyticsRun,
    CustomerChurn,
    CustomerClass,
    CustomerClv,
    ForecastPoint,
    KpiValue,
    TermWeek,
    TrainedModel,
)
from guanxi.core.db import rowcount
from guanxi.core.scrub import chunks

RESULTS = (
    CustomerClass,
    CustomerClv,
    CustomerChurn,
    ForecastPoint,
    TrainedModel,
    TermWeek,
    KpiValue,
)


def _spent_before(before: datetime) -> ColumnElement[bool]:
    """Finished runs older than ``before`` whose results are all gone."""
    return and_(
        AnalyticsRun.started_at < before,
        AnalyticsRun.status != "running",
        *(~exists().where(model.run_id == AnalyticsRun.id) for model in RESULTS),
    )


def count_spent_runs(session: Session, *, before: datetime) -> int:
    """Old runs without results left (their steps and alerts go with them)."""
    return int(
        session.scalar(select(func.count(AnalyticsRun.id)).where(_spent_before(before))) or 0
    )


def purge_spent_runs(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` old runs without results, with their steps and alerts."""
    ids = list(
        session.scalars(
            select(AnalyticsRun.id)
            .where(_spent_before(before))
            .order_by(AnalyticsRun.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return rowcount(session.execute(delete(AnalyticsRun).where(AnalyticsRun.id.in_(ids))))


def oldest_run(session: Session, *, before: datetime | None = None) -> datetime | None:
    """When the oldest run still kept started."""
    query = select(func.min(AnalyticsRun.started_at))
    if before is not None:
        query = query.where(~_spent_before(before))
    return session.scalar(query)


def anonymise_analytics_data(session: Session, names: Iterable[str]) -> int:
    """Delete the complaint-term statistics whose term is one of these people's names
    inside the caller's transaction (deletion as anonymisation,
    :mod:`guanxi.privacy.anonymise`): a name that became a term can only be dropped, the
    other terms of the week stay. Returns how many term rows were deleted."""
    deleted = 0
    for chunk in chunks(list(names)):
        deleted += rowcount(session.execute(delete(TermWeek).where(TermWeek.term.in_(chunk))))
    return deleted
