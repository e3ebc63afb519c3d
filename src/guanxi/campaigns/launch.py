"""Launching a campaign: snapshot the audience into recipients (a seeded random split into
the control group and the variants), issue the offer's coupons, and queue the treated
recipients' messages in notify's outbox, throttled.

Idempotent and resumable. The snapshot is one transaction (all recipients or none) and is
taken once; coupons are issued idempotently (loyalty's ``source_key``); messages are
queued ``CHUNK`` per transaction under keys ``campaign:<id>:<customer>``, which the outbox
keeps unique, so a launch that crashed half-way and is run again queues only what is
missing — nothing twice — at the same throttled times (computed from the same start).

Throttling: with ``rate_per_hour`` the messages are spread over one-minute slots of
``ceil(rate / 60)`` messages each (``not_before`` of the slot); for SMS a slot falling in
notify's quiet hours moves to their end and the following slots follow it, so the rate
holds after the night too. Consent is notify's: re-checked when each message is sent.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import Connection, exists, select, update
from sqlalchemy.orm import Session

import guanxi.campaigns.campaign_messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import Actor, record
from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.campaigns.policy import SOURCE_PREFIX, load_policy
from guanxi.campaigns.schemas import CONTROL, CampaignChannel, CampaignStatus
from guanxi.campaigns.service import _actor, get_campaign
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict
from guanxi.notify.outbox import BulkItem, Category, Channel, queue_bulk
from guanxi.security.models import User

# Messages queued per transaction (SQLite's write lock is never held for long).
CHUNK = 50_000
ACTOR = Actor.system("campaigns")
# Above this many members, frequency caps are read for every customer at once.
_BY_ID_MAX = 5000
# Bytes of randomness of a tracked-link code: 96 bits, 16 URL-safe characters.
CODE_BYTES = 12
SLOT = timedelta(minutes=1)
# Recipient rows per INSERT statement on SQLite.
_ROWS = 2000
LAUNCHABLE = (
    CampaignStatus.draft.value,
    CampaignStatus.scheduled.value,
    CampaignStatus.launching.value,
)


@dataclass
class LaunchResult:
    """What a launch did: the snapshot's figures and the messages it queued this time."""

    campaign_id: int
    status: str
    recipients: int
    control: int
    capped: int
    queued: int


# ------------------------------------------------------------------------ the split


