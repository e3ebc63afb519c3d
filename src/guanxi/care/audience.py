"""The SQL of a care rule's audience: who has the occasion, who the filters keep, whether
each can be reached and may be contacted — as set-based statements over the customer
table, so a festival greeting to a million customers is a few scans, not a million
lookups.

Other domains are read through what they offer: consent through
``customers.consent.allowed_customers`` (a select of customer ids), loyalty tiers through
``loyalty.service.tier_of_customers``, anniversaries through ``loyalty.service
.anniversaries``; the analytics' result tables (segments, churn bands of the newest run)
and closed complaints are read, never written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    extract,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from guanxi.analytics.models import CustomerChurn
from guanxi.analytics.runner import latest_run
from guanxi.care.calendar import Festival, festivals_on
from guanxi.care.enums import CareChannel, RuleKind
from guanxi.care.schemas import Audience
from guanxi.customers.enums import CustomerKind, CustomerStatus, PhoneKind
from guanxi.customers.models import ContactPerson, Customer, CustomerPhone

# Bits of a recipient row's flags.
MOBILE, EMAIL, SMS_OK, EMAIL_OK, CONTACT_PHONE = 1, 2, 4, 8, 16

# Customers named by id per statement when the occasion is a list (anniversaries): well
# under SQLite's and PostgreSQL's parameter limits.
ID_CHUNK = 5000


def is_leap(year: int) -> bool:
    """Whether ``year`` has a February 29."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday_filter(occasion: date) -> ColumnElement[bool]:
    """Customers whose birthday is ``occasion``'s month and day.

    People born on February 29 are greeted on February 28 in years without a 29th: still
    in their birthday month, and a day early rather than a day late (in March).
    """
    month, day = extract("month", Customer.birthday), extract("day", Customer.birthday)
    same = and_(month == occasion.month, day == occasion.day)
    if (occasion.month, occasion.day) == (2, 28) and not is_leap(occasion.year):
        return or_(same, and_(month == 2, day == 29))
    return same


def rule_festivals(codes: Sequence[str], occasion: date) -> list[Festival]:
    """The rule's festivals that fall on ``occasion``."""
    return [f for f in festivals_on(occasion) if f.code in codes]


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where local ``day`` begins and the next day begins."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def winback_filter(session: Session) -> ColumnElement[bool]:
    """Customers the newest churn run puts at high risk (none before the first run)."""
    run_id = latest_run(session, "churn")
    if run_id is None:
        return false()
    return Customer.id.in_(
        select(CustomerChurn.customer_id).where(
            CustomerChurn.run_id == run_id, CustomerChurn.band == "high"
        )
    )


def closed_complaints_filter(day: date, tz: ZoneInfo) -> ColumnElement[bool]:
    """Customers with a complaint closed on local ``day``."""
    from guanxi.tickets.models import Ticket

    start, end = local_day_bounds(day, tz)
    return Customer.id.in_(
        select(Ticket.customer_id).where(
            Ticket.type == "complaint",
            Ticket.status == "closed",
            Ticket.closed_at >= start,
            Ticket.closed_at < end,
        )
    )


# The conditions of a rule's audience come from the campaigns' audience filters, which
# campaigns offer through this registration (``domains.py``): campaigns build on care, so
# care does not import them.
AudienceConditions = Callable[[Session, Audience], list[ColumnElement[bool]]]
_conditions: list[AudienceConditions] = []


def register_audience_conditions(conditions: AudienceConditions) -> None:
    """Use ``conditions`` for the rules' audiences (one provider: a second replaces it)."""
    _conditions[:] = [conditions]


def audience_filters(session: Session, audience: Audience) -> list[ColumnElement[bool]]:
    """The conditions of a rule's audience (all must hold)."""
    if not _conditions:
        raise RuntimeError("guanxi.domains.load() registers the audience filters")
    return _conditions[0](session, audience)


def _purposes(kind: RuleKind) -> tuple[Any, Any]:
    """The consent purposes that allow an SMS and an e-mail of this kind: marketing for
    greetings, anniversaries and win-back; thanks after a complaint is a service message
    (sent unless the customer opted out of service messages)."""
    from guanxi.customers.consent import Purpose

    if kind is RuleKind.complaint_thanks:
        return Purpose.survey, Purpose.survey
    return Purpose.marketing_sms, Purpose.marketing_email


def uses_sms(channel: CareChannel) -> bool:
    """Whether the channel may send an SMS."""
    return channel in (CareChannel.sms, CareChannel.sms_or_email)


def uses_email(channel: CareChannel) -> bool:
    """Whether the channel may send an e-mail."""
    return channel in (CareChannel.email, CareChannel.sms_or_email)


def language_column(default: str) -> ColumnElement[str]:
    """The customer's language for messages, the site default when not recorded."""
    return func.coalesce(Customer.language, literal(default, String))


