"""The outbox: every outbound message (e-mail, SMS, webhook) is written in the caller's
transaction and sent by the worker after commit.

Sent after commit, by construction: :func:`queue_messages` only inserts rows inside the
transaction of the change they report. The sender (``notify/sender.py``) reads and claims
rows through sessions of its own, and another session sees a row only once the transaction
that wrote it has committed. A change that rolls back leaves no message behind; a committed
change's messages survive a crash of the process that made them.

A row's life::

    pending --claim--> sending --ok--> sent
       |                  |
       |                  +--transient error--> pending, next_attempt_at = now + back-off
       |                  +--permanent error, or the last attempt--> failed
       +--consent withdrawn / no address / an administrator--> cancelled
    sending whose lease ran out (the worker died) --> claimed again; the lost try counts

The key is the idempotency token end to end: queuing the same key twice adds nothing, and
the providers get it (Message-ID, Aliyun ``OutId``, Tencent ``SessionContext``, the
webhook's ``X-Guanxi-Delivery``) so a copy sent after a crash can be recognised there.

No personal data in errors or logs: addresses are encrypted at rest (or resolved from the
customer at send time), scrubbed from every error text, and logs name messages by id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.core.types import UTCDateTime
from guanxi.customers import validation
from guanxi.notify.models import OutboxMessage
from guanxi.notify.policy import QuietHours
from guanxi.notify.policy import quiet_hours as quiet_hours
from guanxi.security.crypto import cipher

if TYPE_CHECKING:
    import psycopg

# Wait after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# How long a claim holds a row. Must outlast one message's sending (a few SMTP round trips
# or one HTTP call of at most their timeouts); after it, another worker may take it over.
LEASE = timedelta(minutes=10)
KEY_MAX = 120
SUBJECT_MAX = 200
SOURCE_MAX = 120
TEMPLATE_MAX = 40
ERROR_MAX = 300
# The associated data of the address ciphertext (crypto binds each value to its column).
ADDRESS_FIELD = "outbox_to"


class Channel(StrEnum):
    """How a message travels."""

    email = "email"
    sms = "sms"
    webhook = "webhook"


class Category(StrEnum):
    """Why a message is sent, which decides the consent it needs.

    - transactional: a reply to something the customer did (ticket mail): always sent;
    - service: survey invitations, reminders: sent unless the customer opted out (consent
      purpose ``survey``); quiet hours apply to SMS;
    - marketing: greetings, offers, win-back: only with granted marketing consent for the
      channel; quiet hours apply to SMS; an unsubscribe link / "回TD退订" is added.
    """

    transactional = "transactional"
    service = "service"
    marketing = "marketing"


class OutboxStatus(StrEnum):
    """Where a message is in its life (see the module docstring)."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class Delivery(StrEnum):
    """What the provider reported about the message reaching the handset."""

    unknown = "unknown"
    delivered = "delivered"
    undelivered = "undelivered"


OPEN = (OutboxStatus.pending.value, OutboxStatus.sending.value)
# Statuses that count towards frequency caps: queued or sent, not cancelled or failed.
COUNTED = (OutboxStatus.pending.value, OutboxStatus.sending.value, OutboxStatus.sent.value)
QUIET_CATEGORIES = frozenset({Category.service, Category.marketing})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Outbound:
    """One message to queue (see :func:`queue_messages`).

    ``customer_id``: the recipient customer; the address (primary mobile / e-mail) is
    resolved and the consent re-checked at send time. Or ``to``: an explicit address (a
    user's e-mail, a number an agent typed), encrypted at rest. ``template`` names an SMS
    template of the registry (``notify/sms/templates.py``); ``params`` fill it and hold no
    personal identifiers. ``body`` is the rendered text (the e-mail body; the SMS text as
    the file / console gateways show it). ``source`` says who queued it ("survey:<id>",
    "care:<rule id>", "loyalty:...") for reports and frequency caps.
    """

    key: str
    channel: Channel
    category: Category
    customer_id: int | None = None
    to: str | None = None
    template: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    subject: str = ""
    body: str = ""
    not_before: datetime | None = None
    source: str | None = None


