"""Team performance scorecards against a hand-computed fixture: three agents in two teams,
tickets with known moments, breaches, reopenings, satisfaction answers and claims, and
training courses with attendance and scores. Exact figures for October 2026 and the
fourth quarter, on SQLite and PostgreSQL (through the snapshot and in place); the pages,
the JSON API and the CSV / XLSX export show the same numbers.

Hand computation (minutes of first response, hours of resolution; tickets resolved in the
period, local time):

A, October: a1 (10, 2), a2 (30, 24; breached; reopened; 6), a3 (20, 4; claims 120 + 30
yuan), a4 (40, 1.5; resolved 00:30 on 1 October Beijing = 30 September UTC; 8); a1 is 10.
  handled 4, first response median 25, resolution median (2 + 4) / 2 = 3, SLA 3/4,
  reopen 1/4, satisfaction (10 + 6 + 8) / 3 = 8 (1–10), CSAT (>= 8) 2/3, claim cost 15,000 fen (2).
A, Q4: plus a6 in November (2, 0.5; 10): handled 5, first response median 20, resolution
  median 2, SLA 4/5, reopen 1/5, satisfaction 34/4, CSAT 3/4, claims the same.
B, October: b1 (5, 1; 8; its breach recorded after the cut-off does not count), b2 (no
  first response, 24; 10): handled 2, first response 5 (of 1), resolution 12.5, SLA 1,
  reopen 0, satisfaction 9, CSAT 1.
B, Q4: plus b3 in November (15, 24; breached; reopened; 4): handled 3, first response 10,
  resolution 24, SLA 2/3, reopen 1/3, satisfaction 22/3, CSAT 2/3.
C, October: c1 (45, 12; 10; team T2) and x1 (30, 2; no team): handled 2, first response
  37.5, resolution 7, SLA 1, reopen 0, satisfaction 10, CSAT 1.
Team T1, October: a1–a4, b1, b2: 6; first response median of 5, 10, 20, 30, 40 = 20;
  resolution median of 1, 1.5, 2, 4, 24, 24 = 3; SLA 5/6; reopen 1/6; satisfaction
  42/5; CSAT 4/5; claims 15,000 fen.
Team T1, Q4: plus a6 and b3: 8; first response median of 2, 5, 10, 15, 20, 30, 40 = 15;
  resolution median of 0.5, 1, 1.5, 2, 4, 24, 24, 24 = 3; SLA 6/8; reopen 2/8;
  satisfaction 56/7 = 8; CSAT 5/7.
Team T2, October: c1 and c2 (no owner; 50, 1): 2; first response 47.5; resolution 6.5.

Training: k1 (15 Oct, T1): A 80, B 90. k2 (25 Oct, everyone): A 70, B absent, C attended
without a score. k3 (10 Nov, T2): C 60, A as a guest 100. k4 (28 Sep, T1): outside. k5
(10 Dec, T1): planned, not yet recorded.
  October: A 2/2 (75), B 1/2 (90), C 1/1 (—); T1 3/4 (80), T2 1/1 (—).
  Q4: A 3/4 (83.3), B 1/3 (90), C 2/2 (60); T1 4/7 (85), T2 2/2 (60).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.analytics import scorecard as sc
from guanxi.analytics.models import AnalyticsStep, KpiValue
from guanxi.audit.service import Actor
from guanxi.security.models import User
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from guanxi.tickets.models import SlaEvent
from guanxi.tickets.teams import save_team, set_member
from guanxi.training.models import TrainingCourse, TrainingRecord
from tests.conftest import PASSWORD
from tests.integration.analytics.conftest import AnalyticsDb, local

AS_OF = local(2026, 11, 20, 12, 0)
OCTOBER = date(2026, 10, 1)
Q4 = date(2026, 10, 1)

# (tickets handled, first response median, resolution median, SLA, reopen, satisfaction,
#  CSAT, claim cost fen, claims) per (period, dimension, key).
EXPECTED: dict[tuple[str, str, str], tuple[Any, ...]] = {
    ("month", "agent", "A"): (4, 25.0, 3.0, 3 / 4, 1 / 4, 8.0, 2 / 3, 15_000, 2),
    ("month", "agent", "B"): (2, 5.0, 12.5, 1.0, 0.0, 9.0, 1.0, 0, 0),
    ("month", "agent", "C"): (2, 37.5, 7.0, 1.0, 0.0, 10.0, 1.0, 0, 0),
    ("month", "team", "T1"): (6, 20.0, 3.0, 5 / 6, 1 / 6, 42 / 5, 4 / 5, 15_000, 2),
    ("month", "team", "T2"): (2, 47.5, 6.5, 1.0, 0.0, 10.0, 1.0, 0, 0),
    ("quarter", "agent", "A"): (5, 20.0, 2.0, 4 / 5, 1 / 5, 34 / 4, 3 / 4, 15_000, 2),
    ("quarter", "agent", "B"): (3, 10.0, 24.0, 2 / 3, 1 / 3, 22 / 3, 2 / 3, 0, 0),
    ("quarter", "agent", "C"): (2, 37.5, 7.0, 1.0, 0.0, 10.0, 1.0, 0, 0),
    ("quarter", "team", "T1"): (8, 15.0, 3.0, 6 / 8, 2 / 8, 8.0, 5 / 7, 15_000, 2),
    ("quarter", "team", "T2"): (2, 47.5, 6.5, 1.0, 0.0, 10.0, 1.0, 0, 0),
}
# (planned, attended, mean score)
TRAINING: dict[tuple[str, str, str], tuple[int, int, float | None]] = {
    ("month", "agent", "A"): (2, 2, 75.0),
    ("month", "agent", "B"): (2, 1, 90.0),
    ("month", "agent", "C"): (1, 1, None),
    ("month", "team", "T1"): (4, 3, 80.0),
    ("month", "team", "T2"): (1, 1, None),
    ("quarter", "agent", "A"): (4, 3, 250 / 3),
    ("quarter", "agent", "B"): (3, 1, 90.0),
    ("quarter", "agent", "C"): (2, 2, 60.0),
    ("quarter", "team", "T1"): (7, 4, 85.0),
    ("quarter", "team", "T2"): (2, 2, 60.0),
}

NAMES = {"A": "A 李娜", "B": "B 张伟", "C": "C 王芳"}
S = sc.ScoreMetric


def _user(session: Session, username: str, display: str, role: str) -> User:
    return create_user(
        session,
        user_in=UserCreate(
            username=username,
            display_name=display,
            role=role,  # type: ignore[arg-type]
            password=PASSWORD,
        ),
        actor=Actor.system("test"),
    )


@pytest.fixture(scope="module")
def world(analytics_db: AnalyticsDb) -> dict[str, int]:
    """People, teams, tickets, breaches, claims and training; returns the ids by key."""
    ids: dict[str, int] = {}
    with Session(analytics_db.engine, expire_on_commit=False) as session:
        manager = _user(session, "boss", "主管", "manager")
        ids["manager"] = manager.id
        for key in ("A", "B", "C"):
            ids[key] = _user(session, f"agent_{key.lower()}", NAMES[key], "agent").id
        ids["analyst"] = _user(session, "analyst1", "分析师", "analyst").id
        ids["plain"] = _user(session, "agent_z", "Z 无关", "agent").id
        ids["T1"] = save_team(session, actor=manager, code="t1", name="一组").id
        ids["T2"] = save_team(session, actor=manager, code="t2", name="二组").id
        for key, team in (("A", "T1"), ("B", "T1"), ("C", "T2")):
            set_member(session, actor=manager, team_id=ids[team], user_id=ids[key])
    rows = analytics_db.rows
    customer = rows.customer(local(2025, 1, 1, 9, 0))
    shipment = rows.shipment(customer, local(2026, 9, 20, 9, 0), 1_000)

    def ticket(owner: str | None, team: str | None, opened: Any, **kw: Any) -> int:
        return rows.ticket(
            customer,
            opened,
            owner_id=ids[owner] if owner else None,
            team_id=ids[team] if team else None,
            **kw,
        )

    def at(month: int, day: int, hour: int, minute: int) -> datetime:
        return local(2026, month, day, hour, minute)

    # The tickets of the hand computation above, in this order (their ids follow it):
    # name, owner, team, opened, first response, resolved, satisfaction, reopenings.
    Row = tuple[
        str, str | None, str | None, datetime, datetime | None, datetime | None, int | None, int
    ]
    table: tuple[Row, ...] = (
        ("a1", "A", "T1", at(10, 1, 9, 0), at(10, 1, 9, 10), at(10, 1, 11, 0), 10, 0),
        ("a2", "A", "T1", at(10, 2, 9, 0), at(10, 2, 9, 30), at(10, 3, 9, 0), 6, 1),
        ("a3", "A", "T1", at(10, 5, 10, 0), at(10, 5, 10, 20), at(10, 5, 14, 0), None, 0),
        ("a4", "A", "T1", at(9, 30, 23, 0), at(9, 30, 23, 40), at(10, 1, 0, 30), 8, 0),
        ("a6", "A", "T1", at(11, 3, 9, 0), at(11, 3, 9, 2), at(11, 3, 9, 30), 10, 0),
        # Still open: not handled.
        ("a5", "A", "T1", at(10, 3, 9, 0), at(10, 3, 9, 5), None, None, 0),
        ("b1", "B", "T1", at(10, 10, 9, 0), at(10, 10, 9, 5), at(10, 10, 10, 0), 8, 0),
        ("b2", "B", "T1", at(10, 11, 9, 0), None, at(10, 12, 9, 0), 10, 0),
        ("b3", "B", "T1", at(11, 1, 9, 0), at(11, 1, 9, 15), at(11, 2, 9, 0), 4, 1),
        # Resolved after the cut-off: not yet handled.
        ("b4", "B", "T1", at(11, 19, 9, 0), at(11, 19, 9, 1), at(11, 21, 9, 0), 10, 0),
        ("c1", "C", "T2", at(10, 20, 9, 0), at(10, 20, 9, 45), at(10, 20, 21, 0), 10, 0),
        ("c2", None, "T2", at(10, 21, 9, 0), at(10, 21, 9, 50), at(10, 21, 10, 0), None, 0),
        ("x1", "C", None, at(10, 22, 9, 0), at(10, 22, 9, 30), at(10, 22, 11, 0), None, 0),
    )
    made: dict[str, int] = {}
    for name, owner, in_team, opened, first, resolved, satisfaction, reopened in table:
        made[name] = ticket(
            owner,
            in_team,
            opened,
            first_response_at=first,
            resolved_at=resolved,
            satisfaction=satisfaction,
            reopened=reopened,
            **({"status": "in_progress"} if resolved is None else {}),
        )
    a1, a2, a3, b1, b3 = (made[k] for k in ("a1", "a2", "a3", "b1", "b3"))
    rows.breach(a2, local(2026, 10, 2, 17, 0))
    rows.breach(b3, local(2026, 11, 1, 20, 0))
    # After the cut-off: b1 still met its targets at the time of the run.
    rows.breach(b1, local(2026, 11, 25, 9, 0))
    with analytics_db.engine.begin() as conn:
        # A warning is not a breach.
        conn.execute(
            insert(SlaEvent),
            [
                {
                    "ticket_id": a1,
                    "target": "resolution",
                    "kind": "warning",
                    "due_at": local(2026, 10, 1, 12, 0),
                    "recorded_at": local(2026, 10, 1, 10, 0),
                }
            ],
        )
    decided = {"decided_at": local(2026, 10, 6, 12, 0)}
    rows.claim(
        customer,
        shipment,
        local(2026, 10, 5, 12, 0),
        ticket_id=a3,
        status="approved",
        approved_fen=12_000,
        **decided,
    )
    rows.claim(
        customer,
        shipment,
        local(2026, 10, 5, 12, 0),
        ticket_id=a3,
        status="paid",
        approved_fen=3_000,
        decided_at=local(2026, 10, 7, 12, 0),
        paid_at=local(2026, 10, 8, 12, 0),
    )
    rows.claim(
        customer, shipment, local(2026, 10, 5, 12, 0), ticket_id=a3, status="rejected", **decided
    )
    rows.claim(customer, shipment, local(2026, 10, 5, 12, 0), ticket_id=a3)
    # Decided after the cut-off.
    rows.claim(customer, shipment, local(2026, 10, 5, 12, 0), ticket_id=a1, status="approved",
               approved_fen=99_999, decided_at=local(2026, 11, 25, 12, 0))  # fmt: skip
    with Session(analytics_db.engine) as session:

        def course(
            day: date, team: str | None, records: dict[str, tuple[bool, float | None]]
        ) -> None:
            c = TrainingCourse(title=f"课程 {day}", topic="business", mode="offline",
                               planned_on=day, hours=2.0, plan_period="month",
                               team_id=ids[team] if team else None, version=1)  # fmt: skip
            session.add(c)
            session.flush()
            for key, (attended, score) in records.items():
                session.add(
                    TrainingRecord(course_id=c.id, user_id=ids[key], attended=attended, score=score)
                )

        course(date(2026, 10, 15), "T1", {"A": (True, 80), "B": (True, 90)})
        course(date(2026, 10, 25), None, {"A": (True, 70), "B": (False, None), "C": (True, None)})
        course(date(2026, 11, 10), "T2", {"C": (True, 60), "A": (True, 100)})
        course(date(2026, 9, 28), "T1", {"A": (True, 10), "B": (True, 10)})
        course(date(2026, 12, 10), "T1", {})
        session.commit()
    return ids


@pytest.fixture(scope="module")
def ran(analytics_db: AnalyticsDb, world: dict[str, int]) -> int:
    """The scorecard step run once over the fixture; its run id."""
    summary = runner.run(
        analytics_db.engine, analytics_db.settings, only=["scorecard"], force=True, as_of=AS_OF
    )
    assert summary.status == "succeeded"
    assert summary.steps == {"scorecard": "succeeded"}
    assert summary.metrics["scorecard"] == {"agents": 3, "teams": 2}
    return summary.run_id


def _card(analytics_db: AnalyticsDb, kind: str, **kw: Any) -> sc.Scorecard:
    with Session(analytics_db.engine) as session:
        run = sc.current_run(session, "Asia/Shanghai")
        assert run is not None
        return sc.scorecard(session, run=run, kind=kind, start=OCTOBER, **kw)


def _figures(line: sc.Line) -> tuple[Any, ...]:
    v, n = line.values, line.counts
    return (
        int(v[S.tickets_handled] or 0),
        v.get(S.first_response_median_min),
        v.get(S.resolution_median_h),
        v.get(S.sla_attainment),
        v.get(S.reopen_rate),
        v.get(S.satisfaction_mean),
        v.get(S.csat_share),
        int(v[S.claim_cost_fen] or 0),
        int(n[S.claim_cost_fen] or 0),
    )


def _check(card: sc.Scorecard, kind: str, ids: dict[str, int]) -> None:
    people = {ids[k]: k for k in ("A", "B", "C")}
    teams = {ids[k]: k for k in ("T1", "T2")}
    # Z is in no team, handled nothing and had no training: not on the card.
    assert [people[line.member_id] for line in card.agents] == ["A", "B", "C"]
    assert [teams[line.member_id] for line in card.teams] == ["T1", "T2"]
    for dimension, lines, keys in (("agent", card.agents, people), ("team", card.teams, teams)):
        for line in lines:
            key = (kind, dimension, keys[line.member_id])
            assert _figures(line) == pytest.approx(EXPECTED[key], abs=1e-9), key
            t = line.training
            assert (t.planned, t.attended) == TRAINING[key][:2], key
            assert t.score_mean == pytest.approx(TRAINING[key][2]), key


def test_october_scorecard_matches_the_hand_computation(
    analytics_db: AnalyticsDb, world: dict[str, int], ran: int
) -> None:
    card = _card(analytics_db, "month")
    assert card.start == OCTOBER
    _check(card, "month", world)
    a = next(line for line in card.agents if line.member_id == world["A"])
    assert a.teams == ["一组"]
    # Denominators kept beside the values: answers behind satisfaction, first responses.
    assert a.counts[S.satisfaction_mean] == 3
    b = next(line for line in card.agents if line.member_id == world["B"])
    assert b.counts[S.first_response_median_min] == 1


def test_fourth_quarter_scorecard_matches_the_hand_computation(
    analytics_db: AnalyticsDb, world: dict[str, int], ran: int
) -> None:
    card = _card(analytics_db, "quarter")
    assert card.start == Q4
    _check(card, "quarter", world)


def test_the_stored_rows_name_agent_and_team_members_by_id(
    analytics_db: AnalyticsDb, world: dict[str, int], ran: int
) -> None:
    with Session(analytics_db.engine) as session:
        current = runner.latest_run(session, "scorecard")
        found = session.execute(
            select(KpiValue.dimension, KpiValue.member, KpiValue.value, KpiValue.numerator,
                   KpiValue.denominator)
            .where(KpiValue.run_id == current, KpiValue.period == "month",
                   KpiValue.period_start == OCTOBER, KpiValue.metric == S.sla_attainment.value)
            .order_by(KpiValue.dimension, KpiValue.member)
        ).all()  # fmt: skip
        months = session.scalars(
            select(KpiValue.period_start)
            .where(KpiValue.run_id == current, KpiValue.period == "month")
            .distinct()
            .order_by(KpiValue.period_start)
        ).all()
    assert sorted((d, m, n, den) for d, m, _v, n, den in found) == sorted(
        [
            ("agent", str(world["A"]), 3.0, 4.0),
            ("agent", str(world["B"]), 2.0, 2.0),
            ("agent", str(world["C"]), 2.0, 2.0),
            ("team", str(world["T1"]), 5.0, 6.0),
            ("team", str(world["T2"]), 2.0, 2.0),
        ]
    )
    # a4 was resolved at 00:30 on 1 October in Beijing (still 30 September in UTC): no
    # September period exists for anyone.
    assert months == [date(2026, 10, 1), date(2026, 11, 1)]


def _stored_rows(engine: Any, run_id: int) -> set[tuple[Any, ...]]:
    with Session(engine) as session:
        return {
            (r.period, r.period_start, r.dimension, r.member, r.metric,
             None if r.value is None else round(r.value, 9), r.numerator, r.denominator)
            for r in session.scalars(select(KpiValue).where(KpiValue.run_id == run_id))
        }  # fmt: skip


def test_the_same_statement_runs_on_postgresql_in_place(
    analytics_db: AnalyticsDb, world: dict[str, int], ran: int
) -> None:
    if analytics_db.backend != "postgresql":
        pytest.skip("in-place execution is the PostgreSQL engine")
    with Session(analytics_db.engine) as session:
        snap = runner.latest_run(session, "scorecard")
    assert snap is not None
    place = runner.run(
        analytics_db.engine, analytics_db.in_place(), only=["scorecard"], force=True, as_of=AS_OF
    )
    assert place.status == "succeeded"
    assert _stored_rows(analytics_db.engine, place.run_id) == _stored_rows(
        analytics_db.engine, snap
    )
    _check(_card(analytics_db, "month"), "month", world)


def test_a_step_sharing_the_kpi_table_keeps_the_other_steps_rows(
    analytics_db: AnalyticsDb, world: dict[str, int], ran: int
) -> None:
    """The ``kpi`` step and ``scorecard`` both write ``analytics_kpi``: three scorecard
    runs after a ``kpi`` run must leave that run's rows in place."""

    def fake(ctx: runner.StepContext) -> runner.StepResult:
        row = {
            "period": "month",
            "period_start": OCTOBER,
            "dimension": "all",
            "member": "",
            "metric": "shipments",
            "value": 1.0,
            "numerator": 1.0,
            "denominator": None,
        }
        return runner.StepResult(rows=ctx.write(KpiValue, [row]))

    runner.load_steps()
    runner.register(runner.Step(name="fake_kpi", reads=(), run=fake, writes=(KpiValue,)))
    try:
        other = runner.run(analytics_db.engine, analytics_db.settings, only=["fake_kpi"])
        assert other.status == "succeeded"
        last = 0
        for _ in range(3):
            last = runner.run(
                analytics_db.engine,
                analytics_db.settings,
                only=["scorecard"],
                force=True,
                as_of=AS_OF,
            ).run_id
        with Session(analytics_db.engine) as session:
            kept = session.scalar(
                select(func.count()).select_from(KpiValue).where(KpiValue.run_id == other.run_id)
            )
            runs = set(
                session.scalars(
                    select(KpiValue.run_id).where(KpiValue.dimension.in_(sc.DIMENSIONS)).distinct()
                )
            )
            succeeded = session.scalars(
                select(AnalyticsStep.run_id)
                .where(AnalyticsStep.step == "scorecard", AnalyticsStep.status == "succeeded")
                .order_by(AnalyticsStep.run_id.desc())
                .limit(2)
            ).all()
    finally:
        del runner.STEPS["fake_kpi"]
    assert kept == 1
    # The scorecard's own older runs are purged as before: its newest two remain.
    assert runs == set(succeeded)
    assert last in runs
    _check(_card(analytics_db, "month"), "month", world)


