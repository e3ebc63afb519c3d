"""Step ``warning``: early warning (危机预警) of complaints, delays and damage running above
their expected level in a region or a complaint category.

For each slice and each of the last days, the expected count is the slice's own rate over
the four weeks before (complaints or damaged shipments per shipment, late deliveries per
shipment due) times the day's volume — so Double 11's volume alone raises nothing. A day
is an alert when it has at least ``MIN_COUNT`` cases, at least ``MIN_RATIO`` times the
expected number, and a Poisson tail probability below ``MAX_P`` (a chance rise that large
would happen less than once in a thousand days). Each alert is recorded once per slice and
day with the cases behind it, and supervisors and managers are told in the app and by
e-mail.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from scipy.stats import poisson
from sqlalchemy import select

from guanxi.analytics.models import Alert
from guanxi.analytics.runner import Step, StepContext, StepResult, register

BASELINE_DAYS = 28
# Days checked each run: yesterday and today (today's count grows; the alert keeps the
# latest figures).
CHECK_DAYS = 2
MIN_COUNT = 5
MIN_RATIO = 2.0
MAX_P = 1e-3
EVIDENCE_LIMIT = 200

# kind, dimension -> (cases and volume per day and member). Portable SQL: one statement
# per series; members are text, '' when unknown.
SERIES: dict[tuple[str, str], str] = {
    ("complaints", "region"): """
        SELECT day, member, SUM(cases) AS cases, SUM(volume) AS volume FROM (
            SELECT CAST(created_at AS DATE) AS day, COALESCE(region, '') AS member,
                   COUNT(*) AS cases, 0 AS volume
            FROM ticket
            WHERE type = 'complaint' AND created_at >= $since AND created_at < $until
            GROUP BY CAST(created_at AS DATE), COALESCE(region, '')
            UNION ALL
            SELECT CAST(created_at AS DATE) AS day, COALESCE(dest_province, '') AS member,
                   0 AS cases, COUNT(*) AS volume
            FROM shipment
            WHERE created_at >= $since AND created_at < $until
            GROUP BY CAST(created_at AS DATE), COALESCE(dest_province, '')
        ) AS u
        GROUP BY day, member
    """,
    ("complaints", "category"): """
        SELECT c.day, c.member, c.cases, v.volume FROM (
            SELECT CAST(created_at AS DATE) AS day,
                   SPLIT_PART(COALESCE(category, 'other'), '.', 1) AS member,
                   COUNT(*) AS cases
            FROM ticket
            WHERE type = 'complaint' AND created_at >= $since AND created_at < $until
            GROUP BY CAST(created_at AS DATE), SPLIT_PART(COALESCE(category, 'other'), '.', 1)
        ) AS c
        JOIN (
            SELECT CAST(created_at AS DATE) AS day, COUNT(*) AS volume
            FROM shipment
            WHERE created_at >= $since AND created_at < $until
            GROUP BY CAST(created_at AS DATE)
        ) AS v ON v.day = c.day
    """,
    ("delays", "region"): """
        SELECT CAST(promised_at AS DATE) AS day, COALESCE(dest_province, '') AS member,
               SUM(CASE WHEN (delivered_at IS NOT NULL AND delivered_at > promised_at)
                         OR (delivered_at IS NULL AND NOT is_lost) THEN 1 ELSE 0 END)
                   AS cases,
               COUNT(*) AS volume
        FROM shipment
        WHERE promised_at >= $since AND promised_at < $until
        GROUP BY CAST(promised_at AS DATE), COALESCE(dest_province, '')
    """,
    ("damage", "region"): """
        SELECT CAST(created_at AS DATE) AS day, COALESCE(origin_province, '') AS member,
               SUM(CASE WHEN is_damaged THEN 1 ELSE 0 END) AS cases,
               COUNT(*) AS volume
        FROM shipment
        WHERE created_at >= $since AND created_at < $until
        GROUP BY CAST(created_at AS DATE), COALESCE(origin_province, '')
    """,
}

# The cases behind an alert: ticket ids (complaints) or shipment ids (delays, damage).
EVIDENCE: dict[tuple[str, str], str] = {
    ("complaints", "region"): """
        SELECT id FROM ticket
        WHERE type = 'complaint' AND COALESCE(region, '') = $member
          AND created_at >= $day_start AND created_at < $day_end
        ORDER BY id
    """,
    ("complaints", "category"): """
        SELECT id FROM ticket
        WHERE type = 'complaint'
          AND SPLIT_PART(COALESCE(category, 'other'), '.', 1) = $member
          AND created_at >= $day_start AND created_at < $day_end
        ORDER BY id
    """,
    ("delays", "region"): """
        SELECT id FROM shipment
        WHERE COALESCE(dest_province, '') = $member
          AND promised_at >= $day_start AND promised_at < $day_end
          AND ((delivered_at IS NOT NULL AND delivered_at > promised_at)
               OR (delivered_at IS NULL AND NOT is_lost))
        ORDER BY id
    """,
    ("damage", "region"): """
        SELECT id FROM shipment
        WHERE COALESCE(origin_province, '') = $member AND is_damaged
          AND created_at >= $day_start AND created_at < $day_end
        ORDER BY id
    """,
}

KIND_NAMES = {"complaints": "投诉 complaints", "delays": "延误 delays", "damage": "破损 damage"}


@dataclass(frozen=True)
class Finding:
    """A slice's day clearly above its expected level."""

    kind: str
    dimension: str
    member: str
    day: date
    observed: int
    expected: float
    p_value: float


