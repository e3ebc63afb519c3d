"""The demo's service history at scale, and the churn planted in it.

Complaints and inquiries are raised from the customers' own shipments — a late, damaged
or lost shipment much more often than a good one — with a category from the default tree
(migration 0010), a channel, a severity and the priority the desk's matrix gives it, a
subject and description from :mod:`guanxi.demo.texts`, an owner among the agents, and a
timeline (opened and routed, first response, perhaps a wait on the customer, resolved,
perhaps an unsatisfied answer that reopens it, closed, perhaps a satisfaction score) in
the team's working hours. Service levels are judged as ``tickets.sla`` judges them, on
the same working calendar (:class:`WorkClock` is ``BusinessCalendar`` vectorised), and
every missed target gets its ``sla_event`` breach row, as the sweep records it. Damaged
and lost shipments bring compensation claims judged by the published standard
(``tickets.claims``): approved, rejected, some decided slowly, paid.

**Planted churn.** Every customer starts *active*; from there a hazard moves them either
straight to *churned* or to *disengaging*, in which they ship less and less often
(:data:`DISENGAGED_SHARE` of their usual rhythm) until they churn (mean
:data:`DISENGAGED_DAYS` days). The hazard depends on the kind (individuals leave more
easily than enterprises) and rises from the moment something goes wrong: a complaint
(x :data:`COMPLAINT_FACTOR`), a missed service level on it (x :data:`BREACH_FACTOR`), a
claim rejected or left undecided for a week (x :data:`CLAIM_FACTOR`). Shipments after
the churn moment are not generated, and neither are tickets. :class:`ChurnTruth` keeps
the latent state so a benchmark can compute what the generating process itself would
predict (:func:`planted_churn_probability`) — the ceiling a churn model is measured
against.

Everything is vectorised per chunk of customers and deterministic for a seed. The
generator (:mod:`guanxi.demo.generator`) drafts each chunk's shipments, asks
:meth:`History.plan` which survive, writes those and hands their ids back
(:meth:`History.accept`); :meth:`History.write` inserts the tickets, their timelines, SLA
breaches and claims afterwards in bulk, ids in order of arrival.
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from guanxi.tickets.calendar import BusinessCalendar
from guanxi.tickets.claims import RULES, ClaimRules
from guanxi.tickets.desk import DEFAULT_POLICY, DeskPolicy
from guanxi.tickets.enums import Priority, Severity, TicketChannel, TicketType

Progress = Callable[[str, int, int], None]

US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US
NAT = np.datetime64("NaT", "us")

# ----------------------------------------------------------------------------- codes
# Shared with benchmarks/_desk_data.py (the service-desk benchmark's million tickets).

TYPES = ["complaint", "inquiry", "service_request", "claim"]
COMPLAINT, INQUIRY, SERVICE_REQUEST, CLAIM = range(4)
CHANNELS = [
    "hotline",
    "online_chat",
    "wechat",
    "web_form",
    "outlet",
    "email",
    "social_media",
    "api",
    "regulator",
]
CHANNEL_P = [0.40, 0.20, 0.15, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01]
REGULATOR = CHANNELS.index("regulator")
SEVERITIES = ["minor", "major", "critical"]
MINOR, MAJOR, CRITICAL = range(3)
SEVERITY_P = [0.70, 0.25, 0.05]
STATUSES = [
    "new",
    "assigned",
    "in_progress",
    "waiting_customer",
    "waiting_third_party",
    "resolved",
    "closed",
]
NEW, ASSIGNED, IN_PROGRESS, WAIT_CUSTOMER, WAIT_THIRD, RESOLVED, CLOSED = range(7)
RESOLUTIONS = ["redelivered", "refunded", "compensated", "explained", "apologised"]
ROOT_CAUSES = ["sorting error", "address wrong", "courier", "weather", "customer", "system"]

TICKET_COLUMNS = [
    "id",
    "type",
    "channel",
    "customer_id",
    "waybill_no",
    "category",
    "region",
    "team_id",
    "severity",
    "priority",
    "subject",
    "description",
    "status",
    "owner_id",
    "first_owner_id",
    "created_by",
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "reopened",
    "is_repeat",
    "is_major",
    "resolution_code",
    "root_cause",
    "satisfaction",
    "version",
]
EVENT_COLUMNS = [
    "ticket_id",
    "occurred_at",
    "actor_id",
    "action",
    "from_status",
    "to_status",
    "to_user_id",
    "note",
    "internal",
]
SLA_EVENT_COLUMNS = ["ticket_id", "target", "kind", "due_at", "recorded_at"]
CLAIM_COLUMNS = [
    "ticket_id",
    "shipment_id",
    "customer_id",
    "reason",
    "insured",
    "declared_value_fen",
    "fee_fen",
    "requested_fen",
    "standard_fen",
    "approved_fen",
    "status",
    "evidence",
    "decision_note",
    "payout_ref",
    "created_by",
    "created_at",
    "decided_by",
    "decided_at",
    "paid_at",
    "version",
]

# Categories (codes of the default tree) by what went wrong with the shipment.
LATE_CATEGORIES = ["delay.transit", "delay.delivery"]
OTHER_COMPLAINTS = [
    "delivery.wrong",
    "delivery.fake_sign",
    "delivery.not_to_door",
    "service_attitude",
    "price.overcharge",
    "pickup.missed",
]
INQUIRY_CATEGORIES = ["price", "other", "pickup", "delay.transit"]
REQUEST_CATEGORIES = ["pickup.missed", "delivery", "other"]

# Working hours of the demo's hotline team (``Team.work_hours``' default): the calendar
# the history is judged on when no team is given, so a run without staff plants the same
# churn as ``guanxi demo``.
DEMO_HOURS = "09:00-12:00,13:00-18:00"

# ------------------------------------------------------------------ how often, how long
# Chance that a shipment brings a complaint: a small base rate, much more when late,
# damaged or lost.
COMPLAINT_BASE = 0.0025
COMPLAINT_LATE = 0.18
COMPLAINT_DAMAGED = 0.60
COMPLAINT_LOST = 0.85
INQUIRY_BASE = 0.006
INQUIRY_LATE = 0.05
REQUEST_BASE = 0.002
# Mean working minutes from routing to the first response; a few tickets are forgotten.
FIRST_RESPONSE_MINUTES = 45.0
FORGOTTEN_SHARE = 0.06
FORGOTTEN_FACTOR = 6.0
# Mean working time to resolve, as a share of the resolution target; some cases are hard.
RESOLVE_SHARE = 0.30
HARD_SHARE = 0.10
HARD_FACTOR = 3.5
WAIT_SHARE = 0.12
STAY_RESOLVED_SHARE = 0.10
ANSWER_SHARE = 0.35
UNSATISFIED_BASE = 0.04
UNSATISFIED_BREACHED = 0.18
CLAIM_FILED = 0.80
CLAIM_REJECTED = 0.20
CLAIM_SLOW = 0.25
CLAIM_SLOW_DAYS = 7  # a claim undecided this long counts as slow (and hurts)

# ------------------------------------------------------------------------- the churn
# Hazards per day of leaving the active state, by kind (individual, enterprise,
# government): straight to churned, or to disengaging first.
HAZARD_CHURN = np.array([0.22, 0.05, 0.02]) / 365.0
HAZARD_DISENGAGE = np.array([0.30, 0.10, 0.05]) / 365.0
DISENGAGED_DAYS = 60.0
DISENGAGED_SHARE = 0.3
COMPLAINT_FACTOR = 1.3
BREACH_FACTOR = 4.0
CLAIM_FACTOR = 3.0
MAX_FACTOR = 40.0


# ----------------------------------------------------------------------- working time


class WorkClock:
    """A working calendar as integer arithmetic over many moments at once.

    ``BusinessCalendar.add`` / ``seconds_between`` walk day by day per moment; this
    precomputes, per local day of ``[first, last]``, whether it is a working day (the same
    ``is_workday``: holidays and 调休) and the working time before it, so the working
    time up to any moment is a lookup and the inverse a binary search. Moments are
    ``datetime64[us]`` in UTC; durations are microseconds. ``calendar=None`` is a clock
    that runs around the clock (regulator referrals). Results equal the calendar's to the
    microsecond.
    """

    def __init__(self, calendar: BusinessCalendar | None, first: date, last: date) -> None:
        self.calendar = calendar
        if calendar is None:
            return
        days = (last - first).days + 1
        tz = calendar.tz
        self.starts = np.array(
            [
                datetime.combine(first + timedelta(days=d), datetime.min.time(), tz)
                .astimezone(UTC)
                .replace(tzinfo=None)
                for d in range(days)
            ],
            dtype="datetime64[us]",
        )
        work = np.array([calendar.is_workday(first + timedelta(days=d)) for d in range(days)])
        spans = [
            ((s.hour * 3600 + s.minute * 60 + s.second) * US,
             (e.hour * 3600 + e.minute * 60 + e.second) * US)
            for s, e in calendar.hours
        ]  # fmt: skip
        self.span_start = np.array([s for s, _ in spans], dtype=np.int64)
        lengths = np.array([e - s for s, e in spans], dtype=np.int64)
        self.span_len = lengths
        self.span_cum_end = np.cumsum(lengths)
        day_work = np.where(work, int(lengths.sum()), 0).astype(np.int64)
        self.cum_end = np.cumsum(day_work)
        self.cum_start = self.cum_end - day_work
        self.work = work

    def worked(self, moments: np.ndarray) -> np.ndarray:
        """Working microseconds from the clock's origin to each moment."""
        if self.calendar is None:
            return moments.astype("datetime64[us]").astype(np.int64)
        day = np.searchsorted(self.starts, moments, side="right") - 1
        if (day < 0).any() or (day >= len(self.starts)).any():
            raise ValueError("moment outside the work clock's days")
        since = (moments - self.starts[day]).astype(np.int64)
        within = np.zeros(len(moments), dtype=np.int64)
        for start, length in zip(self.span_start.tolist(), self.span_len.tolist(), strict=True):
            within += np.clip(since - start, 0, length)
        worked: np.ndarray = self.cum_start[day] + np.where(self.work[day], within, 0)
        return worked

    def add(self, moments: np.ndarray, micros: np.ndarray) -> np.ndarray:
        """The moment ``micros`` of working time (> 0) after each moment, as
        ``BusinessCalendar.add`` finds it (a target reached at a span's end is that end)."""
        if self.calendar is None:
            return moments + micros.astype("timedelta64[us]")  # type: ignore[no-any-return]
        goal = self.worked(moments) + micros
        if (goal > self.cum_end[-1]).any():
            raise ValueError("deadline beyond the work clock's days")
        day = np.searchsorted(self.cum_end, goal, side="left")
        rest = goal - self.cum_start[day]
        span = np.searchsorted(self.span_cum_end, rest, side="left")
        before = self.span_cum_end[span] - self.span_len[span]
        offset = self.span_start[span] + rest - before
        return self.starts[day] + offset.astype("timedelta64[us]")  # type: ignore[no-any-return]