# --------------------------------------------------------------------------- the web


@pytest.fixture(scope="module")
def web(analytics_db: AnalyticsDb, ran: int) -> Iterator[Any]:
    """A client of the app over the fixture database, signed in as the manager."""
    from fastapi.testclient import TestClient

    from guanxi.app import create_app

    with TestClient(create_app(analytics_db.settings), raise_server_exceptions=False) as client:
        yield client


def _sign_in(client: Any, username: str) -> None:
    client.cookies.clear()
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": "/analytics/scorecard"},
        follow_redirects=False,
    )
    assert resp.status_code == 303


EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def _cells(page: str, attr: str, member: int) -> dict[str, str]:
    row = page.split(f'data-{attr}="{member}"', 1)[1].split("</tr>", 1)[0]
    return dict(re.findall(r'data-col="([a-z_]+)">([^<]*)</td>', row))


def test_the_scorecard_page_shows_the_figures(web: Any, world: dict[str, int]) -> None:
    _sign_in(web, "boss")
    page = web.get("/analytics/scorecard?period=month&start=2026-10", headers=EN)
    assert page.status_code == 200
    assert '<p class="an-caption" id="sc-period">2026-10</p>' in page.text
    assert _cells(page.text, "agent", world["A"]) == {
        "tickets_handled": "4",
        "first_response_median_min": "25 min",
        "resolution_median_h": "3.0 h",
        "sla_attainment": "75.0%",
        "reopen_rate": "25.0%",
        "satisfaction_mean": "8.00",
        "csat_share": "66.7%",
        "claim_cost_fen": "¥150.00",
        "training": "2 / 2",
        "training_score": "75.0",
    }
    assert _cells(page.text, "agent", world["C"])["training_score"] == "—"
    assert _cells(page.text, "team", world["T1"]) == {
        "tickets_handled": "6",
        "first_response_median_min": "20 min",
        "resolution_median_h": "3.0 h",
        "sla_attainment": "83.3%",
        "reopen_rate": "16.7%",
        "satisfaction_mean": "8.40",
        "csat_share": "80.0%",
        "claim_cost_fen": "¥150.00",
        "training": "3 / 4",
        "training_score": "80.0",
    }
    quarter = web.get("/analytics/scorecard?period=quarter&start=2026-Q4", headers=ZH)
    assert quarter.status_code == 200
    assert '<p class="an-caption" id="sc-period">2026 Q4</p>' in quarter.text
    b = _cells(quarter.text, "agent", world["B"])
    assert (b["tickets_handled"], b["sla_attainment"], b["satisfaction_mean"]) == (
        "3", "66.7%", "7.33",
    )  # fmt: skip
    assert (b["first_response_median_min"], b["training"]) == ("10 分钟", "1 / 3")