def _unit(customer_ids: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by (seed, customer): SplitMix64 of
    the id offset by the seed. The same campaign splits a customer the same way however
    often (or in whatever order) its audience is read."""
    with np.errstate(over="ignore"):
        z = customer_ids.astype(np.uint64) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split(
    customer_ids: Sequence[int], *, seed: int, control_pct: int, weights: Sequence[tuple[str, int]]
) -> list[str]:
    """The group of each customer: ``control`` with probability ``control_pct`` %, else a
    variant code with probability proportional to its weight (seeded, reproducible)."""
    if not customer_ids:
        return []
    u = _unit(np.asarray(customer_ids, dtype=np.int64), seed)
    share = control_pct / 100
    codes = [CONTROL] + [code for code, _w in weights]
    total = sum(w for _c, w in weights)
    # Bounds in [0, 1): control first, then each variant's share of the rest.
    bounds = [share]
    acc = 0
    for _code, w in weights[:-1]:
        acc += w
        bounds.append(share + (1 - share) * acc / total)
    index = np.searchsorted(np.asarray(bounds), u, side="right")
    return [codes[i] for i in index.tolist()]


def new_codes(count: int) -> list[str]:
    """``count`` fresh link codes (96 random bits each, URL-safe, 16 characters)."""
    raw = base64.urlsafe_b64encode(os.urandom(CODE_BYTES * count)).decode()
    width = CODE_BYTES * 4 // 3
    return [raw[i : i + width] for i in range(0, width * count, width)]


# ------------------------------------------------------------------------ the snapshot


def _insert_recipients(conn: Connection, rows: list[tuple[int, int, str, str | None]]) -> None:
    """Insert recipient rows ``(campaign, customer, variant, code)``: binary COPY on
    PostgreSQL, a prepared executemany on SQLite (a launch writes half a million)."""
    table = CampaignRecipient.__tablename__
    columns = "campaign_id, customer_id, variant, code, clicks, conversions, revenue_fen"
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.dbapi_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["int4", "int4", "text", "text", "int4", "int4", "int8"])
            write = copy.write_row
            for row in rows:
                write((*row, 0, 0, 0))
        return
    # Multi-row INSERTs of _ROWS rows (4 bound values each, far under SQLite's limit):
    # fewer statement executions than an executemany of single rows.
    one = "(?, ?, ?, ?, 0, 0, 0)"
    full = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * _ROWS)  # noqa: S608
    for start in range(0, len(rows), _ROWS):
        part = rows[start : start + _ROWS]
        sql = (
            full
            if len(part) == _ROWS
            else full[: full.index(" VALUES ") + 8] + ", ".join([one] * len(part))
        )
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(part)))


@dataclass
class Snapshot:
    """A snapshot's figures and its treated recipients ``(customer, variant, code, name,
    language)`` in customer order (what :func:`_treated` would read back)."""

    recipients: int
    control: int
    capped: int
    treated: list[tuple[Any, ...]]


def _snapshot(session: Session, campaign: Campaign, now: datetime) -> Snapshot:
    """Read the audience's members, leave out those at the campaigns' frequency cap, split
    the rest and store them (in the caller's transaction)."""
    from guanxi.campaigns.audiences import definition_of, get_audience, member_ids
    from guanxi.customers.models import Customer
    from guanxi.notify.outbox import sent_counts

    audience = get_audience(session, campaign.audience_id)
    stmt = member_ids(session, definition_of(audience)).with_only_columns(
        Customer.id, Customer.name, Customer.language
    )
    # Plain tuples from the driver, in customer order (half a million of them).
    result = session.connection().execute(stmt.order_by(Customer.id))
    try:
        members = list(result.cursor.fetchall())
    finally:
        result.close()
    policy = load_policy(session)
    counts = sent_counts(
        session,
        customer_ids=None if len(members) > _BY_ID_MAX else [m[0] for m in members],
        source_prefix=SOURCE_PREFIX,
        since=now - timedelta(days=policy.cap_days),
    )
    limit = policy.cap_count
    kept = [m for m in members if counts.get(m[0], 0) < limit] if counts else members
    capped = len(members) - len(kept)
    weights = [(v.code, v.weight) for v in campaign.variants]
    groups = split(
        [m[0] for m in kept], seed=campaign.seed, control_pct=campaign.control_pct, weights=weights
    )
    treated_count = sum(1 for g in groups if g != CONTROL)
    codes = iter(new_codes(treated_count))
    rows: list[tuple[int, int, str, str | None]] = []
    treated: list[tuple[Any, ...]] = []
    cid_ = campaign.id
    for (cid, name, language), group in zip(kept, groups, strict=True):
        if group == CONTROL:
            rows.append((cid_, cid, group, None))
            continue
        code = next(codes)
        rows.append((cid_, cid, group, code))
        treated.append((cid, group, code, name, language))
    _insert_recipients(session.connection(), rows)
    return Snapshot(len(rows), len(rows) - treated_count, capped, treated)


# ------------------------------------------------------------------------ messages


class _Values(dict[str, str]):
    """A message's placeholder values; a placeholder without one renders empty (so the
    same dict is the SMS template's parameters, holding only the values that exist)."""

    def __missing__(self, key: str) -> str:
        return ""


def _renderer(text: str) -> Callable[[Mapping[str, str]], str]:
    """``values -> text`` for a text with ``{placeholder}``s (validated when saved): a
    format string, so half a million messages render in C."""
    from guanxi.campaigns.service import PLACEHOLDERS

    pattern = text.strip().replace("{", "{{").replace("}", "}}")
    for name in PLACEHOLDERS:
        pattern = pattern.replace("{{" + name + "}}", "{" + name + "}")
    return pattern.format_map


def link_base() -> str:
    """The start of a tracked link (the base URL customers reach Guanxi at)."""
    from guanxi.selfservice.service import links

    return f"{links().base_url.rstrip('/')}/c/"


def slot_times(
    start: datetime, count: int, rate_per_hour: int | None, quiet: Any | None
) -> list[datetime]:
    """The ``not_before`` of each slot of messages: one slot with no rate, else one-minute
    slots of ``ceil(rate / 60)`` messages, each slot pushed out of the quiet hours (SMS)
    and the next following it."""
    if rate_per_hour is None or count == 0:
        return [quiet.release(start) if quiet is not None else start]
    per_slot = math.ceil(rate_per_hour / 60)
    times: list[datetime] = []
    at = start
    for _ in range(math.ceil(count / per_slot)):
        if quiet is not None:
            at = quiet.release(at)
        times.append(at)
        at = at + SLOT
    return times


def _treated(session: Session, campaign: Campaign, with_names: bool) -> list[Any]:
    """The treated recipients in a fixed order: (customer, variant, code[, name, language])."""
    from guanxi.customers.models import Customer

    r = CampaignRecipient
    cols: list[Any] = [r.customer_id, r.variant, r.code]
    stmt = select(*cols).where(r.campaign_id == campaign.id, r.variant != CONTROL)
    if with_names:
        stmt = (
            select(*cols, Customer.name, Customer.language)
            .join(Customer, Customer.id == r.customer_id)
            .where(r.campaign_id == campaign.id, r.variant != CONTROL)
        )
    # Plain tuples straight from the driver's cursor: half a million rows, and building
    # result rows would cost more than the query (no column needs a conversion).
    result = session.connection().execute(stmt.order_by(r.customer_id))
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _items(
    rows: Sequence[Any],
    campaign: Campaign,
    *,
    coupons: Mapping[int, str],
    coupon_names: Mapping[str, str],
    companies: Mapping[str, str],
    with_names: bool,
) -> Iterator[BulkItem]:
    """The outbox items of treated rows: each rendered in the customer's language."""
    sms = campaign.channel == CampaignChannel.sms.value
    prefix = f"{campaign.source}:"
    base = link_base()
    renderers: dict[tuple[str, str], tuple[Any, Any]] = {}
    for v in campaign.variants:
        renderers[(v.code, "zh_CN")] = (_renderer(v.subject_zh), _renderer(v.body_zh))
        renderers[(v.code, "en")] = (
            _renderer(v.subject_en or v.subject_zh),
            _renderer(v.body_en or v.body_zh),
        )
    english = {v.code for v in campaign.variants if v.body_en}
    # What every message in a language shares (the company).
    shared = {lang: _Values(company=companies[lang]) for lang in ("zh_CN", "en")}
    for row in rows:
        cid, variant, code = row[0], row[1], row[2]
        lang = "zh_CN"
        if with_names and row[4] and variant in english and str(row[4]).startswith("en"):
            lang = "en"
        values = _Values(shared[lang])
        if with_names and row[3]:
            values["name"] = row[3]
        if code:
            values["link"] = base + code
        coupon = coupons.get(cid) if coupons else None
        if coupon:
            values["coupon_name"] = coupon_names.get(lang, "")
            values["coupon_code"] = coupon
        subject_of, body_of = renderers[(variant, lang)]
        if sms:
            yield (prefix + str(cid), cid, values, "", body_of(values))
        else:
            yield (prefix + str(cid), cid, {}, subject_of(values), body_of(values))


# ------------------------------------------------------------------------ the launch


def _claim(session: Session, campaign_id: int, now: datetime, actor: Actor) -> Campaign:
    """Mark the campaign launching (first time: audited, start time fixed)."""
    with write_transaction(session):
        campaign = get_campaign(session, campaign_id)
        if campaign.status not in LAUNCHABLE:
            raise Conflict("campaign_not_launchable", field="status", status=campaign.status)
        if campaign.status != CampaignStatus.launching.value:
            campaign.status = CampaignStatus.launching.value
            campaign.launched_at = now
            record(
                session,
                actor=actor,
                action="campaign.launch_started",
                target_type="campaign",
                target_id=campaign.id,
                after={"status": campaign.status},
            )
    return campaign


def start_of(campaign: Campaign) -> datetime:
    """When the campaign's messages may first go: its send time, or when it was launched."""
    assert campaign.launched_at is not None  # noqa: S101 - set by the claim
    if campaign.send_at is not None and campaign.send_at > campaign.launched_at:
        return campaign.send_at
    return campaign.launched_at


def launch(
    session: Session,
    *,
    campaign_id: int,
    actor: Actor | User | None = None,
    now: datetime | None = None,
) -> LaunchResult:
    """Launch (or resume the launch of) a campaign; see the module docstring."""
    now = now or clock.now()
    who = ACTOR if actor is None else _actor(actor)
    campaign = _claim(session, campaign_id, now, who)
    snapshot: Snapshot | None = None
    with write_transaction(session):
        taken = session.scalar(select(exists().where(CampaignRecipient.campaign_id == campaign.id)))
        if not taken:
            snapshot = _snapshot(session, campaign, now)
            campaign.recipients = snapshot.recipients
            campaign.capped = snapshot.capped
    if snapshot is not None:
        # Just taken: the treated recipients are at hand (with names and languages).
        control, rows_with_names, rows = snapshot.control, True, snapshot.treated
    else:
        # Resumed: read back what the snapshot stored.
        control = _control_count(session, campaign.id)
        rows_with_names = _uses_names(campaign)
        rows = _treated(session, campaign, rows_with_names)
    coupons: dict[int, str] = {}
    coupon_names: dict[str, str] = {}
    if campaign.coupon_template and rows:
        from guanxi.care.run import coupon_names as names_of
        from guanxi.loyalty.service import issue_coupons

        with write_transaction(session):
            coupons = issue_coupons(
                session,
                template_code=campaign.coupon_template,
                customer_ids=[r[0] for r in rows],
                source_key=campaign.source,
                actor=who,
                now=now,
            )
        coupon_names = names_of(session, campaign.coupon_template)
    from guanxi.care.policy import load_policy as care_policy
    from guanxi.notify.outbox import quiet_hours

    care = care_policy(session)
    companies = {"zh_CN": care.company("zh_CN"), "en": care.company("en")}
    sms = campaign.channel == CampaignChannel.sms.value
    quiet = quiet_hours(session) if sms else None
    times = slot_times(start_of(campaign), len(rows), campaign.rate_per_hour, quiet)
    per_slot = (
        len(rows) or 1 if campaign.rate_per_hour is None else math.ceil(campaign.rate_per_hour / 60)
    )
    single = len(campaign.variants) == 1
    session.commit()
    added = 0
    stopped = False
    starts = range(0, len(rows), CHUNK) if rows else range(1)
    for start in starts:
        with write_transaction(session):
            # Locked for the chunk (PostgreSQL): a stop waits until the chunk is committed,
            # then cancels its messages too.
            status = session.scalar(
                select(Campaign.status).where(Campaign.id == campaign.id).with_for_update()
            )
            if status == CampaignStatus.stopped.value:
                stopped = True
                break
            chunk = rows[start : start + CHUNK]
            n = 0
            i = 0
            while i < len(chunk):
                # The messages of one slot share their send time; one bulk per variant
                # (each may name its own gateway template).
                slot = (start + i) // per_slot
                end = min(len(chunk), (slot + 1) * per_slot - start)
                part = chunk[i:end]
                for variant in campaign.variants:
                    mine = part if single else [r for r in part if r[1] == variant.code]
                    n += queue_bulk(
                        session,
                        _items(
                            mine,
                            campaign,
                            coupons=coupons,
                            coupon_names=coupon_names,
                            companies=companies,
                            with_names=rows_with_names,
                        ),
                        channel=Channel.sms if sms else Channel.email,
                        category=Category.marketing,
                        template=variant.sms_template if sms else None,
                        source=campaign.source,
                        not_before=times[slot],
                        now=now,
                    )
                i = end
            added += n
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign.id)
                .values(queued=Campaign.queued + n)
                .execution_options(synchronize_session=False)
            )
            if start == starts[-1]:
                _finish(session, campaign, who)
    session.refresh(campaign)
    return LaunchResult(
        campaign_id=campaign.id,
        status=CampaignStatus.stopped.value if stopped else campaign.status,
        recipients=campaign.recipients,
        control=control,
        capped=campaign.capped,
        queued=added,
    )