def detect(
    rows: list[dict[str, Any]], kind: str, dimension: str, days: list[date]
) -> list[Finding]:
    """The alerts among ``days`` for one series of (day, member, cases, volume) rows."""
    by_member: dict[str, dict[date, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        by_member[row["member"]][row["day"]] = (int(row["cases"] or 0), int(row["volume"] or 0))
    found: list[Finding] = []
    for member, series in by_member.items():
        for day in days:
            cases, volume = series.get(day, (0, 0))
            if cases < MIN_COUNT or volume == 0:
                continue
            before = [
                series.get(day - timedelta(days=i), (0, 0)) for i in range(1, BASELINE_DAYS + 1)
            ]
            base_cases = sum(c for c, _v in before)
            base_volume = sum(v for _c, v in before)
            if base_volume == 0:
                continue  # a new slice has no level of its own yet
            # Half a case of prior: a slice with no cases in four weeks is not "infinitely"
            # above its level after its first few.
            expected = (base_cases + 0.5) / base_volume * volume
            p_value = float(poisson.sf(cases - 1, expected))
            if cases >= MIN_RATIO * expected and p_value < MAX_P:
                found.append(Finding(kind, dimension, member, day, cases, expected, p_value))
    return sorted(found, key=lambda f: (f.day, f.kind, f.dimension, f.member))


def _run(ctx: StepContext) -> StepResult:
    today = ctx.as_of.date()
    days = [today - timedelta(days=i) for i in range(CHECK_DAYS)]
    since = datetime.combine(days[-1] - timedelta(days=BASELINE_DAYS), datetime.min.time())
    findings: list[Finding] = []
    for (kind, dimension), sql in SERIES.items():
        rows = ctx.workspace.query(sql, since=since, until=ctx.as_of).to_pylist()
        findings.extend(detect(rows, kind, dimension, days))
    ctx.progress(1, 2)
    raised = _record(ctx, findings)
    ctx.progress(2, 2)
    return StepResult(
        rows=len(findings),
        metrics={
            "alerts": len(findings),
            "new": raised,
            "slices": sorted({f"{f.kind}:{f.dimension}:{f.member}" for f in findings}),
        },
    )


def _record(ctx: StepContext, findings: list[Finding]) -> int:
    """Insert new alerts (update the figures of known ones) and tell supervisors of the new."""
    from guanxi.notify.service import Note, notify_many
    from guanxi.tickets.service import escalation_people

    session = ctx.session
    notes: list[Note] = []
    supervisors, top = escalation_people(session)
    people = tuple(sorted(set(supervisors) | set(top)))
    for f in findings:
        start = datetime.combine(f.day, datetime.min.time())
        evidence = ctx.workspace.query(
            EVIDENCE[(f.kind, f.dimension)],
            member=f.member,
            day_start=start,
            day_end=start + timedelta(days=1),
        )["id"].to_pylist()[:EVIDENCE_LIMIT]
        alert = session.scalar(
            select(Alert).where(
                Alert.kind == f.kind,
                Alert.dimension == f.dimension,
                Alert.member == f.member,
                Alert.day == f.day,
            )
        )
        if alert is not None:
            alert.observed, alert.expected = float(f.observed), f.expected
            alert.evidence = json.dumps(evidence)
            continue
        alert = Alert(
            run_id=ctx.run_id,
            kind=f.kind,
            dimension=f.dimension,
            member=f.member[:60],
            day=f.day,
            observed=float(f.observed),
            expected=f.expected,
            evidence=json.dumps(evidence),
        )
        session.add(alert)
        session.flush()
        notes.append(
            Note(
                people,
                f"alert:{alert.id}",
                "early_warning",
                f"{KIND_NAMES[f.kind]} · {f.member or '—'} · {f.day.isoformat()}: "
                f"{f.observed} (≈{f.expected:.1f})",
                link=f"/analytics/alerts/{alert.id}",
            )
        )
    if notes and people:
        notify_many(session, notes)
    return len(notes)


STEP = register(Step(name="warning", reads=("ticket", "shipment"), run=_run))