def test_the_scorecard_sorts_by_a_column_and_filters_a_team(
    web: Any, world: dict[str, int]
) -> None:
    _sign_in(web, "boss")

    def order(url: str) -> list[int]:
        table = web.get(url, headers=EN).text.split('id="sc-agents"', 1)[1].split("</table>")[0]
        return [int(m) for m in re.findall(r'data-agent="(\d+)"', table)]

    base = "/analytics/scorecard?period=month&start=2026-10"
    assert order(base) == [world["A"], world["B"], world["C"]]
    assert order(base + "&sort=sla_attainment&dir=asc") == [world["A"], world["B"], world["C"]]
    # Ties keep the name order; B and C are both at 100 %.
    assert order(base + "&sort=sla_attainment&dir=desc") == [world["B"], world["C"], world["A"]]
    # C has no assessment score: last either way.
    assert order(base + "&sort=training_score&dir=desc") == [world["B"], world["A"], world["C"]]
    assert order(base + "&sort=training_score&dir=asc") == [world["A"], world["B"], world["C"]]
    assert order(base + "&sort=name&dir=desc") == [world["C"], world["B"], world["A"]]
    assert order(base + f"&team={world['T2']}") == [world["C"]]


def test_an_agents_periods_side_by_side_with_training_history(
    web: Any, world: dict[str, int]
) -> None:
    _sign_in(web, "boss")
    page = web.get(f"/analytics/scorecard/agents/{world['A']}?period=month&start=2026-11",
                   headers=EN).text  # fmt: skip
    head = page.split('id="sc-trend"', 1)[1].split("</thead>", 1)[0]
    assert re.findall(r'<th scope="col" class="num">([^<]+)</th>', head) == [
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11",
    ]  # fmt: skip

    def row(col: str) -> list[str]:
        tr = page.split(f'<tr data-col="{col}">', 1)[1].split("</tr>", 1)[0]
        return re.findall(r'<td class="num">([^<]*)</td>', tr)

    assert row("tickets_handled") == ["0", "0", "0", "0", "4", "1"]
    assert row("first_response_median_min") == ["—", "—", "—", "—", "25 min", "2 min"]
    # September's course k4 (score 10) counts in September only.
    assert row("training") == ["—", "—", "—", "1 / 1", "2 / 2", "1 / 1"]
    assert row("training_score") == ["—", "—", "—", "10.0", "75.0", "100.0"]
    history = page.split('id="sc-history"', 1)[1].split("</table>", 1)[0]
    # Newest first: the December course (planned, not recorded), the guest course, ...
    assert re.findall(r">课程 (\d{4}-\d\d-\d\d)<", history) == [
        "2026-12-10", "2026-11-10", "2026-10-25", "2026-10-15", "2026-09-28",
    ]  # fmt: skip
    assert history.count("Not recorded") == 1