def _clock_for(hours: str | None, tz: str, first: date, last: date) -> WorkClock:
    from guanxi.tickets.sla import calendar_for
    from guanxi.tickets.teams import team_calendar

    calendar = team_calendar(hours, tz) if hours else calendar_for(tz)
    return WorkClock(calendar, first, last)


# ------------------------------------------------------------------------------ staff


@dataclass(frozen=True)
class Staff:
    """Who works the history: agents (with their team and its working hours), the
    manager and administrator who decide claims above an agent's limit."""

    agents: tuple[int, ...] = ()
    team_of: dict[int, int] = field(default_factory=dict)
    hours_of_team: dict[int, str] = field(default_factory=dict)
    managers: tuple[int, ...] = ()
    admins: tuple[int, ...] = ()
    policy: DeskPolicy = field(default_factory=lambda: DEFAULT_POLICY)


def load_staff(session: Session) -> Staff:
    """The active agents, managers and administrators of the database, the teams the
    agents work in and the desk policy in force."""
    from guanxi.security.models import User
    from guanxi.tickets.desk import load_policy
    from guanxi.tickets.models import Team, TeamMember

    def ids(role: str) -> tuple[int, ...]:
        return tuple(
            session.scalars(
                select(User.id).where(User.role == role, User.is_active.is_(True)).order_by(User.id)
            )
        )

    agents = ids("agent")
    team_of: dict[int, int] = {}
    for user_id, team_id in session.execute(
        select(TeamMember.user_id, TeamMember.team_id).order_by(
            TeamMember.user_id, TeamMember.team_id
        )
    ):
        team_of.setdefault(user_id, team_id)
    hours = {tid: work for tid, work in session.execute(select(Team.id, Team.work_hours))}
    return Staff(
        agents=agents,
        team_of={a: team_of[a] for a in agents if a in team_of},
        hours_of_team=hours,
        managers=ids("manager"),
        admins=ids("admin"),
        policy=load_policy(session),
    )


# --------------------------------------------------------------------------- drafts


@dataclass
class CustomerDraft:
    """A chunk's customers as the churn needs them."""

    ids: np.ndarray  # int64
    kinds: np.ndarray  # 0 individual, 1 enterprise, 2 government
    active_from: np.ndarray  # datetime64[us]: when they could first ship
    rate: np.ndarray  # shipments per day at an ordinary day's weight


@dataclass
class ShipmentDraft:
    """A chunk's drafted shipments (before the churn thins them), columns as arrays."""

    owner: np.ndarray  # position of the customer in the chunk
    created: np.ndarray  # datetime64[us], UTC
    promised: np.ndarray
    delivered: np.ndarray  # when it arrives (maybe after now)
    arrived: np.ndarray  # delivered by now
    damaged: np.ndarray
    lost: np.ndarray
    fee: np.ndarray
    insured: np.ndarray
    region: np.ndarray  # destination province (object array)


@dataclass
class _Tickets:
    """Drafted tickets of one chunk: one row per ticket, columns as arrays."""

    ship: np.ndarray  # index into the chunk's drafted shipments
    cust: np.ndarray  # customer position in the chunk
    type: np.ndarray
    category: np.ndarray  # object
    channel: np.ndarray
    severity: np.ndarray
    priority: np.ndarray  # object
    owner: np.ndarray  # user id, -1 none
    team: np.ndarray  # team id, -1 none
    is_major: np.ndarray
    is_repeat: np.ndarray
    moments: dict[str, np.ndarray]  # step -> datetime64[us] (NaT: no such step)
    score: np.ndarray  # satisfaction given, 1-10 (0: none)
    resolution: np.ndarray
    root_cause: np.ndarray
    breach_fr: np.ndarray  # due moment of a recorded first-response breach (NaT: none)
    breach_res: np.ndarray
    claim: dict[str, np.ndarray]  # claim columns, one row per ticket (filed: bool)
    # Known once the chunk's shipments have ids: shipment_id, customer_id, region.
    refs: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> _Tickets:
        """The tickets at ``rows`` (a mask or positions)."""
        values: dict[str, Any] = {
            name: (
                {k: v[rows] for k, v in value.items()} if isinstance(value, dict) else value[rows]
            )
            for name, value in vars(self).items()
        }
        return _Tickets(**values)

    def __len__(self) -> int:
        return len(self.ship)


# Steps of a ticket's timeline in order: (step, action, status it leads to).
STEPS: list[tuple[str, str, int]] = [
    ("created", "create", NEW),
    ("assigned", "assign", ASSIGNED),
    ("start", "start", IN_PROGRESS),
    ("wait", "wait_customer", WAIT_CUSTOMER),
    ("resume", "resume", IN_PROGRESS),
    ("resolve", "resolve", RESOLVED),
    ("unsatisfied", "unsatisfied", IN_PROGRESS),
    ("resolve2", "resolve", RESOLVED),
    ("close", "close", CLOSED),
    ("answer", "satisfaction", CLOSED),
]


