"""Team performance scorecards (step ``scorecard``): per agent and per team, per month,
quarter and year — tickets handled, first-response and resolution times, SLA attainment,
reopen rate, satisfaction, CSAT and the claim cost of their tickets; beside them the
training the person or team had in the period (planned, attended, assessment score).

Who handled a ticket: its owner (``ticket.owner_id``) when it was resolved. A resolved or
closed ticket cannot be handed over, so the owner a resolved ticket has is the one who
resolved it (a reopened ticket counts for whoever resolves it again). Which team: the
ticket's ``team_id``. Every ticket figure of a period is over the same tickets: those
resolved in it (local calendar, ``resolved_at`` before the run's cut-off).

The ticket figures are computed once per run by portable SQL over the workspace and kept
in ``analytics_kpi`` (dimension ``agent`` or ``team``, member the user or team id). The
training figures are read from the training tables when a page is shown: they are the
managers' own entries, a few hundred rows, and a score typed in should show at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics.kpi import period_end, period_start, shift
from guanxi.analytics.models import KpiValue
from guanxi.analytics.runner import (
    Step,
    StepContext,
    StepResult,
    latest_run_at,
    register,
)
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_, gettext
from guanxi.core.web import format_fen
from guanxi.security.service import list_users
from guanxi.tickets.teams import list_teams
from guanxi.training import service as training
from guanxi.training.service import TrainingFigures

STEP_NAME = "scorecard"
KINDS = ("month", "quarter", "year")
DIMENSIONS = ("agent", "team")


class ScoreMetric(StrEnum):
    """The ticket figures of a scorecard (names as stored in ``analytics_kpi.metric``)."""

    tickets_handled = "tickets_handled"
    first_response_median_min = "first_response_median_min"
    resolution_median_h = "resolution_median_h"
    sla_attainment = "sla_attainment"
    reopen_rate = "reopen_rate"
    satisfaction_mean = "satisfaction_mean"
    csat_share = "csat_share"
    claim_cost_fen = "claim_cost_fen"


@dataclass(frozen=True)
class Column:
    """A scorecard column: its key, label, unit (count, minutes, hours, rate, score, fen,
    training, points), whether higher is better, and its definition."""

    key: str
    label: str
    unit: str
    better: str
    definition: str


S = ScoreMetric
COLUMNS: tuple[Column, ...] = (
    Column(
        S.tickets_handled,
        N_("Tickets handled"),
        "count",
        "up",
        N_(
            "Tickets resolved in the period whose owner at resolution was the agent (team: "
            "tickets of the team)."
        ),
    ),  # fmt: skip
    Column(
        S.first_response_median_min,
        N_("First response, median"),
        "minutes",
        "down",
        N_("Median minutes from opening to the first response, over the tickets handled."),
    ),
    Column(
        S.resolution_median_h,
        N_("Resolution time, median"),
        "hours",
        "down",
        N_("Median hours from opening to resolution, over the tickets handled."),
    ),
    Column(
        S.sla_attainment,
        N_("SLA attainment"),
        "rate",
        "up",
        N_("Tickets handled without any SLA breach recorded, of all handled."),
    ),
    Column(
        S.reopen_rate,
        N_("Reopen rate"),
        "rate",
        "down",
        N_("Tickets handled that had been reopened, of all handled."),
    ),
    Column(
        S.satisfaction_mean,
        N_("Satisfaction (1–10)"),
        "score",
        "up",
        N_("Mean satisfaction score (1–10) the customers gave on the tickets handled."),
    ),
    Column(
        S.csat_share,
        N_("CSAT (8–10)"),
        "rate",
        "up",
        N_("Share of the satisfaction answers on the tickets handled that were 8 to 10."),
    ),
    Column(
        S.claim_cost_fen,
        N_("Claim cost"),
        "fen",
        "down",
        N_("Amounts approved on the claims (approved or paid) of the tickets handled."),
    ),
    Column(
        "training",
        N_("Training attended"),
        "training",
        "up",
        N_(
            "Courses attended of those planned for the person in the period (team: summed "
            "over its members)."
        ),
    ),  # fmt: skip
    Column(
        "training_score",
        N_("Assessment score"),
        "points",
        "up",
        N_("Mean assessment score (0–100) of the courses of the period."),
    ),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
SORT_KEYS = ("name", *COLUMN_BY_KEY)


# --------------------------------------------------------------------------- the step


def _kind_rows(columns: str) -> str:
    """The rows of ``b`` once per period kind, with the period's first day ``p``."""
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, CAST(DATE_TRUNC('{kind}', resolved_at) AS DATE) AS p, "  # noqa: S608
        f"{columns} FROM b"
        for kind in KINDS
    )