def test_the_scorecard_exports_to_csv_and_xlsx(web: Any, world: dict[str, int]) -> None:
    _sign_in(web, "boss")
    resp = web.get("/api/v1/analytics/scorecard/export?period=month&start=2026-10&format=csv",
                   headers=EN)  # fmt: skip
    assert resp.status_code == 200
    assert resp.headers["content-disposition"] == 'attachment; filename="scorecard-2026-10.csv"'
    assert resp.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert lines == [
        ["Period", "Agent or team", "ID", "Name", "Teams", "Tickets handled",
         "First response, median [min]", "Resolution time, median [h]",
         "SLA attainment [%]", "Reopen rate [%]", "Satisfaction (1–10)", "CSAT (8–10) [%]",
         "Claim cost [yuan]", "Courses planned", "Courses attended", "Assessment score"],
        ["2026-10", "Agent", str(world["A"]), "A 李娜", "一组", "4", "25", "3", "75", "25",
         "8", "66.7", "150", "2", "2", "75"],
        ["2026-10", "Agent", str(world["B"]), "B 张伟", "一组", "2", "5", "12.5", "100", "0",
         "9", "100", "0", "2", "1", "90"],
        ["2026-10", "Agent", str(world["C"]), "C 王芳", "二组", "2", "37.5", "7", "100", "0",
         "10", "100", "0", "1", "1", ""],
        ["2026-10", "Team", str(world["T1"]), "一组", "", "6", "20", "3", "83.3", "16.7",
         "8.4", "80", "150", "4", "3", "80"],
        ["2026-10", "Team", str(world["T2"]), "二组", "", "2", "47.5", "6.5", "100", "0", "10",
         "100", "0", "1", "1", ""],
    ]  # fmt: skip
    xlsx = web.get("/api/v1/analytics/scorecard/export?period=quarter&start=2026-Q4&format=xlsx",
                   headers=ZH)  # fmt: skip
    assert xlsx.status_code == 200
    values = (
        CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content)).get_sheet_by_index(0).to_python()
    )
    assert values[0][:3] == ["周期", "客服或小组", "编号"]
    a = next(v for v in values if v[2] == world["A"])
    # Numbers stay numbers: Q4 for A.
    assert a[:13] == ["2026 Q4", "客服", world["A"], "A 李娜", "一组", 5, 20, 2, 80, 20, 8.5,
                      75, 150]  # fmt: skip
    assert a[13:] == [4, 3, 83.3]