def _exp_us(rng: np.random.Generator, mean_minutes: float | np.ndarray, n: int) -> np.ndarray:
    """Exponential durations in microseconds (at least a second)."""
    out: np.ndarray = np.maximum(rng.exponential(1.0, n) * np.asarray(mean_minutes) * 60 * US, US)
    return out.astype(np.int64)


def _choice(rng: np.random.Generator, p: Sequence[float], n: int) -> np.ndarray:
    return rng.choice(len(p), n, p=np.asarray(p) / np.sum(p))


def _pick(options: Sequence[str], u: np.ndarray) -> np.ndarray:
    """The option each uniform draw in [0, 1) falls on."""
    out: np.ndarray = np.array(options, dtype=object)[
        np.minimum((u * len(options)).astype(int), len(options) - 1)
    ]
    return out


class _Clocks:
    """One work clock per team calendar (built on first use), and the plain clock."""

    def __init__(self, tz: str, first: date, last: date) -> None:
        self.tz, self.first, self.last = tz, first, last
        self.cache: dict[str | None, WorkClock] = {}
        self.plain = WorkClock(None, first, last)

    def of(self, hours: str | None) -> WorkClock:
        if hours not in self.cache:
            self.cache[hours] = _clock_for(hours, self.tz, self.first, self.last)
        return self.cache[hours]


def draft_tickets(
    rng: np.random.Generator,
    shipments: ShipmentDraft,
    now: np.datetime64,
    staff: Staff,
    clocks: _Clocks,
) -> _Tickets:
    """Complaints, inquiries and service requests raised from a chunk's drafted shipments,
    with their timelines, breaches and claims as they stand at ``now``."""
    s = shipments
    late = s.arrived & (s.delivered > s.promised) | (~s.arrived & ~s.lost & (now > s.promised))
    p_complaint = np.minimum(
        COMPLAINT_BASE
        + COMPLAINT_LATE * late
        + COMPLAINT_DAMAGED * s.damaged
        + COMPLAINT_LOST * s.lost,
        0.95,
    )
    u = rng.random((len(s.created), 2))
    complaint = u[:, 0] < p_complaint
    inquiry = ~complaint & (u[:, 1] < INQUIRY_BASE + INQUIRY_LATE * late)
    request = ~complaint & ~inquiry & (u[:, 1] > 1 - REQUEST_BASE)
    ship = np.nonzero(complaint | inquiry | request)[0]
    n = len(ship)
    lost, damaged, was_late = s.lost[ship], s.damaged[ship], late[ship]
    v = rng.random((n, 8))

    kind = np.where(inquiry[ship], INQUIRY, np.where(request[ship], SERVICE_REQUEST, COMPLAINT))
    kind = np.where((kind == COMPLAINT) & (lost | damaged) & (v[:, 0] < 0.4), CLAIM, kind)
    category = np.where(
        lost,
        np.where(v[:, 1] < 0.8, "loss.whole", "loss.partial"),
        np.where(
            damaged,
            np.where(v[:, 1] < 0.6, "damage.contents", "damage.package"),
            np.where(was_late, _pick(LATE_CATEGORIES, v[:, 1]), _pick(OTHER_COMPLAINTS, v[:, 1])),
        ),
    ).astype(object)
    category = np.where(
        kind == INQUIRY,
        np.where(was_late, "delay.transit", _pick(INQUIRY_CATEGORIES, v[:, 1])),
        np.where(kind == SERVICE_REQUEST, _pick(REQUEST_CATEGORIES, v[:, 1]), category),
    ).astype(object)

    # When the customer came: a while after the shipment went wrong.
    hours = v[:, 2]
    created = np.where(
        lost,
        s.created[ship] + ((3 + 7 * hours) * DAY_US).astype("timedelta64[us]"),
        np.where(
            damaged,
            s.delivered[ship] + ((0.5 + 35.5 * hours) * 3600 * US).astype("timedelta64[us]"),
            np.where(
                was_late,
                s.promised[ship] + ((2 + 46 * hours) * 3600 * US).astype("timedelta64[us]"),
                s.created[ship] + ((0.2 + 5.8 * hours) * DAY_US).astype("timedelta64[us]"),
            ),
        ),
    )
    channel = _choice(rng, CHANNEL_P, n)
    severity = np.where(
        lost,
        np.where(v[:, 3] < 0.4, CRITICAL, MAJOR),
        np.where(
            damaged,
            np.where(v[:, 3] < 0.1, CRITICAL, np.where(v[:, 3] < 0.65, MAJOR, MINOR)),
            np.where(
                kind == INQUIRY,
                np.where(v[:, 3] < 0.9, MINOR, MAJOR),
                np.searchsorted(np.cumsum(SEVERITY_P), v[:, 3], side="right").clip(0, 2),
            ),
        ),
    )
    priority, first_hours, resolve_hours, business = _service_levels(
        staff.policy, kind, severity, channel
    )
    regulator = channel == REGULATOR
    policy = staff.policy

    # Owner (routing: the least loaded of the team, as good as random here) and the
    # calendar the ticket's clock runs on. Drawn whatever the staff, so the same seed plants
    # the same churn with or without agents in the database.
    pick = rng.integers(0, 1 << 30, n)
    agents = np.array(staff.agents or [-1], dtype=np.int64)
    owner = agents[pick % len(agents)]
    team = np.array([staff.team_of.get(int(a), -1) for a in agents], dtype=np.int64)[
        pick % len(agents)
    ]
    # A ticket without a team runs on the desk's calendar (""), as ``SlaContext`` does.
    key_of = {int(t): staff.hours_of_team.get(int(t), DEMO_HOURS) for t in np.unique(team)}
    key_of[-1] = "" if staff.agents else DEMO_HOURS
    calendar_key = np.array([key_of[int(t)] for t in team.tolist()], dtype=object)

    # Working-time durations of each step.
    fr_gap = _exp_us(rng, FIRST_RESPONSE_MINUTES, n)
    fr_gap = np.where(rng.random(n) < FORGOTTEN_SHARE, fr_gap * FORGOTTEN_FACTOR, fr_gap)
    resolve_mean = resolve_hours * 60 * RESOLVE_SHARE
    resolve_gap = _exp_us(rng, resolve_mean, n)
    resolve_gap = np.where(rng.random(n) < HARD_SHARE, resolve_gap * HARD_FACTOR, resolve_gap)
    has_wait = rng.random(n) < WAIT_SHARE
    wait_gap = _exp_us(rng, 120.0, n)
    customer_reply = _exp_us(rng, 20 * 60.0, n)  # wall-clock: the customer answers
    resolve2_gap = _exp_us(rng, resolve_mean * 0.4, n)
    close_gap = _exp_us(rng, 180.0, n)
    answer_wall = _exp_us(rng, 8 * 60.0, n)
    stays_resolved = rng.random(n) < STAY_RESOLVED_SHARE
    answers = rng.random(n) < ANSWER_SHARE
    u_unsat, u_score = rng.random(n), rng.random(n)

    m: dict[str, np.ndarray] = {k: np.full(n, NAT) for k, _a, _s in STEPS}
    m["created"] = created
    m["assigned"] = created
    breach_fr = np.full(n, NAT)
    breach_res = np.full(n, NAT)
    unsatisfied = np.zeros(n, dtype=bool)
    groups: list[tuple[np.ndarray, WorkClock]] = [(np.nonzero(~business)[0], clocks.plain)]
    for key in sorted(set(key_of.values())):
        groups.append((np.nonzero(business & (calendar_key == key))[0], clocks.of(key)))
    for rows, clock in groups:
        if not len(rows):
            continue
        _timeline(
            clock, rows, m, has_wait, fr_gap, wait_gap, customer_reply, resolve_gap,
            resolve2_gap, close_gap, answer_wall, stays_resolved, answers, u_unsat,
            first_hours, resolve_hours, now, breach_fr, breach_res, unsatisfied,
        )  # fmt: skip

    breached = ~np.isnat(breach_fr) | ~np.isnat(breach_res)
    score = np.where(
        unsatisfied,
        np.where(u_score < np.where(breached, 0.6, 0.4), 1, 2),
        np.where(
            breached,
            np.where(u_score < 0.45, 3, np.where(u_score < 0.8, 4, 5)),
            np.where(u_score < 0.12, 3, np.where(u_score < 0.45, 4, 5)),
        ),
    )
    # On the survey's 1-10 CSAT scale: each 1-5 level splits into two scores (the low or
    # high one by a digit of the same draw, so the random stream is unchanged); an
    # unsatisfied answer is 1-4, a satisfied one 5-10.
    score = 2 * score - (np.floor(u_score * 1e6) % 2).astype(score.dtype)
    answered = np.where(unsatisfied, m["unsatisfied"] <= now, m["answer"] <= now)
    score = np.where(answered, score, 0)

    # A complaint about the same customer within the repeat window is a repeat.
    order = np.lexsort((created, s.owner[ship]))
    is_repeat = np.zeros(n, dtype=bool)
    cust_sorted = s.owner[ship][order]
    gap = created[order][1:] - created[order][:-1]
    same = (cust_sorted[1:] == cust_sorted[:-1]) & (gap <= np.timedelta64(policy.repeat_days, "D"))
    complaintish = np.isin(kind[order], [COMPLAINT, CLAIM])
    is_repeat[order[1:]] = same & complaintish[1:] & complaintish[:-1]

    tickets = _Tickets(
        ship=ship,
        cust=s.owner[ship],
        type=kind,
        category=category,
        channel=channel,
        severity=severity,
        priority=priority,
        owner=owner,
        team=team,
        is_major=(severity == CRITICAL) | regulator,
        is_repeat=is_repeat,
        moments=m,
        score=score,
        # Written once the ticket is resolved: damage and loss were compensated.
        resolution=np.where(
            lost | damaged, RESOLUTIONS.index("compensated"), pick % len(RESOLUTIONS)
        ),
        root_cause=(pick >> 7) % len(ROOT_CAUSES),
        breach_fr=breach_fr,
        breach_res=breach_res,
        claim=_claims(rng, s, ship, kind, lost, damaged, m["start"], category, owner, staff, now),
    )
    # Steps still to come are not history yet; a ticket not opened yet is not one.
    for key in m:
        m[key] = np.where(m[key] <= now, m[key], NAT)
    return tickets.take(~np.isnat(created) & (created <= now - np.timedelta64(5, "m")))