_COLUMNS = "owner_id, team_id, fr, hours, attained, was_reopened, score, satisfied, claims, cost"

# One pass over the tickets resolved before the cut-off, summed per period kind and per
# owner and per team (GROUPING SETS). Counts and medians only; rates are made in Python.
SCORECARD_SQL = f"""
WITH breached AS (
    SELECT DISTINCT ticket_id FROM sla_event
    WHERE kind = 'breach' AND recorded_at < $as_of
),
costs AS (
    SELECT ticket_id, COUNT(*) AS claims, SUM(COALESCE(approved_fen, 0)) AS cost
    FROM claim
    WHERE ticket_id IS NOT NULL AND status IN ('approved', 'paid')
      AND decided_at IS NOT NULL AND decided_at < $as_of
    GROUP BY ticket_id
),
b AS (
    SELECT t.owner_id, t.team_id, t.resolved_at,
           CASE WHEN t.first_response_at IS NOT NULL AND t.first_response_at < $as_of
                THEN (EPOCH(t.first_response_at) - EPOCH(t.created_at)) / 60.0 END AS fr,
           (EPOCH(t.resolved_at) - EPOCH(t.created_at)) / 3600.0 AS hours,
           CASE WHEN br.ticket_id IS NULL THEN 1 ELSE 0 END AS attained,
           CASE WHEN t.reopened > 0 THEN 1 ELSE 0 END AS was_reopened,
           t.satisfaction AS score,
           CASE WHEN t.satisfaction >= 8 THEN 1
                WHEN t.satisfaction IS NOT NULL THEN 0 END AS satisfied,
           COALESCE(c.claims, 0) AS claims,
           COALESCE(c.cost, 0) AS cost
    FROM ticket AS t
    LEFT JOIN breached AS br ON br.ticket_id = t.id
    LEFT JOIN costs AS c ON c.ticket_id = t.id
    WHERE t.resolved_at IS NOT NULL AND t.resolved_at < $as_of AND t.created_at < $as_of
      AND (t.owner_id IS NOT NULL OR t.team_id IS NOT NULL)
)
SELECT kind, p AS period_start,
       CASE WHEN GROUPING(owner_id) = 0 THEN 'agent' ELSE 'team' END AS dimension,
       CASE WHEN GROUPING(owner_id) = 0 THEN owner_id ELSE team_id END AS member,
       COUNT(*) AS handled,
       COUNT(fr) AS fr_n, MEDIAN(fr) AS fr_median,
       MEDIAN(hours) AS hours_median,
       SUM(attained) AS attained, SUM(was_reopened) AS reopened,
       COUNT(score) AS scored, SUM(score) AS score_sum, SUM(satisfied) AS satisfied,
       SUM(claims) AS claims, SUM(cost) AS cost
FROM ({_kind_rows(_COLUMNS)}) AS x
GROUP BY GROUPING SETS ((kind, p, owner_id), (kind, p, team_id))
"""  # noqa: S608 - names from code, values bound


def _num(value: Any) -> float:
    """A SQL number (int, float or Decimal from PostgreSQL) as float; NULL as 0."""
    return float(value) if value is not None else 0.0


def _value(
    row: dict[str, Any], metric: ScoreMetric, value: float | None, num: Any, den: Any
) -> dict[str, Any]:
    return {
        "period": row["kind"],
        "period_start": row["period_start"],
        "dimension": row["dimension"],
        "member": str(int(row["member"])),
        "metric": metric.value,
        "value": value,
        "numerator": None if num is None else float(num),
        "denominator": None if den is None else float(den),
    }