def test_the_json_api_gives_fractions_and_fen(web: Any, world: dict[str, int]) -> None:
    _sign_in(web, "boss")
    body = web.get("/api/v1/analytics/scorecard?period=month&start=2026-10").json()
    assert body["period_start"] == "2026-10-01"
    a = next(x for x in body["agents"] if x["id"] == world["A"])
    assert a == {
        "dimension": "agent",
        "id": world["A"],
        "name": "A 李娜",
        "teams": ["一组"],
        "tickets_handled": 4,
        "first_response_median_min": 25.0,
        "resolution_median_h": 3.0,
        "sla_attainment": 0.75,
        "reopen_rate": 0.25,
        "satisfaction_mean": 8.0,
        "satisfaction_answers": 3,
        "csat_share": pytest.approx(2 / 3),
        "claim_cost_fen": 15_000,
        "claims": 2,
        "training": {"planned": 2, "attended": 2, "scored": 2, "score_mean": 75.0},
    }
    trend = web.get(f"/api/v1/analytics/scorecard/agents/{world['B']}?period=quarter"
                    "&start=2026-Q4&periods=2").json()  # fmt: skip
    assert [p["period_start"] for p in trend["periods"]] == ["2026-07-01", "2026-10-01"]
    assert [p["figures"]["tickets_handled"] for p in trend["periods"]] == [0, 3]


