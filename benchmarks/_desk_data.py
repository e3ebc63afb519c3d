"""A service desk at scale for ``benchmarks/service_desk.py``: the demo's customers and
shipments (``guanxi.demo.generator``, encrypted and blind-indexed as the product writes
them), about 200 agents in teams with their supervisors, and tickets with timelines.

Tickets follow the workflow of ``guanxi.tickets.enums.TRANSITIONS``: every ticket's events
(create, take, hand-over, start, waits and resumes, resolve, reopen, close, satisfaction)
lead to its status, in time order, so the SLA clock derived from them
(``tickets.sla.clock_spans``) is the one the product would derive. About 10 % are open (new,
assigned, in progress, waiting), opened in the last days; the rest were resolved or closed
over the last year. Rows go in with ``sqlite3`` ``executemany``, one transaction per chunk
of tickets, ``synchronous=OFF`` for the load only.

The database is built once per size and kept under /tmp with a JSON sidecar naming what
it holds (the sidecar is written last, so a half-built file is never reused).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import bench_settings
from guanxi import domains
from guanxi.config import Settings
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.demo.history import (  # shared with the demo's service history
    CHANNEL_P,
    CHANNELS,
    CLOSED,
    CRITICAL,
    EVENT_COLUMNS,
    IN_PROGRESS,
    NEW,
    REGULATOR,
    RESOLUTIONS,
    RESOLVED,
    ROOT_CAUSES,
    SEVERITIES,
    SEVERITY_P,
    STATUSES,
    TICKET_COLUMNS,
    TYPES,
    WAIT_CUSTOMER,
    WAIT_THIRD,
    materialise_sla,
)
from guanxi.security import crypto

# Shipments per customer in the demo generator (10,159,430 for 1,000,000 customers).
SHIPMENTS_PER_CUSTOMER = 10.16
# At 1,000,000 tickets 200 agents (and 8 supervisors); smaller runs get fewer agents so
# each carries the same load as at full size (about 500 open tickets).
AGENTS = 200
TICKETS_PER_AGENT = 5_000
SUPERVISORS = 8  # the demo "manager" and seven more; the admin is told of escalations too
TEAM_SIZE = 25
# The agent whose queue is measured holds about this many open tickets.
BENCH_AGENT = "agent"
BENCH_AGENT_OPEN = 500
OPEN_SHARE = 0.10
CHUNK = 50_000

OPEN_P = [0.15, 0.20, 0.40, 0.15, 0.10]
RESOLVED_P = 0.12  # of the done ones; the others are closed

TYPE_P = [0.45, 0.30, 0.15, 0.10]
# Share of tickets of each type that name a waybill.
WAYBILL_SHARE = {"complaint": 0.85, "inquiry": 0.50, "service_request": 0.60, "claim": 1.0}
# Category codes by type (the default tree of migration 0010; codes are plain strings on
# the ticket, so an older tree still works).
CATEGORIES = {
    "complaint": [
        "delay.transit",
        "delay.delivery",
        "damage.package",
        "delivery.wrong",
        "delivery.fake_sign",
        "delivery.not_to_door",
        "service_attitude",
        "price.overcharge",
        "pickup.missed",
    ],
    "inquiry": ["delay.transit", "price", "other", "pickup"],
    "service_request": ["pickup.missed", "delivery", "other"],
    "claim": ["damage.contents", "damage.package", "loss.whole", "loss.partial"],
}
SUBJECTS = {
    "delay": ["快件超时未到", "物流信息三天未更新", "承诺次日达未送达", "催件：客户急用"],
    "damage": ["外包装破损", "内件摔坏", "易碎品破损", "包装进水"],
    "loss": ["快件丢失", "内件短少", "签收后发现少件"],
    "delivery": ["未送货上门", "未收到却显示签收", "派送至错误地址", "未联系即放驿站"],
    "pickup": ["预约揽收未上门", "揽收超时"],
    "service_attitude": ["快递员态度恶劣", "客服电话无人接听"],
    "price": ["多收运费", "保价费用疑问", "到付金额不符"],
    "other": ["修改收件地址", "开具发票", "查询网点电话", "申请退回"],
}
DESCRIPTIONS = [
    "客户来电反映情况，要求尽快处理并回电。",
    "客户称已多次联系网点未果，情绪较激动。",
    "客户提供了照片，请核实后答复。",
    "电商客户，影响店铺评分，要求加急。",
    None,
]
HANDOVER_REASONS = ["转交理赔组", "轮班交接", "转交网点跟进"]


Progress = Callable[[str], None]


@dataclass(frozen=True)
class DeskData:
    """What a built database holds (the JSON sidecar), and how long the load took."""

    db: str
    customers: int
    shipments: int
    tickets: int
    open_tickets: int
    events: int
    agents: int
    bench_agent_id: int
    bench_agent_open: int
    bench_agent_tickets: int
    generated_at: str  # ISO, UTC: the "now" the ticket ages are relative to
    shipments_seconds: float
    tickets_seconds: float
    sla_columns_seconds: float
    analyze_seconds: float

    @property
    def now(self) -> datetime:
        """The moment the tickets were generated against."""
        return datetime.fromisoformat(self.generated_at)


def db_path_for(shipments: int, tickets: int, directory: Path = Path("/tmp")) -> Path:
    """Where the database of this size is cached."""
    return directory / f"guanxi-desk-{shipments}-{tickets}.db"


def _sidecar(db: Path) -> Path:
    return db.with_suffix(".json")


def ensure_desk_db(
    db: Path,
    *,
    shipments: int,
    tickets: int,
    seed: int = 7,
    settings: Settings | None = None,
    progress: Progress = print,
) -> tuple[DeskData, Settings]:
    """Build (once) or reuse the database at ``db``; returns what it holds and the settings
    to open it with (development keys kept beside it)."""
    settings = settings or bench_settings(db)
    domains.load()
    crypto.configure(settings)
    sidecar = _sidecar(db)
    if db.exists() and sidecar.exists():
        data = DeskData(**json.loads(sidecar.read_text()))
        engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
        upgrade(engine)  # a later migration applies to the cached file too
        engine.dispose()
        progress(f"reusing {db} (built {data.generated_at})")
        return data, settings
    for stale in (db, sidecar, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    data = build(db, shipments=shipments, tickets=tickets, seed=seed, settings=settings,
                 progress=progress)  # fmt: skip
    sidecar.write_text(json.dumps(asdict(data), indent=1))
    return data, settings


def build(
    db: Path,
    *,
    shipments: int,
    tickets: int,
    seed: int,
    settings: Settings,
    progress: Progress = print,
    now: datetime | None = None,
) -> DeskData:
    """Create the database: migrations, demo customers and shipments, users and teams,
    tickets with their events, the SLA columns where the code has them, ANALYZE."""
    from guanxi.demo.accounts import ensure_demo_users
    from guanxi.demo.generator import generate

    now = (now or datetime.now(UTC)).replace(microsecond=0)
    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        owners = ensure_demo_users(session)
    customers = max(1, round(shipments / SHIPMENTS_PER_CUSTOMER))
    started = time.perf_counter()
    summary = generate(engine, customers=customers, seed=seed, owner_ids=owners, now=now)
    shipments_seconds = time.perf_counter() - started
    progress(
        f"customers + shipments: {summary.customers:,} customers, {summary.shipments:,} "
        f"shipments in {shipments_seconds:.1f} s (guanxi.demo.generator)"
    )
    engine.dispose()

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # the load only: a crash means a rebuild
        conn.execute("PRAGMA cache_size=-262144")
        agents, bench_agent, team_of = _staff(conn, agents_for(tickets))
        started = time.perf_counter()
        counts = _tickets(
            conn, tickets, seed, now, team_of, bench_agent, summary.shipments, summary.customers
        )
        tickets_seconds = time.perf_counter() - started
        progress(
            f"tickets: {tickets:,} ({counts['open']:,} open), {counts['events']:,} events "
            f"in {tickets_seconds:.1f} s ({tickets / max(tickets_seconds, 1e-9):,.0f} tickets/s)"
        )
        conn.execute("PRAGMA synchronous=NORMAL")
    finally:
        conn.close()

    engine = make_engine(settings.database_url, sqlite_mmap_bytes=0)
    sla_seconds = materialise_sla(engine, progress=progress)
    started = time.perf_counter()
    with engine.connect() as c:
        c.exec_driver_sql("ANALYZE")
        c.commit()
    analyze_seconds = time.perf_counter() - started
    progress(f"ANALYZE: {analyze_seconds:.1f} s")
    with engine.connect() as c:
        agent_id = c.exec_driver_sql(
            "SELECT id FROM app_user WHERE username = ?", (BENCH_AGENT,)
        ).scalar_one()
        agent_open, agent_all = c.exec_driver_sql(
            "SELECT SUM(status NOT IN ('resolved', 'closed')), COUNT(*) FROM ticket"
            " WHERE owner_id = ?",
            (agent_id,),
        ).one()
    engine.dispose()
    return DeskData(
        db=str(db),
        customers=summary.customers,
        shipments=summary.shipments,
        tickets=tickets,
        open_tickets=counts["open"],
        events=counts["events"],
        agents=len(agents),
        bench_agent_id=int(agent_id),
        bench_agent_open=int(agent_open or 0),
        bench_agent_tickets=int(agent_all),
        generated_at=now.isoformat(),
        shipments_seconds=round(shipments_seconds, 1),
        tickets_seconds=round(tickets_seconds, 1),
        sla_columns_seconds=round(sla_seconds, 1),
        analyze_seconds=round(analyze_seconds, 1),
    )


# --------------------------------------------------------------------------- staff


def agents_for(tickets: int) -> int:
    """How many agents work ``tickets`` tickets (200 for a million)."""
    return min(AGENTS, max(4, tickets // TICKETS_PER_AGENT))


def _staff(conn: sqlite3.Connection, agents_wanted: int) -> tuple[list[int], int, dict[int, int]]:
    """The agents (the demo ones among them) and 8 supervisors in teams of 25 (the demo's
    hotline team is one of them); every new account signs in with the demo password (its
    hash is copied: hashing 200 times would only cost time). Returns (agent ids, the
    measured agent's id, each agent's team)."""
    bench, pw_hash, created = conn.execute(
        "SELECT id, password_hash, created_at FROM app_user WHERE username = ?", (BENCH_AGENT,)
    ).fetchone()

    def ids(role: str) -> list[int]:
        sql = "SELECT id FROM app_user WHERE role = ? ORDER BY id"
        return [r[0] for r in conn.execute(sql, (role,))]

    have_agents, have_supervisors = len(ids("agent")), len(ids("manager"))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO app_user (username, display_name, role, password_hash, is_active,"
        " created_at) VALUES (?, ?, ?, ?, 1, ?)",
        [(f"agent{i:03d}", f"客服专员 {i:03d}", "agent", pw_hash, created)
         for i in range(have_agents + 1, agents_wanted + 1)]
        + [(f"manager{i}", f"客服主管 {i}", "manager", pw_hash, created)
           for i in range(have_supervisors + 1, SUPERVISORS + 1)],
    )  # fmt: skip
    agents, supervisors = ids("agent"), ids("manager")
    wanted = max(1, len(agents) // TEAM_SIZE)
    existing = [r[0] for r in conn.execute("SELECT id FROM team ORDER BY id")]
    conn.executemany(
        "INSERT INTO team (code, name, work_hours, active, version) VALUES (?, ?, ?, 1, 1)",
        [(f"desk{t}", f"客服{t}组", "09:00-12:00,13:00-18:00")
         for t in range(len(existing) + 1, wanted + 1)],
    )  # fmt: skip
    teams = [r[0] for r in conn.execute("SELECT id FROM team ORDER BY id")]
    team_of: dict[int, int] = dict(
        conn.execute("SELECT user_id, MIN(team_id) FROM team_member GROUP BY user_id").fetchall()
    )
    size = {t: 0 for t in teams}
    for uid in agents:
        if uid in team_of:
            size[team_of[uid]] += 1
    joining = []
    for uid in agents:
        if uid not in team_of:
            team_of[uid] = min(teams, key=lambda t: (size[t], t))  # the smallest team
            size[team_of[uid]] += 1
            joining.append((team_of[uid], uid, 0))
    joining += [(teams[i % len(teams)], uid, 1) for i, uid in enumerate(supervisors)]
    conn.executemany(
        "INSERT OR IGNORE INTO team_member (team_id, user_id, is_lead, accepting)"
        " VALUES (?, ?, ?, 1)",
        joining,
    )
    conn.execute("COMMIT")
    return agents, bench, {uid: team_of[uid] for uid in agents}


# --------------------------------------------------------------------------- tickets


def _fmt(values: np.ndarray) -> list[str]:
    """datetime64[us] (UTC) -> the text SQLAlchemy stores for UTCDateTime on SQLite."""
    out = np.char.replace(np.datetime_as_string(values, unit="us"), "T", " ")
    return out.tolist()  # type: ignore[no-any-return]


def _exp_s(rng: np.random.Generator, mean_minutes: float, n: int) -> np.ndarray:
    """Exponential gaps in seconds (at least one)."""
    return np.maximum(rng.exponential(mean_minutes * 60, n), 1).astype(np.int64)


def _tickets(
    conn: sqlite3.Connection,
    total: int,
    seed: int,
    now: datetime,
    team_of: dict[int, int],
    bench_agent: int,
    shipments: int,
    customers: int,
) -> dict[str, int]:
    """Generate and insert ``total`` tickets with their events; returns counts."""
    agents = sorted(team_of)
    from guanxi.tickets.enums import Severity, TicketChannel, TicketType
    from guanxi.tickets.service import priority_for

    rng = np.random.default_rng([seed, 4])
    now64 = np.datetime64(now.replace(tzinfo=None), "us")
    n_open = round(total * OPEN_SHARE)
    is_open = np.zeros(total, dtype=bool)
    is_open[rng.choice(total, n_open, replace=False)] = True
    status = np.where(
        is_open,
        rng.choice(5, total, p=OPEN_P),
        np.where(rng.random(total) < RESOLVED_P, RESOLVED, CLOSED),
    )

    # When each ticket came in: done ones over the last year, open ones in the last days
    # (exponential age, mean three days); the hour of day follows the hotline's day.
    day = np.where(
        is_open,
        np.minimum(rng.exponential(3.0, total), 60).astype(np.int64),
        rng.integers(2, 365, total),
    )
    local_s = rng.normal(14 * 3600, 3 * 3600, total).clip(8 * 3600, 22 * 3600).astype(np.int64)
    midnight_utc = np.datetime64(now.date(), "us") - np.timedelta64(8, "h")
    created = (
        midnight_utc
        - day.astype("timedelta64[D]")
        + (local_s * 1_000_000 + rng.integers(0, 10**6, total)).astype("timedelta64[us]")
    )
    created = np.where(created > now64 - np.timedelta64(5, "m"), created - np.timedelta64(1, "D"),
                       created)  # fmt: skip

    # Which steps each ticket went through.
    taken = status != NEW
    started = status >= IN_PROGRESS
    done = status >= RESOLVED
    handover = taken & (rng.random(total) < 0.08)
    pair = (status == IN_PROGRESS) | done
    wait_pair = pair & (rng.random(total) < 0.10)  # waited for the customer, then resumed
    reopen = done & ~wait_pair & (rng.random(total) < 0.04)
    waiting = (status == WAIT_CUSTOMER) | (status == WAIT_THIRD)
    satisfied = (status == CLOSED) & (rng.random(total) < 0.30)

    gaps = {
        "take": np.where(taken, _exp_s(rng, 25, total), 0),
        "handover": np.where(handover, _exp_s(rng, 120, total), 0),
        "start": np.where(started, _exp_s(rng, 40, total), 0),
        "wait": np.where(waiting | wait_pair, _exp_s(rng, 180, total), 0),
        "resume": np.where(wait_pair, _exp_s(rng, 1200, total), 0),
        "resolve": np.where(done, _exp_s(rng, 1080, total), 0),
        "reopen": np.where(reopen, _exp_s(rng, 2880, total), 0),
        "resolve2": np.where(reopen, _exp_s(rng, 600, total), 0),
        "close": np.where(status == CLOSED, _exp_s(rng, 2880, total), 0),
        "satisfaction": np.where(satisfied, _exp_s(rng, 360, total), 0),
    }
    span: np.ndarray = np.sum(list(gaps.values()), axis=0)
    age = (now64 - created).astype(np.int64) // 1_000_000
    # Open tickets: the steps squeezed into the ticket's age; done ones: moved back so the
    # last step is in the past.
    room = np.maximum(age - 60, 1)
    scale = np.where(is_open & (span > room), room / np.maximum(span, 1), 1.0)
    for key in gaps:
        gaps[key] = (gaps[key] * scale).astype(np.int64)
    span = np.sum(list(gaps.values()), axis=0)
    late = ~is_open & (created + span.astype("timedelta64[s]") > now64 - np.timedelta64(1, "h"))
    created = np.where(
        late, now64 - span.astype("timedelta64[s]") - np.timedelta64(2, "h"), created
    )

    # Ids follow arrival, as they would.
    order = np.argsort(created, kind="stable")
    created = created[order]
    status, taken, started, done = status[order], taken[order], started[order], done[order]
    handover, wait_pair, reopen = handover[order], wait_pair[order], reopen[order]
    waiting, satisfied = waiting[order], satisfied[order]
    gaps = {k: v[order] for k, v in gaps.items()}
    is_open = is_open[order]
    moments: dict[str, np.ndarray] = {}
    at = created.copy()
    for key in gaps:
        at = at + gaps[key].astype("timedelta64[s]")
        moments[key] = at

    types = rng.choice(len(TYPES), total, p=TYPE_P)
    channels = rng.choice(len(CHANNELS), total, p=CHANNEL_P)
    severities = rng.choice(len(SEVERITIES), total, p=SEVERITY_P)
    matrix = {
        (t, c, s): priority_for(TicketType(TYPES[t]), Severity(SEVERITIES[s]),
                                TicketChannel(CHANNELS[c])).value
        for t in range(len(TYPES)) for c in range(len(CHANNELS)) for s in range(len(SEVERITIES))
    }  # fmt: skip

    # Owners: the open ones spread unevenly (some agents carry twice the load of others),
    # the measured agent with about BENCH_AGENT_OPEN; done ones evenly.
    agents_arr = np.array(agents)
    weights = np.linspace(0.5, 1.5, len(agents))
    open_owned = int((is_open & taken).sum())
    bench = agents.index(bench_agent)
    share = min(BENCH_AGENT_OPEN / max(open_owned, 1), 0.5)
    others = weights.sum() - weights[bench]
    weights[bench] = share / (1 - share) * others if open_owned > 2 * BENCH_AGENT_OPEN else 1.0
    open_pick = rng.choice(len(agents), total, p=weights / weights.sum())
    owner = np.where(is_open, agents_arr[open_pick], rng.choice(agents_arr, total))
    first_owner = np.where(handover, rng.choice(agents_arr, total), owner)
    creator = np.where(rng.random(total) < 0.7, first_owner, rng.choice(agents_arr, total))

    # Waybills of real shipments (with their customer); the others name a customer only.
    ship_ids = rng.integers(1, max(shipments, 1) + 1, total)
    wants_waybill = rng.random(total) < np.array([WAYBILL_SHARE[t] for t in TYPES])[types]
    anonymous = rng.random(total) < 0.04
    free_customer = rng.integers(1, max(customers, 1) + 1, total)
    repeat = (types == 0) & (rng.random(total) < 0.06)
    scores = rng.choice([3, 4, 5], total, p=[0.2, 0.35, 0.45])
    pick = rng.integers(0, 1 << 30, (total, 4))

    columns = {
        "types": types, "channels": channels, "severities": severities, "status": status,
        "taken": taken, "started": started, "done": done, "handover": handover,
        "wait_pair": wait_pair, "reopen": reopen, "waiting": waiting, "satisfied": satisfied,
        "owner": owner, "first_owner": first_owner, "creator": creator, "ship": ship_ids,
        "wants_waybill": wants_waybill, "anonymous": anonymous, "customer": free_customer,
        "repeat": repeat, "score": scores,
    }  # fmt: skip
    events = 0
    for lo in range(0, total, CHUNK):
        hi = min(total, lo + CHUNK)
        # Plain lists: indexing them is several times cheaper than numpy scalars.
        c = {k: v[lo:hi].tolist() for k, v in columns.items()}
        picks = pick[lo:hi].tolist()
        waybills = _waybills(conn, ship_ids[lo:hi][wants_waybill[lo:hi]])
        fmt = {key: _fmt(moments[key][lo:hi]) for key in moments}
        fmt["create"] = _fmt(created[lo:hi])
        ticket_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        for j in range(hi - lo):
            tid = lo + j + 1
            ti, ch, sev, st = c["types"][j], c["channels"][j], c["severities"][j], c["status"][j]
            t = TYPES[ti]
            p = picks[j]
            ship = waybills.get(c["ship"][j]) if c["wants_waybill"][j] else None
            cust = None if c["anonymous"][j] else (ship[1] if ship else c["customer"][j])
            cats = CATEGORIES[t]
            category = cats[p[0] % len(cats)]
            subjects = SUBJECTS.get(category.split(".")[0], SUBJECTS["other"])
            taken_j, started_j, done_j = c["taken"][j], c["started"][j], c["done"][j]
            own = c["owner"][j] if taken_j else None
            first = c["first_owner"][j] if taken_j else None
            by = c["creator"][j]
            ev: list[tuple[Any, ...]] = [
                (tid, fmt["create"][j], by, "create", None, "new", None, None, True)
            ]
            if taken_j:
                ev.append(
                    (tid, fmt["take"][j], first, "take", "new", "assigned", first, None, True)
                )
                if c["handover"][j]:
                    reason = HANDOVER_REASONS[p[1] % len(HANDOVER_REASONS)]
                    ev.append((tid, fmt["handover"][j], first, "hand_over", "assigned",
                               "assigned", own, reason, True))  # fmt: skip
            if started_j:
                ev.append((tid, fmt["start"][j], own, "start", "assigned", "in_progress", None,
                           None, True))  # fmt: skip
                if c["waiting"][j] or c["wait_pair"][j]:
                    third = st == WAIT_THIRD
                    ev.append((tid, fmt["wait"][j], own,
                               "wait_third_party" if third else "wait_customer", "in_progress",
                               "waiting_third_party" if third else "waiting_customer",
                               None, "已回复客户，等待补充材料", False))  # fmt: skip
                if c["wait_pair"][j]:
                    ev.append((tid, fmt["resume"][j], own, "resume", "waiting_customer",
                               "in_progress", None, None, True))  # fmt: skip
            reopened = c["reopen"][j]
            if done_j:
                ev.append((tid, fmt["resolve"][j], own, "resolve", "in_progress", "resolved",
                           None, "已处理并回复客户", False))  # fmt: skip
                if reopened:
                    ev.append((tid, fmt["reopen"][j], own, "reopen", "resolved", "in_progress",
                               None, "客户不满意，重新处理", True))  # fmt: skip
                    ev.append((tid, fmt["resolve2"][j], own, "resolve", "in_progress",
                               "resolved", None, "再次处理完毕", False))  # fmt: skip
                if st == CLOSED:
                    ev.append((tid, fmt["close"][j], own, "close", "resolved", "closed", None,
                               None, True))  # fmt: skip
                    if c["satisfied"][j]:
                        ev.append((tid, fmt["satisfaction"][j], own, "satisfaction", "closed",
                                   "closed", None, None, True))  # fmt: skip
            resolved_at = None
            if done_j:
                resolved_at = fmt["resolve2"][j] if reopened else fmt["resolve"][j]
            ticket_rows.append(
                (
                    tid,
                    t,
                    CHANNELS[ch],
                    cust,
                    ship[0] if ship else None,
                    category,
                    # As create_ticket does: the waybill's destination province.
                    ship[2] if ship else None,
                    team_of[own] if own else None,
                    SEVERITIES[sev],
                    matrix[(ti, ch, sev)],
                    subjects[p[2] % len(subjects)],
                    DESCRIPTIONS[p[3] % len(DESCRIPTIONS)],
                    STATUSES[st],
                    own,
                    first,
                    by,
                    fmt["create"][j],
                    ev[-1][1],
                    fmt["start"][j] if started_j else None,
                    resolved_at,
                    fmt["close"][j] if st == CLOSED else None,
                    1 if reopened else 0,
                    c["repeat"][j],
                    sev == CRITICAL or ch == REGULATOR,
                    RESOLUTIONS[p[0] % len(RESOLUTIONS)] if done_j else None,
                    ROOT_CAUSES[p[1] % len(ROOT_CAUSES)] if done_j else None,
                    c["score"][j] if c["satisfied"][j] else None,
                    len(ev),
                )
            )
            event_rows.extend(ev)
        conn.execute("BEGIN")
        marks = ",".join("?" * len(TICKET_COLUMNS))
        conn.executemany(
            f"INSERT INTO ticket ({','.join(TICKET_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            ticket_rows,
        )
        marks = ",".join("?" * len(EVENT_COLUMNS))
        conn.executemany(
            f"INSERT INTO ticket_event ({','.join(EVENT_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            event_rows,
        )
        conn.execute("COMMIT")
        events += len(event_rows)
    return {"open": n_open, "events": events}


def _waybills(conn: sqlite3.Connection, ids: np.ndarray) -> dict[int, tuple[str, int, str]]:
    """Waybill number, customer and destination province of each shipment id."""
    out: dict[int, tuple[str, int, str]] = {}
    unique = np.unique(ids).tolist()
    for lo in range(0, len(unique), 5000):
        part = unique[lo : lo + 5000]
        marks = ",".join("?" * len(part))
        for sid, waybill, customer, province in conn.execute(
            f"SELECT id, waybill_no, customer_id, dest_province FROM shipment"  # noqa: S608
            f" WHERE id IN ({marks})",
            part,
        ):
            out[sid] = (waybill, customer, province)
    return out