def _service_levels(
    policy: DeskPolicy, kind: np.ndarray, severity: np.ndarray, channel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each ticket's priority (the desk's matrix) and its targets: first-response and
    resolution hours, and whether they count working hours (regulator referrals count
    calendar hours against their legal deadlines)."""
    levels = [p.value for p in Priority]
    matrix = np.array(
        [
            [
                [
                    levels.index(
                        policy.priority(TicketType(t), Severity(v), TicketChannel(c)).value
                    )
                    for c in CHANNELS
                ]
                for v in SEVERITIES
            ]
            for t in TYPES
        ]
    )
    level = matrix[kind, severity, channel]
    first = np.empty((len(TYPES), len(levels)))
    resolve = np.empty((len(TYPES), len(levels)))
    counts_work = np.empty((len(TYPES), len(levels)), dtype=bool)
    for t, type_ in enumerate(TYPES):
        for p, value in enumerate(levels):
            rule = policy.policy_for(type_, value)
            first[t, p], resolve[t, p] = rule.first_response_hours, rule.resolution_hours
            counts_work[t, p] = rule.business_hours
    regulator = channel == REGULATOR
    first_hours = np.where(regulator, policy.regulator.first_response_hours, first[kind, level])
    resolve_hours = np.where(regulator, policy.regulator.resolution_hours, resolve[kind, level])
    business = counts_work[kind, level] & ~regulator
    priority: np.ndarray = np.array(levels, dtype=object)[level]
    return priority, first_hours, resolve_hours, business


def _timeline(
    clock: WorkClock,
    rows: np.ndarray,
    m: dict[str, np.ndarray],
    has_wait: np.ndarray,
    fr_gap: np.ndarray,
    wait_gap: np.ndarray,
    customer_reply: np.ndarray,
    resolve_gap: np.ndarray,
    resolve2_gap: np.ndarray,
    close_gap: np.ndarray,
    answer_wall: np.ndarray,
    stays_resolved: np.ndarray,
    answers: np.ndarray,
    u_unsat: np.ndarray,
    first_hours: np.ndarray,
    resolve_hours: np.ndarray,
    now: np.datetime64,
    breach_fr: np.ndarray,
    breach_res: np.ndarray,
    unsatisfied: np.ndarray,
) -> None:
    """The moments of ``rows``' steps on ``clock``, and the service levels they met or
    missed (judged as ``tickets.sla.sla`` judges them; the sweep records a breach within a
    minute of the due moment)."""
    r = rows
    created = m["created"][r]
    start = clock.add(created, fr_gap[r])
    wait = np.where(has_wait[r], clock.add(start, wait_gap[r]), NAT)
    resume = np.where(
        has_wait[r],
        clock.add(
            np.where(has_wait[r], wait, start) + customer_reply[r].astype("timedelta64[us]"),
            np.full(len(r), 60 * US),
        ),
        NAT,
    )
    work_from = np.where(has_wait[r], resume, start)
    resolve = clock.add(work_from, resolve_gap[r])

    # First response: no pause before it, so the due moment is the target after opening.
    fr_goal = (first_hours[r] * 3600 * US).astype(np.int64)
    fr_due = clock.add(created, fr_goal)
    sweep = np.timedelta64(60, "s")
    fr_missed = (fr_due < np.minimum(start, now)) & (fr_due + sweep <= now)
    breach_fr[r] = np.where(fr_missed, fr_due, NAT)

    # Resolution: counted while in progress (not while waiting, nor between a resolution
    # and a reopening). Judged first as of the first resolution: a breached case leaves the
    # customer unhappy more often.
    goal = (resolve_hours[r] * 3600 * US).astype(np.int64)
    first_end = np.where(has_wait[r], wait, resolve)
    seg1 = _worked(clock, created, first_end, now)
    seg2 = np.where(has_wait[r], _worked(clock, resume, resolve, now), 0)
    breached_at_first = (seg1 + seg2 > goal) | fr_missed
    unsat = (resolve <= now) & (
        u_unsat[r] < np.where(breached_at_first, UNSATISFIED_BREACHED, UNSATISFIED_BASE)
    )
    reopen = np.where(unsat, resolve + customer_reply[r].astype("timedelta64[us]") // 3, NAT)
    resolve2 = np.where(unsat, clock.add(np.where(unsat, reopen, resolve), resolve2_gap[r]), NAT)
    seg3 = np.where(unsat, _worked(clock, reopen, resolve2, now), 0)
    res_due = np.where(
        seg1 >= goal,
        clock.add(created, np.maximum(goal, 1)),
        np.where(
            seg1 + seg2 >= goal,
            clock.add(np.where(has_wait[r], resume, created), np.maximum(goal - seg1, 1)),
            clock.add(np.where(unsat, reopen, created), np.maximum(goal - seg1 - seg2, 1)),
        ),
    )
    res_missed = (seg1 + seg2 + seg3 > goal) & (res_due + sweep <= now)
    breach_res[r] = np.where(res_missed, res_due, NAT)

    final = np.where(unsat, resolve2, resolve)
    close = np.where(stays_resolved[r], NAT, clock.add(final, close_gap[r]))
    answer = np.where(
        answers[r] & ~unsat & ~np.isnat(close),
        close + answer_wall[r].astype("timedelta64[us]"),
        NAT,
    )
    m["start"][r], m["wait"][r], m["resume"][r], m["resolve"][r] = start, wait, resume, resolve
    m["unsatisfied"][r], m["resolve2"][r] = reopen, resolve2
    m["close"][r], m["answer"][r] = close, answer
    unsatisfied[r] = unsat


def _worked(clock: WorkClock, start: np.ndarray, end: np.ndarray, now: np.datetime64) -> np.ndarray:
    """Working microseconds from ``start`` to ``end`` (capped at now; 0 when not begun)."""
    valid = ~np.isnat(start) & ~np.isnat(end) & (start < now)
    a = np.where(valid, start, now)
    b = np.where(valid, np.minimum(end, now), now)
    out: np.ndarray = np.where(valid, np.maximum(clock.worked(b) - clock.worked(a), 0), 0)
    return out


def _claims(
    rng: np.random.Generator,
    s: ShipmentDraft,
    ship: np.ndarray,
    kind: np.ndarray,
    lost: np.ndarray,
    damaged: np.ndarray,
    start: np.ndarray,
    category: np.ndarray,
    owner: np.ndarray,
    staff: Staff,
    now: np.datetime64,
    rules: ClaimRules = RULES,
) -> dict[str, np.ndarray]:
    """A compensation claim for damaged and lost shipments' tickets, filed by the owner
    after the first response, judged by the published standard (``tickets.claims``)."""
    n = len(ship)
    u = rng.random((n, 6))
    filed_at = start + _exp_us(rng, 30.0, n).astype("timedelta64[us]")
    wants = (
        (lost | damaged)
        & np.isin(kind, [COMPLAINT, CLAIM])
        & ((kind == CLAIM) | (u[:, 0] < CLAIM_FILED))
    )
    filed = wants & ~np.isnat(start) & (filed_at <= now)
    declared = s.insured[ship]
    fee = s.fee[ship]
    insured = declared > 0
    loss_guess = np.maximum(np.exp(rng.normal(np.log(25_000), 0.9, n)).round(-2), 1_000)
    requested = np.where(
        insured, np.maximum((declared * (0.5 + 0.5 * u[:, 1])).round(-2), 100), loss_guess
    ).astype(np.int64)
    ceiling = np.array([rules.uninsured_ceiling(int(f)) for f in fee.tolist()], dtype=np.int64)
    standard = np.where(insured, np.minimum(requested, declared), np.minimum(requested, ceiling))
    rejected = u[:, 2] < CLAIM_REJECTED
    slow = u[:, 3] < CLAIM_SLOW
    delay_days = np.where(slow, 8 + 27 * u[:, 4], 0.1 + rng.exponential(2.0, n))
    decided = filed_at + (delay_days * DAY_US).astype("timedelta64[us]")
    decided_known = filed & (decided <= now)
    approved_fen = np.where(u[:, 5] < 0.9, standard, (standard * 0.8).round()).astype(np.int64)
    approved_fen = np.maximum(approved_fen, 1)
    paid = decided + _exp_us(rng, 1.5 * 24 * 60, n).astype("timedelta64[us]")
    paid_known = decided_known & ~rejected & (paid <= now)
    status = np.where(
        ~decided_known,
        "submitted",
        np.where(rejected, "rejected", np.where(paid_known, "paid", "approved")),
    ).astype(object)
    # Who decides: the owner within an agent's limit, else a manager, else an admin.
    manager = staff.managers[0] if staff.managers else -1
    admin = staff.admins[0] if staff.admins else -1
    decider = np.where(
        rejected,
        manager,
        np.where(
            approved_fen <= _cap(rules, "agent"),
            owner,
            np.where(approved_fen <= _cap(rules, "manager"), manager, admin),
        ),
    )
    # The moment the claim hurt the relationship: a week without a decision, or the
    # rejection, whichever came first.
    week = filed_at + np.timedelta64(CLAIM_SLOW_DAYS, "D")
    slow_hurt = np.where(filed & (~decided_known | (decided > week)) & (week <= now), week, NAT)
    reject_hurt = np.where(filed & decided_known & rejected, decided, NAT)
    hurt = np.where(np.isnat(slow_hurt), reject_hurt, slow_hurt)
    return {
        "filed": filed,
        "created": np.where(filed, filed_at, NAT),
        "reason": np.where(
            category == "loss.partial", "shortage", np.where(lost, "loss", "damage")
        ).astype(object),
        "insured": insured,
        "declared": declared,
        "fee": fee,
        "requested": requested,
        "standard": standard,
        "approved": np.where(decided_known & ~rejected, approved_fen, -1),
        "status": status,
        "decided": np.where(decided_known, decided, NAT),
        "decider": np.where(decided_known, decider, -1),
        "paid": np.where(paid_known, paid, NAT),
        "hurt": hurt,
    }


def _cap(rules: ClaimRules, role: str) -> int:
    """The most a role may approve, in fen (-1: may not approve)."""
    limit = rules.limit_for(role)
    if limit is False:
        return -1
    return 1 << 62 if limit is None else int(limit)


# ------------------------------------------------------------------------ the churn


def _days(moments: np.ndarray, epoch: np.datetime64) -> np.ndarray:
    """Moments as fractional days since ``epoch`` (NaT: +inf)."""
    out = (moments - epoch).astype("timedelta64[us]").astype(np.int64) / DAY_US
    return np.where(np.isnat(moments), np.inf, out)


def _leave_active(
    start: np.ndarray,
    base: np.ndarray,
    ev_cust: np.ndarray,
    ev_day: np.ndarray,
    ev_factor: np.ndarray,
    end: float,
    exposure: np.ndarray,
) -> np.ndarray:
    """When each customer leaves the active state (days; inf: not before ``end``).

    The hazard is ``base`` times the product of the factors of the events so far (capped
    at :data:`MAX_FACTOR`): piecewise constant between events. A customer leaves when the
    hazard accumulated since ``start`` reaches their ``exposure`` (a unit exponential draw).
    """
    n = len(start)
    late = (ev_day > start[ev_cust]) & (ev_day < end)
    cust = np.concatenate([np.arange(n), ev_cust[late]])
    day = np.concatenate([start, ev_day[late]])
    log_f = np.concatenate([np.zeros(n), np.log(ev_factor[late])])
    order = np.lexsort((day, cust))
    cust, day, log_f = cust[order], day[order], log_f[order]
    first = np.searchsorted(cust, np.arange(n))  # every customer has its start row
    acc = np.cumsum(log_f)
    log_mult = acc - (acc[first] - log_f[first])[cust]
    rate = base[cust] * np.minimum(np.exp(log_mult), MAX_FACTOR)
    last = np.append(cust[1:] != cust[:-1], True)
    following = np.where(last, end, np.append(day[1:], end))
    hazard = rate * np.maximum(following - day, 0.0)
    total = np.cumsum(hazard)
    before = (total[first] - hazard[first])[cust]
    at_end = total - before
    at_start = at_end - hazard
    hit = np.nonzero(at_end >= exposure[cust])[0]
    leave = np.full(n, np.inf)
    if len(hit):
        _, firsts = np.unique(cust[hit], return_index=True)
        rows = hit[firsts]
        who = cust[rows]
        leave[who] = day[rows] + (exposure[who] - at_start[rows]) / rate[rows]
    return leave


@dataclass
class ChurnTruth:
    """The planted churn of generated customers: what each one's latent state was, so
    the generating process's own prediction can be computed at any cut-off.

    Days are fractional days since ``epoch`` (UTC); inf where something never happened.
    """

    epoch: np.datetime64
    day_weight: np.ndarray  # relative shipping volume per day since epoch (mean 1)
    ids: np.ndarray
    kinds: np.ndarray
    rate: np.ndarray  # shipments per day at weight 1 while active
    active_from: np.ndarray
    left: np.ndarray  # left the active state
    disengaged: np.ndarray  # ... to disengaging (else straight to churned)
    churned: np.ndarray
    event_customer: np.ndarray  # position in ``ids``
    event_day: np.ndarray
    event_factor: np.ndarray

    @classmethod
    def empty(cls, epoch: np.datetime64, day_weight: np.ndarray) -> ChurnTruth:
        """No customers yet."""
        f, i = np.empty(0), np.empty(0, dtype=np.int64)
        return cls(epoch, day_weight, i, i, f, f, f, np.empty(0, dtype=bool), f, i, f, f)

    def extend(self, other: ChurnTruth) -> None:
        """Append another chunk's customers."""
        offset = len(self.ids)
        for name in ("ids", "kinds", "rate", "active_from", "left", "disengaged", "churned"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        self.event_customer = np.concatenate([self.event_customer, other.event_customer + offset])
        self.event_day = np.concatenate([self.event_day, other.event_day])
        self.event_factor = np.concatenate([self.event_factor, other.event_factor])

    def churn_moments(self) -> dict[int, datetime | None]:
        """Each customer's churn moment (aware UTC), None if still a customer at the end."""
        out: dict[int, datetime | None] = {}
        for cid, day in zip(self.ids.tolist(), self.churned.tolist(), strict=True):
            if np.isfinite(day):
                moment = self.epoch + np.timedelta64(int(round(day * DAY_US)), "us")
                out[cid] = moment.astype(datetime).replace(tzinfo=UTC)
            else:
                out[cid] = None
        return out

    def save(self, path: Path) -> None:
        """Keep the truth beside a generated database (``.npz``)."""
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in vars(self).items()}
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> ChurnTruth:
        """The truth saved by :meth:`save`."""
        with np.load(path) as data:
            return cls(**{k: data[k] for k in data.files})