def _uses_names(campaign: Campaign) -> bool:
    """Whether the texts need the customers' names or languages (a join otherwise saved)."""
    return any(
        "{name}" in text or v.body_en
        for v in campaign.variants
        for text in (v.subject_zh, v.body_zh, v.subject_en, v.body_en)
    )


def _control_count(session: Session, campaign_id: int) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count()).where(
                CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.variant == CONTROL
            )
        )
        or 0
    )


def _finish(session: Session, campaign: Campaign, actor: Actor) -> None:
    """Mark the campaign launched and audit its figures (last chunk's transaction)."""
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.launching.value)
        .values(status=CampaignStatus.launched.value, finished_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    queued = session.scalar(select(Campaign.queued).where(Campaign.id == campaign.id))
    record(
        session,
        actor=actor,
        action="campaign.launched",
        target_type="campaign",
        target_id=campaign.id,
        after={
            "recipients": campaign.recipients,
            "capped": campaign.capped,
            "queued": int(queued or 0),
        },
    )


# A launch still "launching" this long after it started has lost its process: the job
# resumes it (earlier, it is probably still running, e.g. in a web request).
RESUME_AFTER = timedelta(minutes=30)


def due_campaigns(session: Session, now: datetime) -> list[int]:
    """Scheduled campaigns whose send time has come, and launches to resume."""
    from sqlalchemy import and_, or_

    stmt = (
        select(Campaign.id)
        .where(
            or_(
                and_(
                    Campaign.status == CampaignStatus.scheduled.value,
                    Campaign.send_at <= now,
                ),
                and_(
                    Campaign.status == CampaignStatus.launching.value,
                    Campaign.launched_at < now - RESUME_AFTER,
                ),
            )
        )
        .order_by(Campaign.send_at, Campaign.id)
    )
    return list(session.scalars(stmt))