# --------------------------------------------------------------------------- queue

# Rows per INSERT statement: 12 bound values a row stays under SQLite's 32,766 variables.
_CHUNK = 2000
# Bound columns of a queued row, in statement order; the rest are constants of a new row.
_COLUMNS = (
    "key",
    "channel",
    "category",
    "customer_id",
    "to_enc",
    "template",
    "params",
    "subject",
    "body",
    "source",
    "next_attempt_at",
    "created_at",
)
_CONSTANTS = (("status", "'pending'"), ("attempts", "0"), ("delivery", "'unknown'"))


# PostgreSQL, small batches (a ticket's mail, a survey's few invitations): one statement
# with a column array each, in one round trip.
_PG_TYPES = (
    "varchar[]", "varchar[]", "varchar[]", "int8[]", "text[]", "varchar[]", "text[]",
    "varchar[]", "text[]", "varchar[]", "timestamptz[]", "timestamptz[]",
)  # fmt: skip
_ALL_COLUMNS = ", ".join(list(_COLUMNS) + [c for c, _v in _CONSTANTS])
_PG_UNNEST = (
    f"INSERT INTO {OutboxMessage.__tablename__} ({_ALL_COLUMNS}) "  # noqa: S608
    f"SELECT u.*, {', '.join(v for _c, v in _CONSTANTS)} FROM unnest("
    + ", ".join(f"%b::{t}" for t in _PG_TYPES)
    + ") AS u ON CONFLICT (key) DO NOTHING"
)

# PostgreSQL, from this many rows: binary COPY, which psycopg writes in C, where the column
# arrays above are built value by value in Python (about 12 µs a row, most of the time of a
# million-message run). A few round trips more, which only a batch this large repays.
_COPY_MIN = 500
# First straight into the outbox inside a savepoint: nearly always every key is new, and
# the unique index refuses any that is not. Then (a key queued before, or by a transaction
# that committed meanwhile) the batch goes through a temporary staging table and one
# INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING, which skips the existing keys.
_SAVEPOINT = "outbox_copy"
_COPY_TYPES = (
    "text", "text", "text", "int8", "text", "text", "text", "text", "text", "text",
    "timestamptz", "timestamptz",
)  # fmt: skip
_COPY_DIRECT = f"COPY {OutboxMessage.__tablename__} ({_ALL_COLUMNS}) FROM STDIN (FORMAT BINARY)"
# Binary COPY needs the table's own types: customer_id and attempts are int4 there.
_DIRECT_TYPES = (*_COPY_TYPES[:3], "int4", *_COPY_TYPES[4:], "text", "int4", "text")
_DIRECT_TAIL = ("pending", 0, "unknown")  # the values of _CONSTANTS
_STAGE = "pg_temp.outbox_stage"
# ON COMMIT DROP: the table never outlives the caller's transaction, even if the DROP
# after the insert is never reached (an error rolls the creation back with the rest).
_STAGE_CREATE = (
    f"CREATE TEMPORARY TABLE {_STAGE.removeprefix('pg_temp.')} ("
    + ", ".join(f"{c} {t}" for c, t in zip(_COLUMNS, _COPY_TYPES, strict=True))
    + ") ON COMMIT DROP"
)
_STAGE_COPY = f"COPY {_STAGE} ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_STAGE_INSERT = (
    f"INSERT INTO {OutboxMessage.__tablename__} ({_ALL_COLUMNS}) "  # noqa: S608
    f"SELECT {', '.join(_COLUMNS)}, {', '.join(v for _c, v in _CONSTANTS)} FROM {_STAGE} "
    "ON CONFLICT (key) DO NOTHING"
)
_STAGE_DROP = f"DROP TABLE {_STAGE}"