def values_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored figures of one (period, agent or team) row of :data:`SCORECARD_SQL`."""
    start = row["period_start"]
    row = {**row, "period_start": start.date() if isinstance(start, datetime) else start}
    n = _num(row["handled"])
    out = [_value(row, S.tickets_handled, n, n, None)]
    fr_n = _num(row["fr_n"])
    if fr_n:
        out.append(_value(row, S.first_response_median_min, _num(row["fr_median"]), None, fr_n))
    out.append(_value(row, S.resolution_median_h, _num(row["hours_median"]), None, n))
    attained, reopened = _num(row["attained"]), _num(row["reopened"])
    out.append(_value(row, S.sla_attainment, attained / n, attained, n))
    out.append(_value(row, S.reopen_rate, reopened / n, reopened, n))
    scored = _num(row["scored"])
    if scored:
        total, good = _num(row["score_sum"]), _num(row["satisfied"])
        out.append(_value(row, S.satisfaction_mean, total / scored, total, scored))
        out.append(_value(row, S.csat_share, good / scored, good, scored))
    cost = _num(row["cost"])
    out.append(_value(row, S.claim_cost_fen, cost, cost, _num(row["claims"])))
    return out


def compute(ctx: StepContext) -> list[dict[str, Any]]:
    """Every scorecard row of the run (without ``run_id``)."""
    table = ctx.workspace.query(SCORECARD_SQL, as_of=ctx.as_of)
    rows: list[dict[str, Any]] = []
    for row in table.to_pylist():
        # Tickets without an owner (or without a team) form a group of their own: not a
        # person's (or a team's) figures.
        if row["member"] is not None:
            rows += values_of(row)
    return rows


def _run(ctx: StepContext) -> StepResult:
    rows = compute(ctx)
    written = ctx.write(KpiValue, rows)
    members = {(r["dimension"], r["member"]) for r in rows}
    return StepResult(
        rows=written,
        metrics={
            "agents": sum(1 for d, _m in members if d == "agent"),
            "teams": sum(1 for d, _m in members if d == "team"),
        },
    )


STEP = register(
    Step(
        name=STEP_NAME,
        reads=("ticket", "sla_event", "claim"),
        run=_run,
        writes=(KpiValue,),
    )
)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ScoreRun:
    """The run whose scorecards are current, and the day it counted up to."""

    run_id: int
    as_of: datetime
    today: date


def current_run(session: Session, timezone: str) -> ScoreRun | None:
    """The newest successful ``scorecard`` run, or None when it never ran."""
    from zoneinfo import ZoneInfo

    found = latest_run_at(session, STEP_NAME)
    if found is None:
        return None
    run_id, as_of = found
    return ScoreRun(run_id, as_of, as_of.astimezone(ZoneInfo(timezone)).date())


def parse_start(kind: str, text: str | None, default: date) -> date:
    """The first day of the ``kind`` period named by ``text``: ``2026-10``, ``2026-Q4``,
    ``2026`` or a day ``2026-10-15`` (the period holding it); ``default``'s period when
    empty. ValidationFailed naming ``start`` otherwise."""
    if kind not in KINDS:
        raise ValidationFailed(
            [
                FieldError(
                    ("query", "period"),
                    "value_unknown",
                    f"Unknown value; expected one of: {', '.join(KINDS)}",
                    {"choices": ", ".join(KINDS)},
                )
            ]
        )
    if not text:
        return period_start(kind, default)
    value = text.strip().upper()
    try:
        if len(value) == 4 and value.isdigit():
            day = date(int(value), 1, 1)
        elif len(value) == 7 and value[4:6] == "-Q" and value[6] in "1234":
            day = date(int(value[:4]), 3 * (int(value[6]) - 1) + 1, 1)
        elif len(value) == 7 and value[4] == "-":
            day = date(int(value[:4]), int(value[5:7]), 1)
        else:
            day = date.fromisoformat(value)
        if not 2000 <= day.year <= 2099:
            raise ValueError(value)
    except ValueError as exc:
        raise ValidationFailed(
            [
                FieldError(
                    ("query", "start"),
                    "period_invalid",
                    "Not a period (use 2026-10, 2026-Q4 or 2026)",
                )
            ]
        ) from exc
    return period_start(kind, day)


def start_text(kind: str, start: date) -> str:
    """How a period is written in a link: ``2026-10``, ``2026-Q4``, ``2026``."""
    if kind == "year":
        return str(start.year)
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}-{start.month:02d}"


def period_name(kind: str, start: date) -> str:
    """A period as people name it: 2026-10, 2026 Q4, 2026."""
    if kind == "quarter":
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return start_text(kind, start)


@dataclass
class Line:
    """One row of a scorecard: an agent (with their teams) or a team, the ticket figures
    (metric -> value; None where nothing was measured) and the training figures."""

    dimension: str
    member_id: int
    name: str
    teams: list[str]
    values: dict[str, float | None]
    counts: dict[str, float | None]
    training: TrainingFigures

    def get(self, key: str) -> float | None:
        """The value of a column (training: the share of planned courses attended)."""
        if key == "training":
            t = self.training
            return t.attended / t.planned if t.planned else None
        if key == "training_score":
            return self.training.score_mean
        return self.values.get(key)


@dataclass
class Scorecard:
    """A period's scorecard: agents and teams, sorted as asked."""

    run: ScoreRun
    kind: str
    start: date
    available: list[date]
    agents: list[Line] = field(default_factory=list)
    teams: list[Line] = field(default_factory=list)
    sort: str = "name"
    descending: bool = False