def plant_churn(
    rng: np.random.Generator,
    customers: CustomerDraft,
    events: tuple[np.ndarray, np.ndarray, np.ndarray],
    epoch: np.datetime64,
    now: np.datetime64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left active, went disengaging, churned) per customer, in days since ``epoch``.

    ``events`` are (customer position, moment, factor) of what went wrong.
    """
    n = len(customers.ids)
    kinds = customers.kinds
    start = _days(customers.active_from, epoch)
    end = float(_days(np.array([now]), epoch)[0])
    base = HAZARD_CHURN[kinds] + HAZARD_DISENGAGE[kinds]
    ev_cust, ev_at, ev_factor = events
    left = _leave_active(
        start, base, ev_cust, _days(ev_at, epoch), ev_factor, end, rng.exponential(1.0, n)
    )
    disengaged = rng.random(n) < HAZARD_DISENGAGE[kinds] / base
    churned = np.where(disengaged, left + rng.exponential(DISENGAGED_DAYS, n), left)
    return left, disengaged, churned


def planted_churn_probability(
    truth: ChurnTruth, cutoff: datetime, horizon_days: int = 90
) -> dict[int, float]:
    """The generating process's own probability that each customer ships nothing in
    ``[cutoff, cutoff + horizon_days)``, knowing its latent state at the cut-off (active
    with its hazard, disengaging, or gone) and its shipping rhythm: the best any model of
    the observable data could do, give or take the complaints still to come (ignored).

    Customers not yet able to ship at the cut-off are left out.
    """
    c = float(_days(np.array([_utc64(cutoff)]), truth.epoch)[0])
    present = truth.active_from <= c
    idx = np.nonzero(present)[0]
    kinds = truth.kinds[idx]
    rate = truth.rate[idx]
    before = truth.event_day <= c
    log_mult = np.bincount(
        truth.event_customer[before],
        weights=np.log(truth.event_factor[before]),
        minlength=len(truth.ids),
    )[idx]
    mult = np.minimum(np.exp(log_mult), MAX_FACTOR)
    active = (truth.left[idx] > c).astype(float)
    gone = (truth.churned[idx] <= c).astype(float)
    disengaged = 1.0 - active - gone
    leave = (HAZARD_CHURN[kinds] + HAZARD_DISENGAGE[kinds]) * mult
    stay = np.exp(-leave)
    to_disengaged = (
        (1 - stay) * HAZARD_DISENGAGE[kinds] / (HAZARD_CHURN[kinds] + HAZARD_DISENGAGE[kinds])
    )
    to_gone = (1 - stay) - to_disengaged
    keep_d = np.exp(-1.0 / DISENGAGED_DAYS)
    weights = truth.day_weight
    for j in range(horizon_days):
        day = int(np.floor(c + j + 0.5))
        w = float(weights[day]) if 0 <= day < len(weights) else 1.0
        quiet_a = np.exp(-rate * w)
        quiet_d = np.exp(-rate * w * DISENGAGED_SHARE)
        active, disengaged, gone = (
            active * quiet_a * stay,
            disengaged * quiet_d * keep_d + active * quiet_a * to_disengaged,
            gone + disengaged * quiet_d * (1 - keep_d) + active * quiet_a * to_gone,
        )
    p = active + disengaged + gone
    return dict(zip(truth.ids[idx].tolist(), p.tolist(), strict=True))


def _utc64(moment: datetime) -> np.datetime64:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "us")


# ------------------------------------------------------------------------ the history

WAYBILL_BASE = 7 * 10**11


def waybill_no(shipment_id: int) -> str:
    """The demo's waybill number of a shipment id."""
    return f"GX{WAYBILL_BASE + shipment_id:012d}"


