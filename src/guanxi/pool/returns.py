"""The daily return of neglected customers to the pool.

Two rules, each switched off by leaving its number of days empty in the policy:

* no follow-up: the owner logged no interaction with the customer for N days, counted from
  the later of the day they got it (claim or assignment; creation when neither is recorded)
  and their last follow-up;
* contract ended: M days have passed since the customer's last contract ended and no
  contract is active — a contract that ended under this owner (one that had already ended
  when they claimed the customer does not count against them).

Customers carrying an exempt tag never return; with ``only_from_pool`` only customers
claimed or assigned through the pool do (books that predate the pool stay put). The owner
is warned K days ahead (a ``warned`` history row naming the day, plus an in-app and e-mail
notice); a customer returns on the day its warning named, never earlier, so a late job or
a newly switched-on rule still gives the owner K days. A follow-up after the warning
starts a new count.

Idempotent: a run takes a lock (PostgreSQL) or the write lock (SQLite), finds what is due
from the committed history, and a customer returned or warned today is not due again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core import i18n
from guanxi.core.db import serialize_writers, write_transaction
from guanxi.core.i18n import N_
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer
from guanxi.customers.service import assign_owner
from guanxi.interactions.models import Interaction
from guanxi.notify.service import Note, notify_many
from guanxi.pool.enums import TO_OWNER, PoolEventKind, ReturnRule
from guanxi.pool.models import PoolEvent
from guanxi.pool.policy import PoolPolicy, load_policy
from guanxi.pool.service import _aware, _chunks, day_start, exempt_ids_clause, local_day
from guanxi.security.models import User

POOL_JOB = Actor.system("pool")
_POOL_LOCK = 0x706F_6F6C  # advisory lock id of the daily run on PostgreSQL
# Customers returned per transaction (each holds the audit chain while it writes).
RETURN_CHUNK = 200

WARN_SUBJECT = N_("{name} returns to the customer pool on {day}")
WARN_NO_FOLLOW_UP = N_(
    "No follow-up has been logged for this customer since {since}. Log a contact before "
    "{day} to keep it."
)
WARN_CONTRACT = N_(
    "The customer's last contract has ended and none is active; it returns to the pool on "
    "{day} unless a new contract starts."
)
RETURNED_SUBJECT = N_("{name} has returned to the customer pool")
RETURNED_NO_FOLLOW_UP = N_("No follow-up was logged for {days} days.")
RETURNED_CONTRACT = N_("The last contract ended {days} days ago and none is active.")


@dataclass
class ReturnRun:
    """What one run did (figures for the worker's log and the API)."""

    day: date
    warned: int = 0
    returned: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def figures(self) -> dict[str, Any]:
        """The run as a flat dict."""
        return {
            "day": self.day.isoformat(),
            "warned": self.warned,
            "returned_no_follow_up": self.returned[ReturnRule.no_follow_up.value],
            "returned_contract_ended": self.returned[ReturnRule.contract_ended.value],
        }


@dataclass
class _Owned:
    """An owned customer a rule is looking at."""

    customer_id: int
    name: str
    owner_id: int
    # When the owner got the customer, and the instant the rule counts from.
    start: datetime
    basis: datetime
    contract_id: int | None = None


def run_returns(
    session: Session, *, now: datetime, timezone: str, language: str = "zh_CN"
) -> ReturnRun:
    """Warn the owners of customers due to return within the warning days, then return
    the customers whose announced day has come.

    The warnings and the list of returns are decided in one transaction; the returns are
    written in transactions of :data:`RETURN_CHUNK` customers, so a day that returns
    thousands never holds the audit chain (which every audited write waits for) for long.
    Each return is conditional on the owner still being the one decided on: a second
    worker, or a claim in between, makes it a no-op rather than a double.
    """
    today = local_day(now, timezone)
    run = ReturnRun(day=today)
    with write_transaction(session):
        serialize_writers(session, _POOL_LOCK)
        policy = load_policy(session)
        ctx = _Run(session, run, policy, now, timezone, language)
        if policy.no_follow_up_days is not None:
            days = policy.no_follow_up_days
            owned = _no_follow_up_candidates(session, policy, days, today, timezone)
            _decide(ctx, owned, ReturnRule.no_follow_up, days)
        if policy.contract_ended_days is not None:
            days = policy.contract_ended_days
            owned = _contract_candidates(session, policy, days, today, timezone)
            owned = [o for o in owned if o.customer_id not in ctx.returning]
            _decide(ctx, owned, ReturnRule.contract_ended, days)
    # Owner by owner (one conditional update each), a chunk at a time.
    ctx.due.sort(key=lambda d: (d[0].owner_id, d[0].customer_id))
    for i in range(0, len(ctx.due), RETURN_CHUNK):
        with write_transaction(session):
            serialize_writers(session, _POOL_LOCK)
            _return(ctx, ctx.due[i : i + RETURN_CHUNK])
    return run


# --------------------------------------------------------------------------- candidates


def _owned_filter(policy: PoolPolicy) -> list[Any]:
    clauses: list[Any] = [
        Customer.owner_id.is_not(None),
        Customer.status == CustomerStatus.active.value,
    ]
    if policy.exempt_tags:
        clauses.append(~exempt_ids_clause(policy.exempt_tags))
    if policy.only_from_pool:
        clauses.append(
            exists().where(
                PoolEvent.customer_id == Customer.id,
                PoolEvent.to_user_id == Customer.owner_id,
                PoolEvent.kind.in_(TO_OWNER),
            )
        )
    return clauses


class _Row(NamedTuple):
    """An owned customer as the candidate queries read it."""

    id: int
    name: str
    owner_id: int
    created_at: datetime


_ROW = select(Customer.id, Customer.name, Customer.owner_id, Customer.created_at)


def _rows(result: Any) -> list[_Row]:
    return [_Row(r[0], r[1], r[2], _aware(r[3]) or r[3]) for r in result]


def _ownership_starts(session: Session, rows: list[_Row]) -> dict[int, datetime]:
    """When each customer's current owner got it: the last claim / assignment to them, or
    the customer's creation when none is recorded."""
    starts = {r.id: r.created_at for r in rows}
    owners = {r.id: r.owner_id for r in rows}
    for chunk in _chunks(list(owners)):
        for cid, to_user, at in session.execute(
            select(PoolEvent.customer_id, PoolEvent.to_user_id, func.max(PoolEvent.occurred_at))
            .where(PoolEvent.customer_id.in_(chunk), PoolEvent.kind.in_(TO_OWNER))
            .group_by(PoolEvent.customer_id, PoolEvent.to_user_id)
        ):
            got = _aware(at)
            if to_user == owners[cid] and got is not None and got > starts[cid]:
                starts[cid] = got
    return starts


def _no_follow_up_candidates(
    session: Session, policy: PoolPolicy, days: int, today: date, timezone: str
) -> list[_Owned]:
    """Owned customers due to return by ``today + warn_days`` for want of a follow-up."""
    # Due on (local day of the basis) + N <= today + K  <=>  basis < start of that day + 1.
    cutoff = day_start(today + timedelta(days=policy.warn_days - days + 1), timezone)
    rows = _rows(
        session.execute(
            _ROW.where(
                *_owned_filter(policy),
                Customer.created_at < cutoff,
                ~exists().where(
                    PoolEvent.customer_id == Customer.id,
                    PoolEvent.to_user_id == Customer.owner_id,
                    PoolEvent.kind.in_(TO_OWNER),
                    PoolEvent.occurred_at >= cutoff,
                ),
                ~exists().where(
                    Interaction.customer_id == Customer.id,
                    Interaction.user_id == Customer.owner_id,
                    Interaction.occurred_at >= cutoff,
                ),
            )
        )
    )
    starts = _ownership_starts(session, rows)
    follow_ups: dict[tuple[int, int | None], datetime | None] = {}
    for chunk in _chunks([r.id for r in rows]):
        for cid, uid, at in session.execute(
            select(Interaction.customer_id, Interaction.user_id, func.max(Interaction.occurred_at))
            .where(Interaction.customer_id.in_(chunk), Interaction.user_id.is_not(None))
            .group_by(Interaction.customer_id, Interaction.user_id)
        ):
            follow_ups[(cid, uid)] = _aware(at)
    out = []
    for r in rows:
        start = starts[r.id]
        last = follow_ups.get((r.id, r.owner_id))
        out.append(_Owned(r.id, r.name, r.owner_id, start, max(start, last) if last else start))
    return out


def _contract_candidates(
    session: Session, policy: PoolPolicy, days: int, today: date, timezone: str
) -> list[_Owned]:
    """Owned customers whose last contract ended (under their owner) at least M days before
    ``today + warn_days`` with no active contract."""
    from guanxi.contracts.service import ended_contract_customers

    # Ended before the day after (today + K - M): due on or before today + K.
    ended_before = today + timedelta(days=policy.warn_days - days + 1)
    ended = dict(ended_contract_customers(session, ended_before=ended_before))
    rows: list[_Row] = []
    for chunk in _chunks(sorted(ended)):
        rows += _rows(session.execute(_ROW.where(Customer.id.in_(chunk), *_owned_filter(policy))))
    starts = _ownership_starts(session, rows)
    # A contract that had already ended when the owner got the customer is not theirs.
    by_start: dict[date, list[int]] = defaultdict(list)
    for r in rows:
        by_start[local_day(starts[r.id], timezone)].append(r.id)
    before_owner: set[int] = set()
    for start_day, cids in by_start.items():
        earlier = {c for c, _contract in ended_contract_customers(session, ended_before=start_day)}
        before_owner |= earlier & set(cids)
    return [
        _Owned(r.id, r.name, r.owner_id, starts[r.id], starts[r.id], contract_id=ended[r.id])
        for r in rows
        if r.id not in before_owner
    ]


# --------------------------------------------------------------------------- warn, return


def _warnings(
    session: Session, owned: list[_Owned], rule: ReturnRule
) -> dict[int, list[PoolEvent]]:
    found: dict[int, list[PoolEvent]] = defaultdict(list)
    for chunk in _chunks([o.customer_id for o in owned]):
        for event in session.scalars(
            select(PoolEvent).where(
                PoolEvent.customer_id.in_(chunk),
                PoolEvent.kind == PoolEventKind.warned.value,
                PoolEvent.rule == rule.value,
            )
        ):
            found[event.customer_id].append(event)
    return found


def _valid_warning(events: list[PoolEvent], o: _Owned) -> PoolEvent | None:
    """The warning this owner got in this stretch of ownership (after the basis; for a
    contract, about the same contract)."""
    for event in sorted(events, key=lambda e: e.id, reverse=True):
        if (
            event.to_user_id == o.owner_id
            and (_aware(event.occurred_at) or event.occurred_at) >= o.basis
            and event.contract_id == o.contract_id
        ):
            return event
    return None


@dataclass
class _Run:
    """One run's state shared by the rules."""

    session: Session
    run: ReturnRun
    policy: PoolPolicy
    now: datetime
    timezone: str
    language: str
    # Customers an earlier rule of this run returns, and the returns decided: (customer,
    # rule, the rule's days).
    returning: set[int] = field(default_factory=set)
    due: list[tuple[_Owned, ReturnRule, int]] = field(default_factory=list)
    # Each owner's language for their notices.
    languages: dict[int, str] = field(default_factory=dict)


def _decide(ctx: _Run, owned: list[_Owned], rule: ReturnRule, days: int) -> None:
    """Warn each candidate of one rule that has not been warned in this stretch of
    ownership; put those whose announced day has come on the run's list of returns
    (``days``: the rule's N or M)."""
    if not owned:
        return
    session, run, policy, now = ctx.session, ctx.run, ctx.policy, ctx.now
    timezone, today = ctx.timezone, run.day
    warnings = _warnings(session, owned, rule)
    ctx.languages.update(_languages(session, {o.owner_id for o in owned}, ctx.language))
    notes: list[Note] = []
    for o in owned:
        warning = _valid_warning(warnings.get(o.customer_id, []), o)
        if warning is not None and warning.due_on is not None:
            announced = warning.due_on
        elif policy.warn_days == 0:
            announced = today
        else:
            # Exact when the job runs daily (the customer first shows up K days ahead); a
            # late run or a new rule still gives the owner the full K days.
            due = local_day(o.basis, timezone) + timedelta(days=days)
            announced = max(due, today + timedelta(days=policy.warn_days))
            session.add(
                PoolEvent(
                    customer_id=o.customer_id,
                    kind=PoolEventKind.warned.value,
                    occurred_at=now,
                    to_user_id=o.owner_id,
                    due_on=announced,
                    rule=rule.value,
                    contract_id=o.contract_id,
                )
            )
            run.warned += 1
            notes.append(_warning_note(ctx, o, rule, announced))
        if announced <= today:
            ctx.returning.add(o.customer_id)
            ctx.due.append((o, rule, days))
    session.flush()
    notify_many(session, notes)


def _warning_note(ctx: _Run, o: _Owned, rule: ReturnRule, announced: date) -> Note:
    lang = ctx.languages[o.owner_id]
    day = announced.isoformat()
    body = (
        i18n.gettext(
            lang, WARN_NO_FOLLOW_UP, since=local_day(o.basis, ctx.timezone).isoformat(), day=day
        )
        if rule is ReturnRule.no_follow_up
        else i18n.gettext(lang, WARN_CONTRACT, day=day)
    )
    return Note(
        user_ids=(o.owner_id,),
        key=f"pool:warned:{o.customer_id}:{o.owner_id}:{rule.value}:{day}",
        kind="pool_warning",
        subject=i18n.gettext(lang, WARN_SUBJECT, name=o.name, day=day),
        body=body,
        link=f"/customers/{o.customer_id}",
    )


def _return(ctx: _Run, due: list[tuple[_Owned, ReturnRule, int]]) -> None:
    """Return one chunk of the decided customers to the pool, with their history rows and
    the former owners' notices."""
    session, run, today = ctx.session, ctx.run, ctx.run.day
    by_owner: dict[tuple[int, ReturnRule], list[tuple[_Owned, int]]] = defaultdict(list)
    for o, rule, days in due:
        by_owner[(o.owner_id, rule)].append((o, days))
    notes: list[Note] = []
    for (owner_id, rule), items in by_owner.items():
        kind = (
            PoolEventKind.returned_no_follow_up
            if rule is ReturnRule.no_follow_up
            else PoolEventKind.returned_contract_ended
        )
        changed = assign_owner(
            session,
            customer_ids=[o.customer_id for o, _days in items],
            owner_id=None,
            actor=POOL_JOB,
            reason=kind.value,
            if_owner=owner_id,
        )
        lang = ctx.languages[owner_id]
        template = RETURNED_NO_FOLLOW_UP if rule is ReturnRule.no_follow_up else RETURNED_CONTRACT
        for o, days in items:
            if o.customer_id not in changed:
                continue
            run.returned[rule.value] += 1
            session.add(
                PoolEvent(
                    customer_id=o.customer_id,
                    kind=kind.value,
                    occurred_at=ctx.now,
                    from_user_id=owner_id,
                    rule=rule.value,
                    contract_id=o.contract_id,
                )
            )
            notes.append(
                Note(
                    user_ids=(owner_id,),
                    key=f"pool:returned:{o.customer_id}:{owner_id}:{today}",
                    kind="pool_returned",
                    subject=i18n.gettext(lang, RETURNED_SUBJECT, name=o.name),
                    body=i18n.gettext(lang, template, days=days),
                    link=f"/customers/{o.customer_id}",
                )
            )
    session.flush()
    notify_many(session, notes)


def _languages(session: Session, user_ids: set[int], default: str) -> dict[int, str]:
    """Each user's language for their notices (the site's default when not set)."""
    found = dict(
        session.execute(select(User.id, User.language).where(User.id.in_(sorted(user_ids)))).all()
    )
    return {uid: found.get(uid) or default for uid in user_ids}
