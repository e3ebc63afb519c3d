"""Who a care rule greets on a day and with which message — the one computation behind the
preview, the daily run and the thanks after a complaint, so that what the preview shows is
what the run queues.

A customer with the day's occasion passes, in this order: the audience filters (else
*outside audience*), a usable address for the rule's channel (else *no contact*), consent
for that channel (else *no consent*; with "SMS, else e-mail" the e-mail is tried when the
SMS is not possible), and the frequency cap (else *capped*). Rules of one day are planned
highest priority first, each taking its share of the cap before the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from guanxi.care import audience as sql
from guanxi.care.calendar import Festival
from guanxi.care.enums import CareChannel, RuleKind
from guanxi.care.models import CareRule
from guanxi.care.policy import CarePolicy
from guanxi.care.schemas import Audience
from guanxi.care.templating import VARIABLES, plain_parts, render
from guanxi.customers.models import Customer

# Above this many customers, caps are read for everyone at once rather than by id list.
_BY_ID_MAX = 5000


class Recipient(NamedTuple):
    """A customer a rule will greet: by which channel, in which template language."""

    customer_id: int
    name: str
    language: str
    channel: str
    tier: str | None
    years: int | None


@dataclass
class Plan:
    """A rule's day: the occasion, the recipients, and how many were left out, why."""

    rule: CareRule
    day: date
    occasion: date
    festivals: list[Festival] = field(default_factory=list)
    recipients: list[Recipient] = field(default_factory=list)
    eligible: int = 0
    outside_audience: int = 0
    no_consent: int = 0
    no_contact: int = 0
    capped: int = 0

    def figures(self) -> dict[str, int]:
        """The counts a run row keeps."""
        return {
            "eligible": self.eligible,
            "queued": len(self.recipients),
            "capped": self.capped,
            "no_consent": self.no_consent,
            "no_contact": self.no_contact,
            "outside_audience": self.outside_audience,
        }


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant local ``day`` begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def send_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Local ``day`` at ``at``, as a UTC instant."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


class CapState:
    """Care messages per customer within the cap window — those already queued or sent
    (notify's ``sent_counts`` over sources ``care:``) plus those planned in this run."""

    def __init__(self, policy: CarePolicy, day: date, tz: ZoneInfo) -> None:
        self.limit = policy.cap_count
        self.since = local_midnight(day - timedelta(days=policy.cap_days - 1), tz)
        self._counts: dict[int, int] = {}
        self._known: set[int] = set()
        self._everyone = False
        # Messages this run has planned per customer (a plain dict: the daily run checks
        # it a million times).
        self.planned: dict[int, int] = {}

    def load(self, session: Session, ids: Sequence[int]) -> None:
        """Read the counts of ``ids`` (everyone's, for a large list) once."""
        from guanxi.notify.outbox import sent_counts

        if self._everyone:
            return
        if len(ids) > _BY_ID_MAX:
            # In place: a run's loop may hold this dict's get.
            self._counts.clear()
            self._counts.update(
                sent_counts(session, customer_ids=None, source_prefix="care:", since=self.since)
            )
            self._everyone = True
            return
        missing = [i for i in ids if i not in self._known]
        if missing:
            self._counts.update(
                sent_counts(session, customer_ids=missing, source_prefix="care:", since=self.since)
            )
            self._known.update(missing)

    def full(self, customer_id: int) -> bool:
        """Whether the customer already has ``limit`` care messages in the window."""
        used = self._counts.get(customer_id, 0) + self.planned.get(customer_id, 0)
        return used >= self.limit

    def counts(self) -> dict[int, int]:
        """The counts read so far (the run's loop reads them directly)."""
        return self._counts


def occasion_of(rule: CareRule, day: date) -> date:
    """The occasion a rule greets when run on ``day``: ``lead_days`` ahead, or for thanks
    the day the complaint closed, ``lead_days`` back."""
    if rule.kind == RuleKind.complaint_thanks.value:
        return day - timedelta(days=rule.lead_days)
    return day + timedelta(days=rule.lead_days)