@dataclass
class _Chunk:
    """A planned chunk waiting for its shipment ids."""

    tickets: _Tickets
    keep: np.ndarray
    customer_ids: np.ndarray
    region: np.ndarray


@dataclass(frozen=True)
class HistorySummary:
    """What :meth:`History.write` inserted."""

    tickets: int
    open_tickets: int
    events: int
    breaches: int
    claims: int
    seconds: float


class History:
    """The service history and planted churn of one ``generate`` run.

    ``generate`` calls :meth:`begin`, then per chunk :meth:`plan` (which drafted shipments
    survive the churn) and :meth:`accept` (their ids); :meth:`write` inserts the tickets
    afterwards (so ``guanxi demo`` can seed its hand-made desk tickets first). With
    ``tickets=False`` only the churn is planted (nothing is kept for writing); with
    ``truth=True`` the latent churn state is kept in :attr:`truth`.
    """

    def __init__(
        self,
        staff: Staff | None = None,
        *,
        tickets: bool = True,
        truth: bool = False,
        timezone: str | None = None,
    ) -> None:
        self.staff = staff or Staff()
        self.keep_tickets = tickets
        self.keep_truth = truth
        self.timezone = timezone
        self.truth: ChurnTruth | None = None
        self._pending: list[_Tickets] = []
        self._current: _Chunk | None = None
        self._seed = 0

    def begin(self, *, seed: int, now: datetime, start_day: date, day_weights: np.ndarray) -> None:
        """Called once by ``generate`` before the first chunk."""
        from guanxi.config import get_settings

        self._seed = seed
        self.now = _utc64(now)
        self.epoch = np.datetime64(start_day, "us")
        tz = self.timezone or get_settings().timezone
        self.clocks = _Clocks(tz, start_day - timedelta(days=2), now.date() + timedelta(days=400))
        if self.keep_truth:
            self.truth = ChurnTruth.empty(self.epoch, day_weights * len(day_weights))

    def plan(self, index: int, customers: CustomerDraft, shipments: ShipmentDraft) -> np.ndarray:
        """Draft the chunk's tickets from its shipments, plant the churn; returns which
        drafted shipments survive (a mask)."""
        rng = np.random.default_rng([self._seed, index, 7])
        tickets = draft_tickets(rng, shipments, self.now, self.staff, self.clocks)
        events = _hazard_events(tickets)
        churn_rng = np.random.default_rng([self._seed, index, 8])
        left, disengaged, churned = plant_churn(churn_rng, customers, events, self.epoch, self.now)
        at = _days(shipments.created, self.epoch)
        owner = shipments.owner
        thinned = churn_rng.random(len(at)) < DISENGAGED_SHARE
        keep: np.ndarray = (at < left[owner]) | (
            disengaged[owner] & (at < churned[owner]) & thinned
        )
        opened = _days(tickets.moments["created"], self.epoch)
        kept = keep[tickets.ship] & (opened < churned[tickets.cust])
        if self.truth is not None:
            ev_cust, ev_at, ev_factor = events
            self.truth.extend(
                ChurnTruth(
                    self.epoch,
                    self.truth.day_weight,
                    customers.ids,
                    customers.kinds,
                    customers.rate,
                    _days(customers.active_from, self.epoch),
                    left,
                    disengaged,
                    churned,
                    ev_cust,
                    _days(ev_at, self.epoch),
                    ev_factor,
                )
            )
        self._current = _Chunk(tickets.take(kept), keep, customers.ids, shipments.region)
        return keep

    def accept(self, shipment_ids: np.ndarray) -> None:
        """The ids given to the surviving shipments of the last planned chunk, in order."""
        chunk = self._current
        if chunk is None:
            raise RuntimeError("accept without plan")
        self._current = None
        if not self.keep_tickets:
            return
        ids = np.full(len(chunk.keep), -1, dtype=np.int64)
        ids[chunk.keep] = shipment_ids
        t = chunk.tickets
        t.refs["shipment_id"] = ids[t.ship]
        t.refs["customer_id"] = chunk.customer_ids[t.cust]
        t.refs["region"] = chunk.region[t.ship]
        self._pending.append(t)

    @property
    def planned(self) -> int:
        """Tickets waiting to be written."""
        return sum(len(t) for t in self._pending)

    def write(self, engine: Engine, progress: Progress | None = None) -> HistorySummary:
        """Insert the planned tickets, their timelines, SLA breaches and claims (ids in
        order of arrival, after any tickets already there); fill the SLA columns of the
        open ones as every ticket change does."""
        started = timer.perf_counter()
        if not self._pending:
            return HistorySummary(0, 0, 0, 0, 0, 0.0)
        t = _concat(self._pending)
        self._pending = []
        counts = _write(engine, t, self._seed, self.now, progress)
        first_id = counts.pop("first_id")
        if counts["open"]:
            moment = self.now.astype(datetime).replace(tzinfo=UTC)
            materialise_sla(engine, now=moment, first_id=first_id, progress=None)
        return HistorySummary(
            tickets=counts["tickets"],
            open_tickets=counts["open"],
            events=counts["events"],
            breaches=counts["breaches"],
            claims=counts["claims"],
            seconds=timer.perf_counter() - started,
        )


