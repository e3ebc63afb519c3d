"""Figures of the pipeline the reader may see: the weighted forecast by month of expected
close and owner (expected revenue × chance of winning), and per stage how many entered it,
how many were won in the end and how long they stayed (from the stage history)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.sales.enums import OPEN_STAGES, Stage
from guanxi.sales.models import Opportunity, StageChange
from guanxi.sales.schemas import Forecast, ForecastRow
from guanxi.sales.service import names_of, viewer_clause, weighted
from guanxi.security.models import User

NO_DATE = ""


def forecast(
    session: Session,
    *,
    viewer: User,
    since: date | None = None,
    until: date | None = None,
    owner_id: int | None = None,
    unowned_label: str = "—",
) -> Forecast:
    """The weighted forecast of the open and won opportunities ``viewer`` sees, by month of
    expected close (``since`` / ``until`` bound the close date; opportunities without one
    come under month ""), then owner."""
    stmt = select(Opportunity).where(Opportunity.stage != Stage.lost.value)
    clause = viewer_clause(session, viewer)
    if clause is not None:
        stmt = stmt.where(clause)
    if since is not None:
        stmt = stmt.where(Opportunity.expected_close >= since)
    if until is not None:
        stmt = stmt.where(Opportunity.expected_close <= until)
    if owner_id is not None:
        stmt = stmt.where(Opportunity.owner_id == owner_id)
    opportunities = list(session.scalars(stmt))
    _customers, owners = names_of(session, opportunities)
    groups: dict[tuple[str, int | None], list[Opportunity]] = defaultdict(list)
    for o in opportunities:
        month = o.expected_close.strftime("%Y-%m") if o.expected_close else NO_DATE
        groups[(month, o.owner_id)].append(o)
    rows = [
        ForecastRow(
            month=month,
            owner_id=owner,
            owner_name=owners.get(owner, unowned_label) if owner is not None else unowned_label,
            opportunities=len(items),
            expected_revenue=sum(o.expected_revenue for o in items),
            weighted_revenue=sum(weighted(o) for o in items),
        )
        for (month, owner), items in groups.items()
    ]
    # Months in order (undated last), then the biggest weighted figure first.
    rows.sort(key=lambda r: (r.month == NO_DATE, r.month, -r.weighted_revenue, r.owner_name))
    return Forecast(
        rows=rows,
        total_expected=sum(r.expected_revenue for r in rows),
        total_weighted=sum(r.weighted_revenue for r in rows),
    )


def by_month(result: Forecast) -> list[tuple[str, int, int]]:
    """(month, expected, weighted) summed over owners, in month order."""
    sums: dict[str, list[int]] = {}
    for r in result.rows:
        pair = sums.setdefault(r.month, [0, 0])
        pair[0] += r.expected_revenue
        pair[1] += r.weighted_revenue
    return [(m, v[0], v[1]) for m, v in sums.items()]


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def to_csv(result: Forecast, headers: list[str], no_date: str) -> str:
    """The forecast as CSV (UTF-8 with BOM, so Excel reads the Chinese), amounts in yuan."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(headers)
    for r in result.rows:
        writer.writerow(
            [
                r.month or no_date,
                r.owner_name,
                r.opportunities,
                _yuan(r.expected_revenue),
                _yuan(r.weighted_revenue),
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class StageFigure:
    """How one open stage converts: entered, went on to be won, lost, and the mean days
    spent in it before moving on (None: nobody moved on yet)."""

    stage: str
    entered: int
    won: int
    lost: int
    mean_days: float | None

    @property
    def win_rate(self) -> float | None:
        """Share of those who entered the stage and are closed, that were won."""
        closed = self.won + self.lost
        return self.won / closed if closed else None


def stage_figures(session: Session, *, viewer: User) -> list[StageFigure]:
    """Conversion and velocity per open stage, over the opportunities ``viewer`` sees."""
    stmt = select(Opportunity.id, Opportunity.stage)
    clause = viewer_clause(session, viewer)
    if clause is not None:
        stmt = stmt.where(clause)
    final = {oid: stage for oid, stage in session.execute(stmt)}
    if not final:
        return [StageFigure(s.value, 0, 0, 0, None) for s in OPEN_STAGES]
    moves: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    ids = sorted(final)
    for i in range(0, len(ids), 500):
        for oid, to_stage, at in session.execute(
            select(StageChange.opportunity_id, StageChange.to_stage, StageChange.changed_at)
            .where(StageChange.opportunity_id.in_(ids[i : i + 500]))
            .order_by(StageChange.opportunity_id, StageChange.changed_at, StageChange.id)
        ):
            moves[oid].append((at, to_stage))
    entered: dict[str, set[int]] = defaultdict(set)
    durations: dict[str, list[float]] = defaultdict(list)
    for oid, steps in moves.items():
        for n, (at, stage) in enumerate(steps):
            entered[stage].add(oid)
            if n + 1 < len(steps):
                durations[stage].append((steps[n + 1][0] - at).total_seconds() / 86400)
    out = []
    for s in OPEN_STAGES:
        who = entered[s.value]
        spent = durations[s.value]
        out.append(
            StageFigure(
                stage=s.value,
                entered=len(who),
                won=sum(1 for oid in who if final[oid] == Stage.won.value),
                lost=sum(1 for oid in who if final[oid] == Stage.lost.value),
                mean_days=round(sum(spent) / len(spent), 1) if spent else None,
            )
        )
    return out