def plan_rule(
    session: Session,
    rule: CareRule,
    day: date,
    *,
    policy: CarePolicy,
    caps: CapState,
    tz: ZoneInfo,
    default_language: str,
    customer_id: int | None = None,
) -> Plan:
    """Plan ``rule`` for local ``day`` (only ``customer_id`` when given: the thanks hook)."""
    kind = RuleKind(rule.kind)
    occasion = occasion_of(rule, day)
    plan = Plan(rule=rule, day=day, occasion=occasion)
    years: dict[int, int] = {}
    conditions: list[ColumnElement[bool]]
    if kind is RuleKind.birthday:
        conditions = [sql.birthday_filter(occasion)]
    elif kind is RuleKind.festival:
        plan.festivals = sql.rule_festivals(json.loads(rule.festivals), occasion)
        if not plan.festivals:
            return plan
        conditions = [sql.everyone()]
    elif kind is RuleKind.anniversary:
        from guanxi.loyalty.service import anniversaries

        years = dict(anniversaries(session, occasion))
        conditions = list(sql.id_chunks(sorted(years)))
    elif kind is RuleKind.winback:
        conditions = [sql.winback_filter(session)]
    else:
        conditions = [sql.closed_complaints_filter(occasion, tz)]
    if customer_id is not None:
        conditions = [and_(c, Customer.id == customer_id) for c in conditions]
    audience = Audience.model_validate_json(rule.audience)
    filters = sql.audience_filters(session, audience)
    channel = CareChannel(rule.channel)
    with_tier = "tier" in _used_variables(rule)
    rows: list[Any] = []
    with_occasion = 0
    for condition in conditions:
        with_occasion += sql.count_with_occasion(session, condition)
        stmt = sql.recipient_rows(
            session,
            kind=kind,
            channel=channel,
            occasion=condition,
            audience=filters,
            language=default_language,
            with_tier=with_tier,
            everyone=kind is RuleKind.festival,
        )
        rows.extend(_fetch(session, stmt))
    # In customer order (the statement has none): rows that arrive nearly in order sort in
    # a fraction of a second.
    rows.sort(key=itemgetter(0))
    plan.eligible = len(rows)
    plan.outside_audience = with_occasion - len(rows)
    rows = _settle_contact_mobiles(session, rows)
    _classify(session, plan, rows, kind, caps, years, day, tz)
    return plan


def _classify(
    session: Session,
    plan: Plan,
    rows: list[Any],
    kind: RuleKind,
    caps: CapState,
    years: Mapping[int, int],
    day: date,
    tz: ZoneInfo,
) -> None:
    """Sort the eligible rows into recipients and the reasons the others are left out."""
    from guanxi.notify.outbox import sent_counts

    rule = plan.rule
    capped_kind = kind is not RuleKind.complaint_thanks
    ids = [r[0] for r in rows]
    recent: Mapping[int, int] = {}
    if capped_kind and ids:
        caps.load(session, ids)
    if kind is RuleKind.winback and ids:
        # This rule's own window: at most one win-back message per winback_days.
        recent = sent_counts(
            session,
            customer_ids=None if len(ids) > _BY_ID_MAX else ids,
            source_prefix=f"care:{rule.id}:",
            since=local_midnight(day - timedelta(days=rule.winback_days - 1), tz),
        )
    has_en = bool(rule.body_en.strip())
    append = plan.recipients.append
    # Locals for the loop over a million rows (attribute look-ups cost more than the test).
    planned, planned_get, sent_get = caps.planned, caps.planned.get, caps.counts().get
    limit, years_get, recent_get = caps.limit, years.get, recent.get
    sms_ready, email_ready = sql.MOBILE | sql.SMS_OK, sql.EMAIL | sql.EMAIL_OK
    reachable = sql.MOBILE | sql.EMAIL
    no_consent = no_contact = capped = 0
    # The template language of each stored language, decided once per distinct value.
    languages: dict[str | None, str] = {}
    # A Recipient straight from its tuple (its __new__ is a Python function: a million
    # calls of it cost more than the rest of the loop).
    new = tuple.__new__
    for cid, name, lang, flags, tier in rows:
        # The flags hold only the bits of the rule's channels (audience.recipient_rows).
        if flags & sms_ready == sms_ready:
            chosen = "sms"
        elif flags & email_ready == email_ready:
            chosen = "email"
        elif flags & reachable:
            no_consent += 1
            continue
        else:
            no_contact += 1
            continue
        already = planned_get(cid, 0)
        if capped_kind and (recent_get(cid) or sent_get(cid, 0) + already >= limit):
            capped += 1
            continue
        planned[cid] = already + 1
        language = languages.get(lang)
        if language is None:
            language = "en" if has_en and lang and lang.startswith("en") else "zh_CN"
            languages[lang] = language
        append(new(Recipient, (cid, name, language, chosen, tier, years_get(cid))))
    plan.no_consent += no_consent
    plan.no_contact += no_contact
    plan.capped += capped


def _fetch(session: Session, stmt: Any) -> list[Any]:
    """The statement's rows as plain tuples straight from the driver's cursor: a festival
    reads a million, and building result rows would cost more than the query (no column
    of these rows needs a result conversion)."""
    result = session.connection().execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _settle_contact_mobiles(session: Session, rows: list[Any]) -> list[Any]:
    """Rows of organisations without a mobile of their own whose contact person has a
    phone: a mobile or not, as notify will resolve it at send time (contact_points)."""
    from guanxi.customers.queries import contact_points

    # A contact person's phone and no mobile of its own (a bit test: a million rows).
    bits, maybe = sql.MOBILE | sql.CONTACT_PHONE, sql.CONTACT_PHONE
    ids = [r[0] for r in rows if r[3] & bits == maybe]
    if not ids:
        return rows
    mobile = {cid for cid, p in contact_points(session, ids).items() if p.mobile}
    return [
        (*r[:3], r[3] | sql.MOBILE, *r[4:]) if r[3] & bits == maybe and r[0] in mobile else r
        for r in rows
    ]