def _stored(
    session: Session, run: ScoreRun, kind: str, starts: Iterable[date], dimension: str | None
) -> dict[tuple[date, str, str], dict[str, tuple[float | None, float | None]]]:
    """(period start, dimension, member) -> metric -> (value, denominator) of the run."""
    stmt = select(
        KpiValue.period_start,
        KpiValue.dimension,
        KpiValue.member,
        KpiValue.metric,
        KpiValue.value,
        KpiValue.denominator,
    ).where(
        KpiValue.run_id == run.run_id,
        KpiValue.period == kind,
        KpiValue.period_start.in_(list(starts)),
        KpiValue.metric.in_([m.value for m in ScoreMetric]),
    )
    stmt = stmt.where(
        KpiValue.dimension == dimension
        if dimension is not None
        else KpiValue.dimension.in_(DIMENSIONS)
    )
    out: dict[tuple[date, str, str], dict[str, tuple[float | None, float | None]]] = defaultdict(
        dict
    )
    for start, dim, member, metric, value, den in session.execute(stmt):
        out[(start, dim, member)][metric] = (value, den)
    return out


def available_periods(session: Session, run: ScoreRun, kind: str) -> list[date]:
    """Periods of ``kind`` with scorecard figures in the run, and the current one."""
    found = set(
        session.scalars(
            select(KpiValue.period_start)
            .where(
                KpiValue.run_id == run.run_id,
                KpiValue.period == kind,
                KpiValue.dimension.in_(DIMENSIONS),
                KpiValue.metric == S.tickets_handled.value,
            )
            .distinct()
        )
    )
    found.add(period_start(kind, run.today))
    return sorted(found)


def _memberships(session: Session) -> tuple[dict[int, str], dict[int, list[int]]]:
    """Team names, and per user the teams they belong to."""
    names = {t.id: t.name for t in list_teams(session)}
    of_user: dict[int, list[int]] = defaultdict(list)
    for team_id, users in training.memberships(session).items():
        for user_id in users:
            of_user[user_id].append(team_id)
    return names, of_user


def scorecard(
    session: Session,
    *,
    run: ScoreRun,
    kind: str,
    start: date,
    sort: str = "name",
    descending: bool = False,
    team_id: int | None = None,
) -> Scorecard:
    """The scorecard of one period: every agent with figures or training in it and every
    current team member, and every team (``team_id``: that team's members only)."""
    stored = _stored(session, run, kind, [start], None)
    people = training.figures(session, start=start, end=period_end(kind, start))
    team_names, teams_of = _memberships(session)
    users = {u.id: u for u in list_users(session)}
    agent_ids = {int(m) for (_s, d, m) in stored if d == "agent"} | set(teams_of)
    agent_ids |= {uid for uid, fig in people.items() if fig.planned}
    card = Scorecard(
        run=run,
        kind=kind,
        start=start,
        available=available_periods(session, run, kind),
        sort=sort,
        descending=descending,
    )
    for uid in agent_ids:
        if uid not in users or (team_id is not None and team_id not in teams_of.get(uid, [])):
            continue
        figures = stored.get((start, "agent", str(uid)), {})
        card.agents.append(
            Line(
                dimension="agent",
                member_id=uid,
                name=users[uid].display_name,
                teams=sorted(team_names[t] for t in teams_of.get(uid, []) if t in team_names),
                values={k: v for k, (v, _d) in figures.items()},
                counts={k: d for k, (_v, d) in figures.items()},
                training=people.get(uid, TrainingFigures()),
            )
        )
    per_team = training.team_figures(session, people)
    team_ids = {int(m) for (_s, d, m) in stored if d == "team"} | set(team_names)
    for tid in team_ids:
        if tid not in team_names or (team_id is not None and tid != team_id):
            continue
        figures = stored.get((start, "team", str(tid)), {})
        card.teams.append(
            Line(
                dimension="team",
                member_id=tid,
                name=team_names[tid],
                teams=[],
                values={k: v for k, (v, _d) in figures.items()},
                counts={k: d for k, (_v, d) in figures.items()},
                training=per_team.get(tid, TrainingFigures()),
            )
        )
    key = _sort_key(sort)
    for lines in (card.agents, card.teams):
        lines.sort(key=lambda line: (line.name, line.member_id))
        if sort != "name":
            # Lines without the figure stay last whichever way the column is sorted.
            present = [line for line in lines if key(line) is not None]
            missing = [line for line in lines if key(line) is None]
            present.sort(key=lambda line: key(line) or 0.0, reverse=descending)
            lines[:] = present + missing
        elif descending:
            lines.reverse()
    return card