def _raw(conn: Connection) -> psycopg.Connection[Any]:
    return cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)


def _queue_pg(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> int:
    """Write the rows on PostgreSQL; how many were added (existing keys skipped).

    ``rows`` may be produced (and checked) while they are written: a batch of
    ``_COPY_MIN`` rows or more is streamed into the COPY, so the server inserts while
    Python renders and checks the rest. A row that fails its check raises inside the
    savepoint, which is rolled back: the batch writes all of its rows or none.
    """
    stream = iter(rows)
    head = list(islice(stream, _COPY_MIN))
    if not head:
        return 0
    if len(head) < _COPY_MIN:
        # One statement with a column array each: PostgreSQL plans a statement of
        # thousands of bound values slowly, and unnest() of 12 arrays quickly.
        columns = [list(c) for c in zip(*head, strict=True)]
        result = conn.exec_driver_sql(_PG_UNNEST, tuple(columns))
        return max(result.rowcount, 0)
    import psycopg

    # Each key once: a key repeated within the batch keeps its first row, as one INSERT
    # keeps it. Kept for the staged insert, should the direct one meet an existing key.
    firsts: dict[str, tuple[Any, ...]] = {}
    conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
    try:
        with _raw(conn).cursor() as cursor, cursor.copy(_COPY_DIRECT) as copy:
            copy.set_types(_DIRECT_TYPES)
            write, tail, setdefault = copy.write_row, _DIRECT_TAIL, firsts.setdefault
            for row in chain(head, stream):
                if setdefault(row[0], row) is row:
                    write(row + tail)
    except psycopg.Error:
        # Undo this batch's rows, nothing before it; the staged insert skips the existing
        # keys (and raises, through SQLAlchemy, whatever else the table refused).
        conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        # Rows not produced yet when the COPY failed (it stops at the first error).
        for row in stream:
            firsts.setdefault(row[0], row)
        return _stage_pg(conn, list(firsts.values()))
    except Exception:
        # A message that failed its check: the rows written before it go too.
        conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        raise
    conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return len(firsts)


def _stage_pg(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """COPY the rows (each key once) into a staging table, then insert those whose key is
    new; how many were added."""
    conn.exec_driver_sql(_STAGE_CREATE)
    with _raw(conn).cursor() as cursor, cursor.copy(_STAGE_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        write = copy.write_row
        for row in rows:
            write(row)
    # Through SQLAlchemy, so a broken constraint raises its usual IntegrityError.
    result = conn.exec_driver_sql(_STAGE_INSERT)
    conn.exec_driver_sql(_STAGE_DROP)
    return max(result.rowcount, 0)


@lru_cache(maxsize=16)
def _insert_sql(dialect: str, paramstyle: str, rows: int) -> str:
    """``INSERT ... VALUES (...), (...) ON CONFLICT (key) DO NOTHING`` for ``rows`` rows."""
    mark = "?" if paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(_COLUMNS) + [v for _c, v in _CONSTANTS]) + ")"
    columns = ", ".join(list(_COLUMNS) + [c for c, _v in _CONSTANTS])
    return (
        f"INSERT INTO {OutboxMessage.__tablename__} ({columns}) VALUES "  # noqa: S608
        + ", ".join([one] * rows)
        + " ON CONFLICT (key) DO NOTHING"
    )


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _subject(text: str) -> str:
    return _one_line(text)[:SUBJECT_MAX]


# One encoder for every row (json.dumps builds one per call when given options).
_to_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _address(message: Outbound) -> str | None:
    """The explicit address, checked and normalised, or None (resolved at send time)."""
    if message.to is None:
        return None
    address = message.to.strip()
    if message.channel is Channel.email:
        # The address goes into a header: refuse line breaks (header injection) outright.
        if "@" not in address or _CONTROL.search(address):
            raise ValueError("not an e-mail address")
        return address
    if message.channel is Channel.sms:
        try:
            return validation.normalize_phone(address)
        except validation.InvalidValue as exc:
            raise ValueError("not a phone number") from exc
    raise ValueError("a webhook delivery has no address")


_CHANNELS = frozenset(Channel)
_CATEGORIES = frozenset(Category)
# Plain strings for the driver (a dict lookup is cheaper than the enum's .value).
_VALUES: dict[str, str] = {m: m.value for m in (*Channel, *Category)}


def _check_kind(
    channel: Channel, category: Category, template: str | None, source: str | None
) -> None:
    """Checks of what a bulk's messages share (see :func:`_check`)."""
    if channel not in _CHANNELS or category not in _CATEGORIES:
        raise ValueError("unknown channel or category")
    if source is not None and len(source) > SOURCE_MAX:
        raise ValueError(f"an outbox source has at most {SOURCE_MAX} characters")
    if template is not None and len(template) > TEMPLATE_MAX:
        raise ValueError(f"a template code has at most {TEMPLATE_MAX} characters")


def _check(message: Outbound) -> None:
    if not message.key or len(message.key) > KEY_MAX:
        raise ValueError(f"an outbox key has 1 to {KEY_MAX} characters")
    channel = message.channel
    _check_kind(channel, message.category, message.template, message.source)
    if channel is Channel.webhook:
        if not message.params.get("endpoint"):
            raise ValueError("a webhook delivery names its endpoint")
        return
    if message.customer_id is None and message.to is None:
        raise ValueError("a message needs a customer or an address")
    if message.category is Category.marketing and message.customer_id is None:
        # Marketing needs the customer's consent, which only a customer can have given.
        raise ValueError("a marketing message goes to a customer (customer_id)")
    if channel is Channel.sms and not message.template:
        raise ValueError("an SMS names its template")


def queue_messages(
    session: Session, messages: Sequence[Outbound], *, now: datetime | None = None
) -> int:
    """Queue many messages inside the caller's transaction (sent by the worker after commit).

    Idempotent by key (an existing key, or a repeat within ``messages``, is skipped); quiet
    hours push SMS of category service / marketing to the end of the quiet period; returns
    how many rows were added. Bulk: on SQLite one multi-row ``INSERT ... ON CONFLICT DO
    NOTHING`` per chunk of 2,000; on PostgreSQL a binary COPY (see :func:`_queue_pg`). A
    malformed message (empty key, no recipient, a marketing message without a customer, an
    SMS without template) raises ValueError before anything is written.
    """
    if not messages:
        return 0
    moment = now or clock.now()
    quiet: QuietHours | None = None
    conn = session.connection()
    to_db = _to_db(conn)
    created = to_db(moment)
    # Most messages of a batch share their send time: convert (and check) each time once.
    due_cache: dict[tuple[datetime, bool], Any] = {}
    encrypt = cipher().encrypt
    # Most messages of a batch share subjects: clean each one once.
    subjects: dict[str, str] = {}
    params_json = _ParamsJson()
    rows: list[tuple[Any, ...]] = []
    for m in messages:
        _check(m)
        address = _address(m)
        wanted = m.not_before or moment
        in_quiet = m.channel is Channel.sms and m.category in QUIET_CATEGORIES
        due = due_cache.get((wanted, in_quiet))
        if due is None:
            at = wanted
            if in_quiet:
                if quiet is None:
                    quiet = quiet_hours(session)
                at = quiet.release(wanted)
            due = due_cache[(wanted, in_quiet)] = to_db(at)
        subject = subjects.get(m.subject)
        if subject is None:
            subject = subjects[m.subject] = _subject(m.subject)
        rows.append(
            (
                m.key,
                _VALUES[m.channel],
                _VALUES[m.category],
                m.customer_id,
                encrypt(ADDRESS_FIELD, address) if address is not None else None,
                m.template,
                params_json(m.params),
                subject,
                m.body,
                m.source,
                due,
                created,
            )
        )
    return _write(conn, rows)


# One message of :func:`queue_bulk`: key, customer id, template parameters, subject, body.
BulkItem = tuple[str, int, Mapping[str, str], str, str]


def queue_bulk(
    session: Session,
    items: Iterable[BulkItem],
    *,
    channel: Channel,
    category: Category,
    template: str | None = None,
    source: str | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Queue many messages of one kind to customers inside the caller's transaction — one
    channel, category, SMS template, source and earliest send time, and per message only
    ``(key, customer_id, params, subject, body)`` — as :func:`queue_messages` would queue
    the same messages as :class:`Outbound` (same rows, same checks, same quiet hours,
    existing keys skipped; returns how many rows were added), without building an object
    per message and checking what they share once: a care festival greeting queues 750,000
    of them. Recipients are customers (their address resolved at send time); messages to
    explicit addresses and webhook deliveries go through :func:`queue_messages`.

    ``items`` may be a generator that renders the messages (without using the session: on
    PostgreSQL a large batch is written while it is being produced, the server inserting as
    Python renders). A malformed item raises ValueError and the batch writes nothing, as
    with :func:`queue_messages`.
    """
    stream = iter(items)
    first = next(stream, None)
    if first is None:
        return 0
    items = chain((first,), stream)
    _check_kind(channel, category, template, source)
    if channel is Channel.webhook:
        raise ValueError("a webhook delivery is queued with queue_messages")
    if channel is Channel.sms and not template:
        raise ValueError("an SMS names its template")
    moment = now or clock.now()
    conn = session.connection()
    to_db = _to_db(conn)
    created = to_db(moment)
    at = not_before or moment
    if channel is Channel.sms and category in QUIET_CATEGORIES:
        at = quiet_hours(session).release(at)
    due = to_db(at)
    rows = _bulk_rows(
        items,
        (_VALUES[channel], _VALUES[category], template, source, due, created),
    )
    return _write(conn, rows)


def _bulk_rows(items: Iterable[BulkItem], shared: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """The outbox rows of bulk items, each checked as it is made."""
    channel, category, template, source, due, created = shared
    subjects: dict[str, str] = {}
    params_json = _ParamsJson()
    for key, customer_id, params, subject, body in items:
        if not key or len(key) > KEY_MAX:
            raise ValueError(f"an outbox key has 1 to {KEY_MAX} characters")
        if type(customer_id) is not int:
            raise ValueError("a bulk message goes to a customer (customer_id)")
        clean = subjects.get(subject)
        if clean is None:
            clean = subjects[subject] = _subject(subject)
        yield (
            key,
            channel,
            category,
            customer_id,
            None,
            template,
            params_json(params),
            clean,
            body,
            source,
            due,
            created,
        )


def _to_db(conn: Connection) -> Any:
    """How the connection's dialect stores a UTC instant."""
    dialect = conn.dialect
    to_db = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert to_db is not None  # noqa: S101 - UTCDateTime always converts
    return to_db


class _ParamsJson:
    """Template parameters as stored (JSON, keys sorted), remembered within one batch:
    the messages of a greeting share most of their parameters (the company, the festival,
    common names)."""

    _MAX = 100_000

    def __init__(self) -> None:
        self._memo: dict[tuple[tuple[str, Any], ...], str] = {}

    def __call__(self, params: Mapping[str, str]) -> str | None:
        if not params:
            return None
        try:
            key = tuple(params.items())
            text = self._memo.get(key)
        except TypeError:  # a value that cannot be a dict key: no memo
            return _to_json(dict(params))
        if text is None:
            text = _to_json(dict(params))
            # Only text values are remembered: 1 == True would share a key, not a JSON.
            if len(self._memo) < self._MAX and all(type(v) is str for _k, v in key):
                self._memo[key] = text
        return text


def _write(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert the prepared rows, skipping existing keys; how many were added."""
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return _queue_pg(conn, rows)
    # Every row made (and checked) before the first is written.
    rows = list(rows)
    added = 0
    for i in range(0, len(rows), _CHUNK):
        chunk = rows[i : i + _CHUNK]
        sql = _insert_sql(dialect.name, dialect.paramstyle, len(chunk))
        flat = tuple(chain.from_iterable(chunk))
        result = conn.exec_driver_sql(sql, flat)
        added += max(result.rowcount, 0)
    return added


def queue_email(session: Session, *, key: str, to: str, subject: str, body: str) -> bool:
    """Queue one transactional e-mail to an explicit address inside the caller's
    transaction; False if ``key`` is already queued.

    The key makes queuing idempotent (a job that runs twice queues once; two transactions
    racing on one key end with one row). The worker sends the mail after the caller
    commits; if the caller rolls back, nothing is sent.
    """
    message = Outbound(
        key=key,
        channel=Channel.email,
        category=Category.transactional,
        to=to,
        subject=subject,
        body=body,
    )
    return queue_messages(session, [message]) == 1


def cancel_pending(session: Session, *, source: str, reason: str) -> int:
    """Cancel, inside the caller's transaction, every message of ``source`` not yet claimed
    by a sender (status pending); how many were cancelled. A message being sent right now
    goes out; a campaign that is stopped cancels the rest in one statement (the caller
    audits the stop), not message by message as :func:`cancel_message` of an
    administrator does."""
    from sqlalchemy import update

    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.source == source, OutboxMessage.status == OutboxStatus.pending.value)
        .values(status=OutboxStatus.cancelled.value, last_error=_one_line(reason)[:ERROR_MAX])
        .execution_options(synchronize_session=False)
    )
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


# --------------------------------------------------------------------------- caps


# Customer ids per IN list (bound parameters stay well under SQLite's limit).
_IDS = 900


def _prefix_filter(stmt: Select[int | None, int], source_prefix: str) -> Select[int | None, int]:
    return stmt.where(OutboxMessage.source.startswith(source_prefix, autoescape=True))


def sent_counts(
    session: Session,
    *,
    customer_ids: Sequence[int] | None,
    source_prefix: str,
    since: datetime,
) -> dict[int, int]:
    """How many messages (queued or sent, not cancelled or failed) each customer got from
    sources starting with ``source_prefix`` since ``since`` (frequency caps).

    ``customer_ids`` None counts every customer (one pass over the caps index); customers
    with no such message are left out of the answer.
    """
    base = (
        select(OutboxMessage.customer_id, func.count())
        .where(
            OutboxMessage.created_at >= since,
            OutboxMessage.status.in_(COUNTED),
            OutboxMessage.customer_id.is_not(None),
        )
        .group_by(OutboxMessage.customer_id)
    )
    base = _prefix_filter(base, source_prefix)
    counts: dict[int, int] = {}
    if customer_ids is None:
        counts.update((int(cid or 0), int(n)) for cid, n in session.execute(base))
        return counts
    ids = sorted(set(customer_ids))
    for i in range(0, len(ids), _IDS):
        stmt = base.where(OutboxMessage.customer_id.in_(ids[i : i + _IDS]))
        counts.update((int(cid or 0), int(n)) for cid, n in session.execute(stmt))
    return counts


def send_due(*args: Any, **kwargs: Any) -> Any:
    """Send what is due: see :func:`guanxi.notify.sender.send_due`."""
    from guanxi.notify.sender import send_due as send

    return send(*args, **kwargs)


__all__ = [
    "ADDRESS_FIELD",
    "BACKOFF",
    "LEASE",
    "MAX_ATTEMPTS",
    "Category",
    "Channel",
    "Delivery",
    "OutboxStatus",
    "Outbound",
    "QuietHours",
    "BulkItem",
    "cancel_pending",
    "queue_bulk",
    "queue_email",
    "queue_messages",
    "quiet_hours",
    "send_due",
    "sent_counts",
]