def _used_variables(rule: CareRule) -> set[str]:
    """Variables the rule's templates mention (cheap textual test: reading the tier is a
    join, done only when some template asks for it)."""
    text = " ".join((rule.subject_zh, rule.body_zh, rule.subject_en, rule.body_en))
    return {v for v in VARIABLES[RuleKind(rule.kind)] if v in text}


class Composed(NamedTuple):
    """A recipient's message: subject (e-mail), body, and the SMS template parameters."""

    recipient: Recipient
    subject: str
    body: str
    params: dict[str, str]


def _renderer(source: str) -> Any:
    """``values -> text`` for one template: a join for plain ones, Jinja (memoised: many
    customers share a name) for the rest."""
    parts = plain_parts(source)
    if parts is not None:
        # Text and variables only: a format string (str.format_map runs in C).
        pattern = "".join(
            "{" + text + "}" if var else text.replace("{", "{{").replace("}", "}}")
            for var, text in parts
        )
        fill = pattern.format_map

        def plain(values: Mapping[str, str]) -> str:
            return fill(values).strip()

        return plain
    memo: dict[tuple[Any, ...], str] = {}

    def jinja(values: Mapping[str, str]) -> str:
        key = tuple(values.values())
        text = memo.get(key)
        if text is None:
            text = render(source, values)
            if len(memo) < 100_000:
                memo[key] = text
        return text

    return jinja


def compose(
    plan: Plan,
    policy: CarePolicy,
    *,
    coupons: Mapping[int, str] | None = None,
    coupon_name: Mapping[str, str] | None = None,
    tier_names: Mapping[str, Mapping[str, str]] | None = None,
    recipients: Sequence[Recipient] | None = None,
) -> Iterator[Composed]:
    """Render each recipient's message in their language."""
    for parts in rendered(
        plan,
        policy,
        coupons=coupons,
        coupon_name=coupon_name,
        tier_names=tier_names,
        recipients=recipients,
    ):
        yield Composed._make(parts)


# Variables whose value differs from one recipient to the next (the others are the same
# for every recipient of a rule's day in one language).
_PER_RECIPIENT = frozenset({"name", "tier", "years", "coupon_code"})


def rendered(
    plan: Plan,
    policy: CarePolicy,
    *,
    coupons: Mapping[int, str] | None = None,
    coupon_name: Mapping[str, str] | None = None,
    tier_names: Mapping[str, Mapping[str, str]] | None = None,
    recipients: Sequence[Recipient] | None = None,
) -> Iterator[tuple[Recipient, str, str, dict[str, str]]]:
    """What :func:`compose` yields, as plain tuples ``(recipient, subject, body, params)``:
    the subject only for an e-mail, the SMS template parameters (the variables that have a
    value) only for an SMS. The daily run renders a million of them: each template is
    prepared once per language, and what is the same for everyone is computed once."""
    rule = plan.rule
    declared = VARIABLES[RuleKind(rule.kind)]
    renderers = {
        "zh_CN": (_renderer(rule.subject_zh), _renderer(rule.body_zh)),
        "en": (
            _renderer(rule.subject_en or rule.subject_zh),
            _renderer(rule.body_en or rule.body_zh),
        ),
    }
    fixed: dict[str, dict[str, str]] = {}
    shared: dict[str, dict[str, str]] = {}
    for lang in renderers:
        names = [f.name(lang) for f in plan.festivals]
        values = {
            "name": "",
            "company": policy.company(lang),
            "tier": "",
            "festival": ("、" if lang == "zh_CN" else " & ").join(names),
            "years": "",
            "coupon_code": "",
            "coupon_name": (coupon_name or {}).get(lang, ""),
        }
        # Declared variables only, in a fixed order (the Jinja memo keys on the values).
        fixed[lang] = {k: values[k] for k in declared}
        shared[lang] = {k: v for k, v in fixed[lang].items() if v and k not in _PER_RECIPIENT}
    with_years, with_code = "years" in declared, "coupon_code" in declared
    codes = coupons or {}
    for r in plan.recipients if recipients is None else recipients:
        lang = r.language
        values = fixed[lang].copy()
        values["name"] = r.name
        tier = _tier_label(r.tier, lang, tier_names) if r.tier else ""
        years = str(r.years) if with_years and r.years is not None else ""
        code = codes.get(r.customer_id, "") if with_code else ""
        if tier:
            values["tier"] = tier
        if years:
            values["years"] = years
        if code:
            values["coupon_code"] = code
        subject_of, body_of = renderers[lang]
        if r.channel == "email":
            yield (r, subject_of(values), body_of(values), {})
            continue
        # The SMS parameters: the variables with a value.
        params = shared[lang].copy()
        if r.name:
            params["name"] = r.name
        if tier:
            params["tier"] = tier
        if years:
            params["years"] = years
        if code:
            params["coupon_code"] = code
        yield (r, "", body_of(values), params)


def _tier_label(code: str, lang: str, names: Mapping[str, Mapping[str, str]] | None) -> str:
    return (names or {}).get(code, {}).get(lang, code)