def _sort_key(sort: str) -> Callable[[Line], float | None]:
    def key(line: Line) -> float | None:
        return line.get(sort)

    return key


@dataclass
class Trend:
    """An agent's periods side by side (oldest first) with their training history."""

    run: ScoreRun
    kind: str
    user_id: int
    name: str
    teams: list[str]
    periods: list[date]
    lines: list[Line]
    history: list[training.HistoryItem]


def agent_trend(
    session: Session, *, run: ScoreRun, user_id: int, kind: str, start: date, count: int = 6
) -> Trend:
    """One agent's last ``count`` periods of ``kind`` up to ``start`` and their training
    history."""
    person = training.get_person(session, user_id)
    periods = [shift(kind, start, -i) for i in range(count - 1, -1, -1)]
    stored = _stored(session, run, kind, periods, "agent")
    team_names, teams_of = _memberships(session)
    lines = []
    for p in periods:
        figures = stored.get((p, "agent", str(user_id)), {})
        fig = training.figures(session, start=p, end=period_end(kind, p)).get(
            user_id, TrainingFigures()
        )
        lines.append(
            Line(
                dimension="agent",
                member_id=user_id,
                name=person.display_name,
                teams=[],
                values={k: v for k, (v, _d) in figures.items()},
                counts={k: d for k, (_v, d) in figures.items()},
                training=fig,
            )
        )
    return Trend(
        run=run,
        kind=kind,
        user_id=user_id,
        name=person.display_name,
        teams=sorted(team_names[t] for t in teams_of.get(user_id, []) if t in team_names),
        periods=periods,
        lines=lines,
        history=training.history(session, user_id=user_id),
    )


# --------------------------------------------------------------------------- showing


def display(column: Column, line: Line, lang: str) -> str:
    """A scorecard cell as shown: counts, minutes, hours, %, 1–10 score, yuan, attended /
    planned, points; a dash where nothing was measured."""
    if column.unit == "training":
        t = line.training
        return f"{t.attended} / {t.planned}" if t.planned else "—"
    value = line.get(column.key)
    if column.key == S.tickets_handled and value is None:
        return "0"
    if value is None:
        return "—"
    if column.unit == "count":
        return f"{round(value):,}"
    if column.unit == "minutes":
        return gettext(lang, N_("{n} min"), n=f"{value:.0f}")
    if column.unit == "hours":
        return gettext(lang, N_("{n} h"), n=f"{value:.1f}")
    if column.unit == "rate":
        return f"{100 * value:.1f}%"
    if column.unit == "fen":
        return "¥" + format_fen(round(value))
    if column.unit == "points":
        return f"{value:.1f}"
    return f"{value:.2f}"


Table = tuple[list[str], list[list[Any]]]


def _cell(column: Column, line: Line) -> Any:
    """A file cell: numbers as numbers (rates in %, money in yuan), empty when unmeasured."""
    if column.unit == "training":
        return None
    value = line.get(column.key)
    if column.key == S.tickets_handled:
        return int(value or 0)
    if value is None:
        return None
    if column.unit == "rate":
        return round(100 * value, 1)
    if column.unit == "fen":
        return round(value / 100, 2)
    if column.unit in ("minutes", "hours", "points"):
        return round(value, 1)
    return round(value, 2)


def scorecard_table(card: Scorecard, lang: str) -> Table:
    """A scorecard as a file table: agents, then teams; rates in %, money in yuan."""

    def t(message: str, **params: Any) -> str:
        return gettext(lang, message, **params)

    ticket_columns = [c for c in COLUMNS if c.unit not in ("training", "points")]
    units = {
        "minutes": N_("min"),
        "hours": N_("h"),
        "rate": "%",
        "fen": N_("yuan"),
    }
    header = [t(N_("Period")), t(N_("Agent or team")), t(N_("ID")), t(N_("Name")), t(N_("Teams"))]
    header += [
        f"{t(c.label)} [{t(units[c.unit])}]" if c.unit in units else t(c.label)
        for c in ticket_columns
    ]
    header += [
        t(N_("Courses planned")),
        t(N_("Courses attended")),
        t(N_("Assessment score")),
    ]
    period = period_name(card.kind, card.start)
    lines: list[list[Any]] = []
    for kind, rows in ((t(N_("Agent")), card.agents), (t(N_("Team")), card.teams)):
        for line in rows:
            score = line.training.score_mean
            lines.append(
                [period, kind, line.member_id, line.name, "、".join(line.teams)]
                + [_cell(c, line) for c in ticket_columns]
                + [
                    line.training.planned,
                    line.training.attended,
                    None if score is None else round(score, 1),
                ]
            )
    return header, lines