def test_only_team_performance_roles_see_scorecards(web: Any, world: dict[str, int]) -> None:
    _sign_in(web, "agent_a")
    assert web.get("/analytics/scorecard").status_code == 403
    assert web.get(f"/analytics/scorecard/agents/{world['A']}").status_code == 403
    assert web.get("/api/v1/analytics/scorecard").status_code == 403
    assert web.get("/api/v1/analytics/scorecard/export").status_code == 403
    _sign_in(web, "analyst1")
    page = web.get("/analytics/scorecard?period=year&start=2026")
    assert page.status_code == 200
    assert '<p class="an-caption" id="sc-period">2026</p>' in page.text
    year = web.get("/api/v1/analytics/scorecard?period=year&start=2026")
    assert year.status_code == 200
    # Every handled ticket of the fixture falls in the fourth quarter: the year is Q4.
    assert year.json()["period_start"] == "2026-01-01"
    assert [x["tickets_handled"] for x in year.json()["agents"]] == [5, 3, 2]
    web.cookies.clear()
    assert web.get("/api/v1/analytics/scorecard").status_code == 401


def test_a_bad_period_is_refused_naming_the_field(web: Any) -> None:
    _sign_in(web, "boss")
    resp = web.get("/api/v1/analytics/scorecard?period=month&start=2026-13", headers=ZH)
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {
            "field": "query.start",
            "loc": ["query", "start"],
            "code": "period_invalid",
            "message": "不是有效的周期（如 2026-10、2026-Q4 或 2026）",
        }
    ]
    page = web.get("/analytics/scorecard?period=week", headers=EN)
    assert page.status_code == 422
    assert page.json()["errors"][0]["field"] == "query.period"


@pytest.mark.slow
def test_the_same_statement_runs_on_spark(
    analytics_db: AnalyticsDb, world: dict[str, int], ran: int
) -> None:
    if analytics_db.backend != "sqlite":
        pytest.skip("one Spark session is enough: it reads the same snapshot")
    pytest.importorskip("pyspark")
    with Session(analytics_db.engine) as session:
        duck = runner.latest_run(session, "scorecard")
    assert duck is not None
    spark_settings = analytics_db.settings.model_copy(update={"analytics_engine": "spark"})
    spark = runner.run(
        analytics_db.engine, spark_settings, only=["scorecard"], force=True, as_of=AS_OF
    )
    assert spark.status == "succeeded"
    # The fixture's moments are whole seconds (Spark's epoch drops fractions of a second).
    assert _stored_rows(analytics_db.engine, spark.run_id) == _stored_rows(
        analytics_db.engine, duck
    )