def _hazard_events(t: _Tickets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer position, moment, factor) of what raised each customer's hazard: a
    complaint, a missed service level on it, a claim that went badly."""
    complaint = np.isin(t.type, [COMPLAINT, CLAIM])
    breach = np.where(
        np.isnat(t.breach_fr),
        t.breach_res,
        np.where(np.isnat(t.breach_res), t.breach_fr, np.minimum(t.breach_fr, t.breach_res)),
    )
    breach_rows = complaint & ~np.isnat(breach)
    hurt = ~np.isnat(t.claim["hurt"])
    cust = np.concatenate([t.cust[complaint], t.cust[breach_rows], t.cust[hurt]])
    at = np.concatenate(
        [t.moments["created"][complaint], breach[breach_rows], t.claim["hurt"][hurt]]
    )
    factor = np.concatenate(
        [
            np.full(int(complaint.sum()), COMPLAINT_FACTOR),
            np.full(int(breach_rows.sum()), BREACH_FACTOR),
            np.full(int(hurt.sum()), CLAIM_FACTOR),
        ]
    )
    return cust, at, factor


def _concat(parts: list[_Tickets]) -> _Tickets:
    first = parts[0]
    values: dict[str, Any] = {}
    for name, value in vars(first).items():
        if isinstance(value, dict):
            values[name] = {k: np.concatenate([getattr(p, name)[k] for p in parts]) for k in value}
        else:
            values[name] = np.concatenate([getattr(p, name) for p in parts])
    return _Tickets(**values)


# What each step of the timeline says (note, customer-visible) and who does it.
_STEP_TEXT: dict[str, tuple[str | None, bool]] = {
    "created": (None, True),
    "assigned": (None, True),
    "start": ("您好，已收到您的反馈，正在为您核实处理。", False),
    "wait": ("请提供快件外包装及内件照片，以便我们核实。", False),
    "resume": (None, True),
    "resolve": ("已处理完毕并回复客户。", False),
    "unsatisfied": ("问题还是没有解决。", True),
    "resolve2": ("已重新处理并再次回复客户。", False),
    "close": (None, True),
    "answer": (None, True),
}
# Steps the customer takes (no staff actor).
_CUSTOMER_STEPS = {"unsatisfied", "answer"}
_FROM_STATUS = {
    "created": None,
    "assigned": "new",
    "start": "assigned",
    "wait": "in_progress",
    "resume": "waiting_customer",
    "resolve": "in_progress",
    "unsatisfied": "resolved",
    "resolve2": "in_progress",
    "close": "resolved",
    "answer": "closed",
}
WRITE_BATCH = 50_000


def _times(values: np.ndarray, dialect: str) -> list[Any]:
    """datetime64[us] (UTC, NaT allowed) as the driver stores UTCDateTime (None for NaT)."""
    from guanxi.demo.generator import _fmt_times

    missing = np.isnat(values)
    filled = np.where(missing, np.datetime64("2000-01-01", "us"), values)
    out = _fmt_times(filled, dialect)
    if missing.any():
        for i in np.nonzero(missing)[0].tolist():
            out[i] = None
    return out


def _optional(values: np.ndarray, missing: int = -1) -> list[Any]:
    return [None if v == missing else v for v in values.tolist()]


def _write(
    engine: Engine, t: _Tickets, seed: int, now: np.datetime64, progress: Progress | None
) -> dict[str, int]:
    from guanxi.demo.generator import _Writer
    from guanxi.demo.texts import complaint_texts

    order = np.argsort(t.moments["created"], kind="stable")
    t = t.take(order)
    n = len(t)
    with engine.connect() as conn:
        first_id = int(conn.scalar(text("SELECT MAX(id) FROM ticket")) or 0) + 1
    ids = first_id + np.arange(n, dtype=np.int64)
    texts = complaint_texts(t.category.tolist(), np.random.default_rng([seed, 2_000_003]))

    # Where each ticket stands: the status of its last step so far.
    status = np.full(n, NEW)
    last_at = t.moments["created"].copy()
    steps = np.zeros(n, dtype=np.int64)
    for key, _action, to in STEPS:
        present = ~np.isnat(t.moments[key])
        status = np.where(present, to, status)
        last_at = np.where(present, t.moments[key], last_at)
        steps += present
    reopened = ~np.isnat(t.moments["unsatisfied"])
    resolved_at = np.where(reopened, t.moments["resolve2"], t.moments["resolve"])
    resolved_at = np.where(np.isin(status, [RESOLVED, CLOSED]), resolved_at, NAT)

    writer = _Writer(engine)
    d = writer.dialect
    totals = {"tickets": 0, "open": 0, "events": 0, "breaches": 0, "claims": 0}
    try:
        for lo in range(0, n, WRITE_BATCH):
            hi = min(n, lo + WRITE_BATCH)
            part = slice(lo, hi)
            tid = ids[part]
            owner = _optional(t.owner[part])
            team = _optional(t.team[part])
            score = _optional(t.score[part], 0)
            st = status[part]
            created = _times(t.moments["created"][part], d)
            updated = _times(last_at[part], d)
            first_response = _times(t.moments["start"][part], d)
            resolved = _times(resolved_at[part], d)
            closed = _times(t.moments["close"][part], d)
            done = ~np.isnat(resolved_at[part])
            resolution = [
                RESOLUTIONS[r] if d else None
                for r, d in zip(t.resolution[part].tolist(), done.tolist(), strict=True)
            ]
            root = [
                ROOT_CAUSES[r] if d else None
                for r, d in zip(t.root_cause[part].tolist(), done.tolist(), strict=True)
            ]
            waybills = [waybill_no(s) for s in t.refs["shipment_id"][part].tolist()]
            rows = list(
                zip(
                    tid.tolist(),
                    np.array(TYPES, dtype=object)[t.type[part]].tolist(),
                    np.array(CHANNELS, dtype=object)[t.channel[part]].tolist(),
                    t.refs["customer_id"][part].tolist(),
                    waybills,
                    t.category[part].tolist(),
                    [r[:12] if r else None for r in t.refs["region"][part].tolist()],
                    team,
                    np.array(SEVERITIES, dtype=object)[t.severity[part]].tolist(),
                    t.priority[part].tolist(),
                    [s for s, _ in texts[lo:hi]],
                    [b for _, b in texts[lo:hi]],
                    np.array(STATUSES, dtype=object)[st].tolist(),
                    owner,
                    owner,
                    owner,
                    created,
                    updated,
                    first_response,
                    resolved,
                    closed,
                    reopened[part].astype(int).tolist(),
                    t.is_repeat[part].tolist(),
                    t.is_major[part].tolist(),
                    resolution,
                    root,
                    score,
                    steps[part].tolist(),
                    strict=True,
                )
            )
            writer.rows("ticket", TICKET_COLUMNS, rows)
            totals["tickets"] += len(rows)
            totals["open"] += int((~np.isin(st, [RESOLVED, CLOSED])).sum())
            totals["events"] += _write_events(writer, t, part, tid, owner, d)
            totals["breaches"] += _write_breaches(writer, t, part, tid, d)
            totals["claims"] += _write_claims(writer, t, part, tid, owner, d)
            writer.commit()
            if progress:
                progress("service history", hi, n)
    finally:
        writer.close()
    return totals | {"first_id": first_id}


def _write_events(
    writer: Any, t: _Tickets, part: slice, tid: np.ndarray, owner: list[Any], d: str
) -> int:
    """The timeline rows, ticket by ticket in the order the steps happened."""
    columns: list[list[Any]] = [[] for _ in EVENT_COLUMNS]
    orders: list[np.ndarray] = []
    for position, (key, action, to) in enumerate(STEPS):
        at = t.moments[key][part]
        rows = np.nonzero(~np.isnat(at))[0]
        if not len(rows):
            continue
        note, internal = _STEP_TEXT[key]
        actors = [None] * len(rows) if key in _CUSTOMER_STEPS else [owner[i] for i in rows.tolist()]
        columns[0].extend(tid[rows].tolist())
        columns[1].extend(_times(at[rows], d))
        columns[2].extend(actors)
        columns[3].extend([action] * len(rows))
        columns[4].extend([_FROM_STATUS[key]] * len(rows))
        columns[5].extend([STATUSES[to]] * len(rows))
        columns[6].extend(actors if key == "assigned" else [None] * len(rows))
        columns[7].extend([note] * len(rows))
        columns[8].extend([internal] * len(rows))
        orders.append(tid[rows] * 16 + position)
    if not orders:
        return 0
    order = np.argsort(np.concatenate(orders), kind="stable").tolist()
    rows_out = list(zip(*columns, strict=True))
    writer.rows("ticket_event", EVENT_COLUMNS, [rows_out[i] for i in order])
    return len(rows_out)


def _write_breaches(writer: Any, t: _Tickets, part: slice, tid: np.ndarray, d: str) -> int:
    """``sla_event`` breach rows, recorded by the minute sweep just after the due moment."""
    rows: list[tuple[Any, ...]] = []
    for target, due in (("first_response", t.breach_fr[part]), ("resolution", t.breach_res[part])):
        hit = np.nonzero(~np.isnat(due))[0]
        if not len(hit):
            continue
        # The sweep runs every minute: recorded 1-59 seconds after the due moment.
        recorded = due[hit] + ((tid[hit] * 7919) % 59 + 1).astype("timedelta64[s]")
        rows.extend(
            zip(
                tid[hit].tolist(),
                [target] * len(hit),
                ["breach"] * len(hit),
                _times(due[hit], d),
                _times(recorded, d),
                strict=True,
            )
        )
    writer.rows("sla_event", SLA_EVENT_COLUMNS, rows)
    return len(rows)


def _write_claims(
    writer: Any, t: _Tickets, part: slice, tid: np.ndarray, owner: list[Any], d: str
) -> int:
    c = {k: v[part] for k, v in t.claim.items()}
    hit = np.nonzero(c["filed"])[0]
    if not len(hit):
        return 0
    status = c["status"][hit]
    rows = list(
        zip(
            tid[hit].tolist(),
            t.refs["shipment_id"][part][hit].tolist(),
            t.refs["customer_id"][part][hit].tolist(),
            c["reason"][hit].tolist(),
            c["insured"][hit].tolist(),
            c["declared"][hit].tolist(),
            c["fee"][hit].tolist(),
            c["requested"][hit].tolist(),
            c["standard"][hit].tolist(),
            _optional(c["approved"][hit]),
            status.tolist(),
            ["客户提供了外包装和内件照片。"] * len(hit),
            ["不符合理赔条件：签收时外包装完好，未当场提出异议。" if s == "rejected" else None
             for s in status.tolist()],
            [f"WX{i:010d}" if s == "paid" else None
             for i, s in zip(tid[hit].tolist(), status.tolist(), strict=True)],
            [owner[i] for i in hit.tolist()],
            _times(c["created"][hit], d),
            _optional(c["decider"][hit]),
            _times(c["decided"][hit], d),
            _times(c["paid"][hit], d),
            [1 if s == "submitted" else (2 if s in ("approved", "rejected") else 3)
             for s in status.tolist()],
            strict=True,
        )
    )  # fmt: skip
    writer.rows("claim", CLAIM_COLUMNS, rows)
    return len(rows)


def materialise_sla(
    engine: Any,
    *,
    now: datetime | None = None,
    first_id: int = 0,
    progress: Callable[[str], None] | None = print,
    batch: int = 2000,
) -> float:
    """Fill ``sla_due_at`` / ``sla_check_at`` of the open tickets (from ``first_id`` on)
    with the product's own ``sla_moments`` (what every ticket change writes), over batched
    reads; done tickets keep NULL, as the product leaves them. Returns the seconds it
    took."""
    from sqlalchemy import bindparam, update

    from guanxi.core import clock
    from guanxi.core.db import make_sessionmaker, table_of
    from guanxi.tickets.models import Ticket, TicketEvent
    from guanxi.tickets.sla import recorded_moments, sla_context, sla_moments

    now = now or clock.now()
    table = table_of(Ticket)
    set_moments = (
        update(table)
        .where(table.c.id == bindparam("tid"))
        .values(sla_due_at=bindparam("due"), sla_check_at=bindparam("check"))
    )
    started = timer.perf_counter()
    done = ("resolved", "closed")
    count, last = 0, first_id - 1
    with make_sessionmaker(engine)() as session:
        ctx = sla_context(session)
        while True:
            rows = list(
                session.scalars(
                    select(Ticket)
                    .where(Ticket.id > last, Ticket.status.not_in(done))
                    .order_by(Ticket.id)
                    .limit(batch)
                )
            )
            if not rows:
                break
            last = rows[-1].id
            ids = [t.id for t in rows]
            events: dict[int, list[Any]] = {tid: [] for tid in ids}
            for event in session.execute(
                select(TicketEvent.ticket_id, TicketEvent.occurred_at, TicketEvent.to_status)
                .where(TicketEvent.ticket_id.in_(ids))
                .order_by(TicketEvent.id)
            ):
                events[event.ticket_id].append(event)
            recorded = recorded_moments(session, ids)
            values = []
            for t in rows:
                due, check = sla_moments(t, events[t.id], now, ctx, recorded[t.id])
                values.append({"tid": t.id, "due": due, "check": check})
            session.execute(set_moments, values)
            session.commit()
            session.expunge_all()
            count += len(rows)
    seconds = timer.perf_counter() - started
    if progress:
        progress(
            f"SLA columns of {count:,} open tickets: {seconds:.1f} s (tickets.sla.sla_moments)"
        )
    return seconds
