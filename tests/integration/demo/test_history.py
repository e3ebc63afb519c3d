"""The demo's service history and planted churn: working time equal to the desk calendar's,
the hazard arithmetic, tickets whose timelines, breaches and claims are what the product
itself would record, determinism, and no shipment or ticket after a customer's churn."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import Engine, func, select, text

from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.demo import history as h
from guanxi.demo.accounts import ensure_demo_users
from guanxi.demo.generator import generate
from guanxi.demo.history import (
    ChurnTruth,
    History,
    WorkClock,
    _leave_active,
    load_staff,
    planted_churn_probability,
)
from guanxi.shipments.models import Shipment
from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.claims import standard_amount
from guanxi.tickets.models import Claim, SlaEvent, Ticket, TicketCategory, TicketEvent
from guanxi.tickets.sla import sla, sla_context
from guanxi.tickets.teams import team_calendar

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


# ------------------------------------------------------------------------ working time


@pytest.mark.parametrize("hours", ["09:00-12:00,13:00-18:00", None])
def test_work_clock_equals_the_business_calendar(hours: str | None) -> None:
    calendar = team_calendar(hours, "Asia/Shanghai") if hours else BusinessCalendar(tz=SHANGHAI)
    clock = WorkClock(calendar, date(2025, 12, 1), date(2026, 12, 31))
    rng = np.random.default_rng(3)
    # Around the Spring Festival of 2026 (17 February; 14 and 28 February are worked
    # Saturdays) and at random through the year, at any time of day.
    spring = np.datetime64("2026-02-10T00:00", "us")
    starts = np.concatenate(
        [
            spring + (rng.random(150) * 20 * 86_400e6).astype("timedelta64[us]"),
            np.datetime64("2026-01-01T00:00", "us")
            + (rng.random(150) * 330 * 86_400e6).astype("timedelta64[us]"),
        ]
    )
    durations = (rng.exponential(20 * 3600, 300) * 1e6).astype(np.int64) + 1
    due = clock.add(starts, durations)
    for start, length, got in zip(starts.tolist(), durations.tolist(), due.tolist(), strict=True):
        aware = start.replace(tzinfo=UTC)
        want = calendar.add(aware, length / 1e6)
        assert got.replace(tzinfo=UTC) == want
    ends = starts + (rng.random(300) * 9 * 86_400e6).astype("timedelta64[us]")
    worked = clock.worked(ends) - clock.worked(starts)
    for start, end, got in zip(starts.tolist(), ends.tolist(), worked.tolist(), strict=True):
        want = calendar.seconds_between(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
        assert got == round(want * 1e6)


def test_the_plain_clock_runs_around_the_clock() -> None:
    clock = WorkClock(None, date(2026, 1, 1), date(2026, 2, 1))
    start = np.array(["2026-01-03T22:00"], dtype="datetime64[us]")  # a Saturday night
    assert clock.add(start, np.array([3600 * 10**6]))[0] == np.datetime64("2026-01-03T23:00")


# ---------------------------------------------------------------------------- hazard


def test_leaving_the_active_state_follows_the_accumulated_hazard() -> None:
    # Customer 0: 0.01 a day from day 0; an event at day 10 multiplies it by 4. By day 10
    # the hazard has reached 0.1; 0.2 more takes 0.2 / 0.04 = 5 days: leaves at day 15.
    # Customer 1: no event, exposure 0.5 at 0.01 a day: day 20 + 50 = 70, after the end.
    # Customer 2: its event comes after it left (day 30 > 5 + 0.05 / 0.01 = 10).
    left = _leave_active(
        start=np.array([0.0, 20.0, 5.0]),
        base=np.array([0.01, 0.01, 0.01]),
        ev_cust=np.array([0, 2]),
        ev_day=np.array([10.0, 30.0]),
        ev_factor=np.array([4.0, 4.0]),
        end=60.0,
        exposure=np.array([0.3, 0.5, 0.05]),
    )
    assert left[0] == pytest.approx(15.0)
    assert left[1] == np.inf
    assert left[2] == pytest.approx(10.0)


def test_factors_are_capped() -> None:
    # Ten events x 4 at day 1 would be 4**10; the cap holds the rate at 0.01 x MAX_FACTOR.
    left = _leave_active(
        start=np.array([0.0]),
        base=np.array([0.01]),
        ev_cust=np.zeros(10, dtype=np.int64),
        ev_day=np.ones(10),
        ev_factor=np.full(10, 4.0),
        end=100.0,
        exposure=np.array([0.01 + 0.01 * h.MAX_FACTOR * 2]),
    )
    assert left[0] == pytest.approx(3.0)


def _truth(**columns: Any) -> ChurnTruth:
    one = {
        "ids": np.array([1]),
        "kinds": np.array([1]),
        "rate": np.array([0.02]),
        "active_from": np.array([0.0]),
        "left": np.array([np.inf]),
        "disengaged": np.array([False]),
        "churned": np.array([np.inf]),
        "event_customer": np.array([0]),
        "event_day": np.array([50.0]),
        "event_factor": np.array([h.BREACH_FACTOR]),
    } | columns
    return ChurnTruth(epoch=np.datetime64("2026-01-01", "us"), day_weight=np.ones(400), **one)


def test_planted_probability_is_the_three_state_chain() -> None:
    cutoff = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=100)
    # An active enterprise shipping 0.02 a day, its hazard x BREACH_FACTOR since day 50:
    # daily transitions of (active, disengaging, gone) without a shipment, 90 days on.
    r, mult = 0.02, h.BREACH_FACTOR
    hc, hd = h.HAZARD_CHURN[1] * mult, h.HAZARD_DISENGAGE[1] * mult
    stay = np.exp(-(hc + hd))
    to_d = (1 - stay) * hd / (hc + hd)
    keep_d = np.exp(-1 / h.DISENGAGED_DAYS)
    qa, qd = np.exp(-r), np.exp(-r * h.DISENGAGED_SHARE)
    step = np.array(
        [
            [stay * qa, 0, 0],
            [to_d * qa, keep_d * qd, 0],
            [(1 - stay - to_d) * qa, (1 - keep_d) * qd, 1],
        ]
    )
    expected = float(np.linalg.matrix_power(step, 90) @ np.array([1.0, 0, 0]) @ np.ones(3))
    assert planted_churn_probability(_truth(), cutoff, 90)[1] == pytest.approx(expected, rel=1e-9)
    # Gone before the cut-off: certain. Not yet a customer: not asked.
    assert planted_churn_probability(_truth(left=np.array([80.0]), churned=np.array([80.0])),
                                     cutoff, 90) == {1: 1.0}  # fmt: skip
    assert planted_churn_probability(_truth(active_from=np.array([120.0])), cutoff, 90) == {}


# ---------------------------------------------------------------------- the history


def _load(engine: Engine, customers: int, seed: int, truth: bool = True) -> tuple[History, Any]:
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
        history = History(load_staff(session), truth=truth, timezone="Asia/Shanghai")
    generate(engine, customers=customers, seed=seed, owner_ids=owners, now=NOW, history=history)
    return history, history.write(engine)


def test_demo_history(committed_engine: Engine) -> None:
    history, written = _load(committed_engine, 1200, seed=5)
    sm = make_sessionmaker(committed_engine)
    with sm() as session:

        def count(model: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)))
        assert written.tickets == count(Ticket) == len(tickets) > 150
        assert written.events == count(TicketEvent)
        assert written.breaches == count(SlaEvent)
        assert written.claims == count(Claim) > 0
        done = ("resolved", "closed")
        assert written.open_tickets == sum(t.status not in done for t in tickets) > 0

        # Ids follow arrival; every moment in order.
        assert [t.created_at for t in tickets] == sorted(t.created_at for t in tickets)
        for t in tickets:
            moments = [t.created_at, t.first_response_at, t.resolved_at, t.closed_at]
            present = [m for m in moments if m is not None]
            assert present == sorted(present)
            assert t.updated_at <= NOW
            if t.closed_at is not None:
                assert t.resolved_at is not None
                assert t.status == "closed"
            if t.status in done:
                assert t.resolved_at is not None
                assert t.sla_due_at is None
            else:
                assert t.resolved_at is None
                assert t.sla_check_at is not None
            if t.satisfaction is not None:
                # The history's answers (1-10): 1-4 reopened the ticket (the desk's check
                # before the survey replaced it).
                assert 1 <= t.satisfaction <= 10
                assert (t.satisfaction <= 4) == (t.reopened == 1)
            assert t.owner_id is not None
            assert t.team_id is not None

        # The timeline leads to the ticket's status, step by step in time order.
        events: dict[int, list[Any]] = defaultdict(list)
        for e in session.scalars(select(TicketEvent).order_by(TicketEvent.id)):
            events[e.ticket_id].append(e)
        for t in tickets:
            steps = events[t.id]
            assert [e.action for e in steps[:2]] == ["create", "assign"]
            assert [e.occurred_at for e in steps] == sorted(e.occurred_at for e in steps)
            assert steps[-1].to_status == t.status
            assert len(steps) == t.version
            for before, after in zip(steps, steps[1:], strict=False):
                assert after.from_status == before.to_status

        # Every breach the sweep would have recorded is there, at the product's due moment,
        # and no other.
        ctx = sla_context(session)
        recorded = {(b.ticket_id, b.target): b for b in session.scalars(select(SlaEvent))}
        breached = set()
        for t in tickets:
            for target in sla(t, events[t.id], NOW, ctx.calendar_of(t), ctx.policy):
                missed = target.breached and (
                    target.met_at is not None or target.due_at <= NOW - timedelta(minutes=1)
                )
                row = recorded.get((t.id, target.target))
                assert (row is not None) == missed, (t.id, target)
                if row is not None:
                    assert row.kind == "breach"
                    assert row.due_at == target.due_at
                    assert row.due_at < row.recorded_at < row.due_at + timedelta(minutes=1)
                    breached.add(t.id)
        share = len(breached) / len(tickets)
        assert 0.05 < share < 0.4
        scores = [(t.id in breached, t.satisfaction) for t in tickets if t.satisfaction]
        mean_breached = np.mean([s for b, s in scores if b])
        mean_other = np.mean([s for b, s in scores if not b])
        assert mean_breached < mean_other - 0.5

        # Claims follow the published standard and their own order of events.
        for c, ship, cat in session.execute(
            select(Claim, Shipment, Ticket.category)
            .join(Shipment, Shipment.id == Claim.shipment_id)
            .join(Ticket, Ticket.id == Claim.ticket_id)
        ):
            assert c.customer_id == ship.customer_id
            assert ship.is_damaged or ship.is_lost
            assert cat.startswith(("damage", "loss"))
            assert c.reason == {"loss.partial": "shortage"}.get(
                cat, "loss" if ship.is_lost else "damage"
            )
            assert c.standard_fen == standard_amount(ship, c.requested_fen)
            assert c.insured == (ship.insured_value_fen > 0)
            if c.status in ("approved", "paid"):
                assert 0 < c.approved_fen <= c.standard_fen
                assert c.decided_at >= c.created_at
            if c.status == "paid":
                assert c.paid_at >= c.decided_at
                assert c.payout_ref
            if c.status == "submitted":
                assert c.decided_at is None
            assert c.created_at <= NOW

        # Codes from the seeded category tree; late, damaged and lost shipments complain
        # far more often than good ones.
        codes = set(session.scalars(select(TicketCategory.code)))
        assert {t.category for t in tickets} <= codes
        complained = {t.waybill_no for t in tickets if t.type in ("complaint", "claim")}
        bad = good = bad_hit = good_hit = 0
        for waybill, delivered, promised, damaged, lost in session.execute(
            select(
                Shipment.waybill_no,
                Shipment.delivered_at,
                Shipment.promised_at,
                Shipment.is_damaged,
                Shipment.is_lost,
            )
        ):
            wrong = damaged or lost or (delivered is not None and delivered > promised)
            bad, good = bad + wrong, good + (not wrong)
            hit = waybill in complained
            bad_hit, good_hit = bad_hit + (wrong and hit), good_hit + (hit and not wrong)
        assert bad_hit / bad > 10 * good_hit / good

    # Churned customers ship nothing, and raise nothing, from their churn moment on.
    assert history.truth is not None
    churned_at = history.truth.churn_moments()
    with committed_engine.connect() as conn:
        last = {
            cid: at
            for cid, at in conn.execute(
                select(Shipment.customer_id, func.max(Shipment.created_at)).group_by(
                    Shipment.customer_id
                )
            )
        }
        last_ticket = {
            cid: at
            for cid, at in conn.execute(
                select(Ticket.customer_id, func.max(Ticket.created_at)).group_by(Ticket.customer_id)
            )
        }
    gone = {cid: at for cid, at in churned_at.items() if at is not None}
    assert 0.2 < len(gone) / len(churned_at) < 0.7
    for cid, at in gone.items():
        assert last.get(cid) is None or _aware(last[cid]) < at
        assert last_ticket.get(cid) is None or _aware(last_ticket[cid]) < at


def _aware(moment: datetime | str) -> datetime:
    if isinstance(moment, str):  # SQLite through a bare aggregate
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()  # noqa: S608
            for table in ("ticket", "ticket_event", "sla_event", "claim", "shipment")
        }


def test_same_seed_same_history(tmp_path: Path) -> None:
    engines = []
    for name in ("one", "two"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(engine)
        engines.append(engine)
    first = _load(engines[0], 400, seed=9, truth=False)[1]
    second = _load(engines[1], 400, seed=9, truth=False)[1]
    assert (first.tickets, first.events, first.breaches, first.claims) == (
        second.tickets,
        second.events,
        second.breaches,
        second.claims,
    )
    one, two = _rows(engines[0]), _rows(engines[1])
    for table in one:
        # Shipments' receiver phones are encrypted with a fresh nonce each time.
        if table == "shipment":
            one[table] = [r[:7] + r[8:] for r in one[table]]
            two[table] = [r[:7] + r[8:] for r in two[table]]
        assert one[table] == two[table], table
    for engine in engines:
        engine.dispose()


def test_the_planted_drivers_raise_churn_and_the_truth_is_calibrated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'drivers.db'}")
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
    # Only the churn and its truth: the tickets behind it are drafted, not written.
    history = History(tickets=False, truth=True, timezone="Asia/Shanghai")
    generate(engine, customers=8000, seed=21, owner_ids=owners, now=NOW, history=history)
    truth = history.truth
    assert truth is not None
    gone = np.isfinite(truth.churned)
    individual, enterprise = truth.kinds == 0, truth.kinds == 1
    assert gone[individual].mean() > 1.5 * gone[enterprise].mean()

    # Active customers one year in: those whose service failed them in the last 180 days
    # (a missed service level or a bad claim: factor >= 3) leave within 120 days far more
    # often.
    day = 365.0
    recent = (truth.event_day > day - 180) & (truth.event_day <= day) & (truth.event_factor >= 3)
    hurt = np.zeros(len(truth.ids), dtype=bool)
    hurt[truth.event_customer[recent]] = True
    active = (truth.active_from < day - 180) & (truth.left > day)
    leaves = truth.left <= day + 120
    assert hurt[active].sum() > 40
    assert leaves[active & hurt].mean() > 1.8 * leaves[active & ~hurt].mean()

    # The truth's probability of shipping nothing in the 90 days after a cut-off matches
    # what happened, on average and in order.
    cutoff = NOW - timedelta(days=90)
    p = planted_churn_probability(truth, cutoff, 90)
    since = (cutoff - timedelta(days=365)).replace(tzinfo=None)
    with engine.connect() as conn:
        shipped_before = set(
            conn.scalars(
                select(Shipment.customer_id).where(
                    Shipment.created_at >= since.replace(tzinfo=UTC),
                    Shipment.created_at < cutoff,
                )
            )
        )
        shipped_after = set(
            conn.scalars(select(Shipment.customer_id).where(Shipment.created_at >= cutoff))
        )
    asked = sorted(shipped_before)
    y = np.array([c not in shipped_after for c in asked], dtype=float)
    q = np.array([p[c] for c in asked])
    assert abs(q.mean() - y.mean()) < 0.03
    assert np.mean((q - y) ** 2) < 0.15
    engine.dispose()