def recipient_rows(
    session: Session,
    *,
    kind: RuleKind,
    channel: CareChannel,
    occasion: ColumnElement[bool],
    audience: list[ColumnElement[bool]],
    language: str,
    with_tier: bool,
    everyone: bool = False,
) -> Select[Any]:
    """One row per customer with the occasion inside the audience, in no particular order:
    (id, name, language, flags, tier); the flags say whether the customer has a mobile,
    an e-mail address, SMS and e-mail consent, and a contact person's phone that may be a
    mobile. ``everyone``: the occasion is every customer's (a festival), which changes the
    best plan."""
    from guanxi.customers.consent import allowed_customers

    sms_purpose, email_purpose = _purposes(kind)
    # Who has a mobile and who may be texted / written to: joined as derived tables (hash
    # or merge joins), not "id IN (subquery)" per row, which PostgreSQL rescans for every
    # customer once the id list outgrows work_mem.
    joins: list[tuple[Any, ColumnElement[bool]]] = []
    parts: list[tuple[ColumnElement[bool], int]] = []
    organisation = Customer.kind != CustomerKind.individual.value
    if uses_sms(channel):
        texted = allowed_customers(sms_purpose).subquery("care_sms_ok")
        texted_id = list(texted.c)[0]
        joins.append((texted, texted_id == Customer.id))
        own_mobile: ColumnElement[bool]
        if everyone:
            # Every customer: one pass over the distinct mobile numbers.
            mobiles = (
                select(CustomerPhone.customer_id)
                .where(CustomerPhone.kind == PhoneKind.mobile.value)
                .distinct()
                .subquery("care_mobile")
            )
            joins.append((mobiles, mobiles.c.customer_id == Customer.id))
            own_mobile = mobiles.c.customer_id.is_not(None)
        else:
            # A day's birthdays: a look-up each beats reading every phone.
            own_mobile = exists(
                select(CustomerPhone.id).where(
                    CustomerPhone.customer_id == Customer.id,
                    CustomerPhone.kind == PhoneKind.mobile.value,
                )
            )
        # An organisation without a mobile of its own is texted at its contact person's,
        # if that is a mobile: only the decrypted number tells, so these few are settled
        # by contact_points (planning.py). Only organisations have contact persons.
        contact_phone = and_(
            organisation,
            exists(
                select(ContactPerson.id).where(
                    ContactPerson.customer_id == Customer.id, ContactPerson.phone_enc.is_not(None)
                )
            ),
        )
        parts += [
            (own_mobile, MOBILE),
            (texted_id.is_not(None), SMS_OK),
            (contact_phone, CONTACT_PHONE),
        ]
    if uses_email(channel):
        # Likewise an organisation without an e-mail of its own, at its contact person's.
        has_email = or_(
            Customer.email_enc.is_not(None),
            and_(
                organisation,
                exists(
                    select(ContactPerson.id).where(
                        ContactPerson.customer_id == Customer.id,
                        ContactPerson.email_enc.is_not(None),
                    )
                ),
            ),
        )
        written = allowed_customers(email_purpose).subquery("care_email_ok")
        written_id = list(written.c)[0]
        joins.append((written, written_id == Customer.id))
        parts += [(has_email, EMAIL), (written_id.is_not(None), EMAIL_OK)]
    # One integer of flags instead of five boolean columns: a festival reads a million rows.
    flags = sum((case((condition, bit), else_=0) for condition, bit in parts), literal(0))
    source: Any = Customer.__table__
    for table, on in joins:
        source = source.outerjoin(table, on)
    stmt = (
        select(Customer.id, Customer.name, language_column(language), flags)
        .select_from(source)
        .where(Customer.status == CustomerStatus.active.value, occasion, *audience)
    )
    if with_tier:
        from guanxi.loyalty.service import tier_of_customers

        tiers = tier_of_customers().subquery()
        member, tier = list(tiers.c)[:2]
        stmt = stmt.add_columns(cast(tier, String)).outerjoin(tiers, member == Customer.id)
    else:
        stmt = stmt.add_columns(literal(None, String))
    # No ORDER BY: PostgreSQL sorts a festival's million rows on disk (work_mem) before
    # sending the first; planning.plan_rule sorts them in Python.
    return stmt


def count_with_occasion(session: Session, occasion: ColumnElement[bool]) -> int:
    """Active customers with the occasion, whatever the audience."""
    stmt = (
        select(func.count())
        .select_from(Customer)
        .where(Customer.status == CustomerStatus.active.value, occasion)
    )
    return int(session.scalar(stmt) or 0)


def id_chunks(ids: Sequence[int]) -> Iterator[ColumnElement[bool]]:
    """``Customer.id IN (...)`` per chunk of ids (an empty list: no condition at all)."""
    for lo in range(0, len(ids), ID_CHUNK):
        yield Customer.id.in_(list(ids[lo : lo + ID_CHUNK]))


def everyone() -> ColumnElement[bool]:
    """No condition (every active customer has a festival)."""
    return true()
