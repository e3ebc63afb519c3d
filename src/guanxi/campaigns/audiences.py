"""Saved audiences (目标客群): the filters, their SQL, counts and samples, and the audited
saves.

An audience is a definition, not a list: it is evaluated when counted (the live count
while editing) and when a campaign snapshots its members at send time, so it follows the
data. Every filter is one set-based condition on the customer table — a column test, or
``customer.id IN (one select of ids)`` over another domain's table — so a count over a
million customers is a few scans, never a lookup per customer.

Other domains are read through what they offer: consent through
``customers.consent.allowed_customers``, loyalty tiers through ``loyalty.service
.tier_of_customers`` (and the member's balance), the analytics' result tables of the
newest successful run of each step. Care rules' audiences (``care.audience``) are built
by :func:`audience_conditions` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import Session

from guanxi.analytics.models import CustomerChurn, CustomerClass, CustomerClv
from guanxi.analytics.policy import PROSPECT, SEGMENTS
from guanxi.analytics.runner import latest_run
from guanxi.audit.service import record
from guanxi.campaigns.models import Audience
from guanxi.campaigns.schemas import AudienceDefinition, AudienceIn
from guanxi.care.schemas import Audience as CareAudience
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES
from guanxi.customers.enums import CustomerStatus
from guanxi.customers.models import Customer, CustomerPhone, Tag, customer_tag
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.shipments.models import Shipment

AUDIENCE_MESSAGES: dict[str, str] = {
    "audience_unknown": N_("No such audience"),
    "audience_name_taken": N_("Another audience already has this name"),
    "audience_archived": N_("The audience is archived"),
    "audience_not_archived": N_("The audience is not archived"),
    "audience_range": N_("Must be at least the minimum ({minimum})"),
    "audience_tier_unknown": N_("Unknown membership tier: {value}"),
    "audience_segment_unknown": N_("Unknown segment: {value}"),
    "audience_owner_unknown": N_("No such user: {value}"),
}
ERROR_MESSAGES.update(AUDIENCE_MESSAGES)

# Customers shown as a sample of an audience.
SAMPLE_SIZE = 20

# Pairs of (minimum, maximum) fields checked for order.
_RANGES = (("clv_min_fen", "clv_max_fen"), ("points_min", "points_max"))


# ------------------------------------------------------------------------------ the SQL


@dataclass
class Filters:
    """A definition as SQL: tests of the customer row (and subqueries that may hold a
    customer more than once: tags, shipments), and selects of customer ids that hold each
    customer at most once (analytics results, membership, consent), which a count joins
    to the customer table rather than testing ``id IN (...)``: SQLite then probes them by
    key for the customers left instead of building a list of every id first."""

    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    id_sets: list[Select[Any]] = field(default_factory=list)

    def all_conditions(self) -> list[ColumnElement[bool]]:
        """Every filter as a condition on ``Customer`` (the id sets as ``id IN``)."""
        return [*self.conditions, *(Customer.id.in_(ids) for ids in self.id_sets)]

    def source(self) -> Any:
        """The customer table joined to each id set."""
        joined: Any = Customer.__table__
        for n, ids in enumerate(self.id_sets):
            subquery = ids.subquery(f"audience_{n}")
            joined = joined.join(subquery, list(subquery.c)[0] == Customer.id)
        return joined


def _values_in(column: Any, values: list[Any]) -> ColumnElement[bool]:
    """``column IN values`` with enum members as their values."""
    test: ColumnElement[bool] = column.in_([getattr(v, "value", v) for v in values])
    return test


def _tagged(names: list[str]) -> Select[Any]:
    """Ids of customers carrying any of the tags (once per tag)."""
    return (
        select(customer_tag.c.customer_id)
        .join(Tag, Tag.id == customer_tag.c.tag_id)
        .where(Tag.name.in_(names))
    )


def _profile(d: AudienceDefinition, out: Filters, default_language: str) -> None:
    """Kind, source, industry, lifecycle stage, region, language, tags and owner."""
    for column, values in (
        (Customer.kind, d.kinds),
        (Customer.source, d.sources),
        (Customer.industry, d.industries),
        (Customer.lifecycle_stage, d.lifecycle_stages),
        (Customer.region, d.regions),
    ):
        if values:
            out.conditions.append(_values_in(column, list(values)))
    if d.languages:
        language: ColumnElement[bool] = Customer.language.in_(d.languages)
        if default_language in d.languages:
            language = or_(language, Customer.language.is_(None))
        out.conditions.append(language)
    if d.tags_any:
        out.conditions.append(Customer.id.in_(_tagged(d.tags_any)))
    if d.tags_none:
        out.conditions.append(Customer.id.not_in(_tagged(d.tags_none)))
    owners: list[ColumnElement[bool]] = []
    if d.unowned:
        owners.append(Customer.owner_id.is_(None))
    if d.owner_ids:
        owners.append(Customer.owner_id.in_(d.owner_ids))
    if owners:
        out.conditions.append(or_(*owners))


def _analytics(session: Session, d: AudienceDefinition, out: Filters) -> None:
    """The newest run's results: RFM classes (segment, relationship, value tier,
    frequency class) in one select, CLV bounds, churn bands. A step that never ran
    matches nobody."""
    classes: list[ColumnElement[bool]] = []
    if d.segments:
        classes.append(CustomerClass.segment.in_(d.segments))
    if d.relationships:
        classes.append(CustomerClass.relationship.in_(d.relationships))
    if d.value_tiers:
        classes.append(CustomerClass.value_tier.in_(d.value_tiers))
    if d.frequency_classes:
        classes.append(CustomerClass.frequency_class.in_(d.frequency_classes))
    clv: list[ColumnElement[bool]] = []
    if d.clv_min_fen is not None:
        clv.append(CustomerClv.clv_fen >= d.clv_min_fen)
    if d.clv_max_fen is not None:
        clv.append(CustomerClv.clv_fen <= d.clv_max_fen)
    churn = [CustomerChurn.band.in_(d.churn_bands)] if d.churn_bands else []
    for step, model, tests in (
        ("rfm", CustomerClass, classes),
        ("clv", CustomerClv, clv),
        ("churn", CustomerChurn, churn),
    ):
        if not tests:
            continue
        run_id = latest_run(session, step)
        if run_id is None:
            out.conditions.append(false())
            continue
        out.id_sets.append(select(model.customer_id).where(model.run_id == run_id, *tests))


def _shipments(d: AudienceDefinition, out: Filters) -> None:
    """Last shipment within / before a number of days, read from the shipments themselves
    (the analytics' last_shipment_at is as old as its run, and misses shipments imported
    since). Shipments count from their creation, as the RFM step counts them. Each test
    is a probe of the (customer_id, created_at) index for a customer the other filters
    left, never a list of every shipment of the period."""
    now = clock.now()

    def shipped(*tests: ColumnElement[bool]) -> ColumnElement[bool]:
        return select(Shipment.id).where(Shipment.customer_id == Customer.id, *tests).exists()

    if d.shipped_within_days is not None:
        out.conditions.append(
            shipped(Shipment.created_at >= now - timedelta(days=d.shipped_within_days))
        )
    if d.no_shipment_for_days is not None:
        since = now - timedelta(days=d.no_shipment_for_days)
        out.conditions.append(~shipped(Shipment.created_at >= since))
        out.conditions.append(shipped(Shipment.created_at < since))


def _loyalty(d: AudienceDefinition, out: Filters) -> None:
    """Membership tier and points balance range (members only)."""
    from guanxi.loyalty.models import LoyaltyMember
    from guanxi.loyalty.service import tier_of_customers

    if d.tiers:
        tiers = tier_of_customers().subquery()
        member, tier = list(tiers.c)[:2]
        out.id_sets.append(select(member).where(tier.in_(d.tiers)))
    if d.points_min is not None or d.points_max is not None:
        stmt = select(LoyaltyMember.customer_id)
        if d.points_min is not None:
            stmt = stmt.where(LoyaltyMember.balance >= d.points_min)
        if d.points_max is not None:
            stmt = stmt.where(LoyaltyMember.balance <= d.points_max)
        out.id_sets.append(stmt)


def audience_filters(
    session: Session, definition: AudienceDefinition, *, default_language: str = "zh_CN"
) -> Filters:
    """A definition as SQL (see :class:`Filters`). ``default_language``: the language of
    customers who have none recorded."""
    from guanxi.customers.consent import allowed_customers

    out = Filters()
    _profile(definition, out, default_language)
    _analytics(session, definition, out)
    _shipments(definition, out)
    _loyalty(definition, out)
    # One row per customer and purpose: allowed_customers holds each customer once. The
    # members' statement keeps only active customers itself.
    for purpose in dict.fromkeys(definition.consents):
        out.id_sets.append(allowed_customers(purpose, active_checked=True))
    return out


def care_rule_conditions(session: Session, audience: CareAudience) -> list[ColumnElement[bool]]:
    """The conditions of a care rule's audience: the few filters a rule offers, as the
    campaigns' filters (registered with care in ``domains.py``)."""
    definition = AudienceDefinition(
        kinds=audience.kinds,
        regions=audience.regions,
        tags_any=audience.tags,
        tiers=audience.tiers,
        segments=audience.segments,
        value_tiers=audience.value_tiers,
    )
    return audience_conditions(session, definition)


def audience_conditions(
    session: Session, definition: AudienceDefinition, *, default_language: str = "zh_CN"
) -> list[ColumnElement[bool]]:
    """The filters of a definition as conditions on ``Customer`` (all must hold; none:
    everyone), for statements that add their own joins (care's recipient rows)."""
    return audience_filters(session, definition, default_language=default_language).all_conditions()


def _members(
    session: Session, definition: AudienceDefinition, default_language: str, *columns: Any
) -> Select[Any]:
    """``columns`` of the active customers in the audience."""
    filters = audience_filters(session, definition, default_language=default_language)
    return (
        select(*columns)
        .select_from(filters.source())
        .where(Customer.status == CustomerStatus.active.value, *filters.conditions)
    )


def member_ids(
    session: Session, definition: AudienceDefinition, *, default_language: str = "zh_CN"
) -> Select[int]:
    """SQL select of the ids of the active customers in the audience: one column, each
    customer once, no ORDER BY (a campaign snapshots hundreds of thousands; sorting them
    is its choice)."""
    return _members(session, definition, default_language, Customer.id)


def count_members(
    session: Session, definition: AudienceDefinition, *, default_language: str = "zh_CN"
) -> int:
    """How many active customers the audience holds now."""
    stmt = _members(session, definition, default_language, func.count())
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class SampleMember:
    """A customer of an audience's sample, masked for any viewer."""

    id: int
    name: str
    kind: str
    region: str | None
    phone: str | None


def sample_members(
    session: Session,
    definition: AudienceDefinition,
    *,
    limit: int = SAMPLE_SIZE,
    default_language: str = "zh_CN",
) -> list[SampleMember]:
    """The newest ``limit`` customers of the audience, names masked, phones as their last
    four digits (a sample shows whom the filters catch, not how to reach them)."""
    # Imported here: care's preview builds on care.audience, which builds on this module.
    from guanxi.care.preview import mask_name

    rows = session.execute(
        _members(
            session,
            definition,
            default_language,
            Customer.id,
            Customer.name,
            Customer.kind,
            Customer.region,
        )
        .order_by(Customer.id.desc())
        .limit(limit)
    ).all()
    phones: dict[int, str] = {}
    if rows:
        for customer_id, last4 in session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.last4)
            .where(CustomerPhone.customer_id.in_([r.id for r in rows]))
            .order_by(CustomerPhone.customer_id, CustomerPhone.position)
        ):
            phones.setdefault(customer_id, "****" + last4)
    return [SampleMember(r.id, mask_name(r.name), r.kind, r.region, phones.get(r.id)) for r in rows]


# ---------------------------------------------------------------------------- validation


def check_definition(
    session: Session, definition: AudienceDefinition, prefix: tuple[str, ...] = ()
) -> list[FieldError]:
    """Every problem of a definition the schema cannot see, each naming its field (under
    ``prefix``): ranges whose maximum is below the minimum, segments, loyalty tiers and
    owners that do not exist."""
    from guanxi.loyalty.policy import load_policy

    errors: list[FieldError] = []
    for low, high in _RANGES:
        minimum, maximum = getattr(definition, low), getattr(definition, high)
        if minimum is not None and maximum is not None and maximum < minimum:
            errors.append(
                FieldError(
                    (*prefix, high),
                    "audience_range",
                    f"Must be at least the minimum ({minimum})",
                    {"minimum": minimum},
                )
            )
    for n, segment in enumerate(definition.segments):
        if segment not in SEGMENTS and segment != PROSPECT:
            errors.append(
                FieldError(
                    (*prefix, "segments", n),
                    "audience_segment_unknown",
                    f"Unknown segment: {segment}",
                    {"value": segment},
                )
            )
    if definition.tiers:
        policy = load_policy(session)
        for n, tier in enumerate(definition.tiers):
            if policy.tier(tier) is None:
                errors.append(
                    FieldError(
                        (*prefix, "tiers", n),
                        "audience_tier_unknown",
                        f"Unknown membership tier: {tier}",
                        {"value": tier},
                    )
                )
    if definition.owner_ids:
        known = set(session.scalars(select(User.id).where(User.id.in_(definition.owner_ids))))
        for n, owner in enumerate(definition.owner_ids):
            if owner not in known:
                errors.append(
                    FieldError(
                        (*prefix, "owner_ids", n),
                        "audience_owner_unknown",
                        f"No such user: {owner}",
                        {"value": owner},
                    )
                )
    return errors


def live_count(
    session: Session, definition: AudienceDefinition, *, default_language: str = "zh_CN"
) -> int:
    """The count while an audience is edited: the definition checked first (422 naming the
    field), then counted."""
    errors = check_definition(session, definition)
    if errors:
        raise ValidationFailed(errors)
    return count_members(session, definition, default_language=default_language)


# ------------------------------------------------------------------------ saved audiences


def list_audiences(session: Session, *, archived: bool = False) -> list[Audience]:
    """Saved audiences by name: the current ones, or (``archived``) the archived ones."""
    stmt = select(Audience).order_by(Audience.name, Audience.id)
    if archived:
        stmt = stmt.where(Audience.archived_at.is_not(None))
    else:
        stmt = stmt.where(Audience.archived_at.is_(None))
    return list(session.scalars(stmt))


def get_audience(session: Session, audience_id: int) -> Audience:
    """One saved audience (archived ones too), or NotFound."""
    audience = session.get(Audience, audience_id)
    if audience is None:
        raise NotFound("audience_unknown", audience_id=audience_id)
    return audience


def definition_of(audience: Audience) -> AudienceDefinition:
    """The filters of a saved audience."""
    return AudienceDefinition.model_validate_json(audience.definition)


def _audited(audience: Audience) -> dict[str, Any]:
    """What the audit log keeps of an audience (no personal data in a definition)."""
    return {
        "name": audience.name,
        "description": audience.description,
        "definition": definition_of(audience).model_dump(mode="json", exclude_defaults=True),
    }


def _name_errors(session: Session, name: str, audience_id: int | None) -> list[FieldError]:
    taken = session.scalar(
        select(Audience.id).where(Audience.name == name, Audience.id != (audience_id or 0))
    )
    if taken is None:
        return []
    return [FieldError(("name",), "audience_name_taken", "Another audience already has this name")]


def save_audience(
    session: Session, *, audience_in: AudienceIn, actor: User, audience_id: int | None = None
) -> Audience:
    """Create an audience (``audience_id`` None) or replace one's name, description and
    filters; checked whole, audited. An edit naming a ``version`` other than the stored
    one is refused (someone saved since), as is an edit of an archived audience."""
    with write_transaction(session):
        audience = None if audience_id is None else get_audience(session, audience_id)
        if audience is not None:
            if audience_in.version is not None and audience_in.version != audience.version:
                raise Conflict("version_conflict", field="version")
            if audience.archived_at is not None:
                raise Conflict("audience_archived", field="archived_at")
        errors = _name_errors(session, audience_in.name, audience_id)
        errors += check_definition(session, audience_in.definition, ("definition",))
        if errors:
            raise ValidationFailed(errors)
        now = clock.now()
        definition = audience_in.definition.model_dump_json(exclude_defaults=True)
        if audience is None:
            audience = Audience(
                name=audience_in.name,
                description=audience_in.description,
                definition=definition,
                created_by=actor.id,
                created_at=now,
                updated_at=now,
                version=1,
            )
            session.add(audience)
            session.flush()
            record(
                session,
                actor=actor_of(actor),
                action="campaign.audience_created",
                target_type="campaign_audience",
                target_id=audience.id,
                after=_audited(audience),
            )
            return audience
        before = _audited(audience)
        audience.name = audience_in.name
        audience.description = audience_in.description
        audience.definition = definition
        after = _audited(audience)
        changed = [k for k in after if before[k] != after[k]]
        if changed:
            audience.updated_at = now
            audience.version += 1
            session.flush()
            record(
                session,
                actor=actor_of(actor),
                action="campaign.audience_changed",
                target_type="campaign_audience",
                target_id=audience.id,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return audience


def set_archived(session: Session, *, audience_id: int, archived: bool, actor: User) -> Audience:
    """Archive an audience (kept for the campaigns that used it, no longer offered) or
    bring it back; audited."""
    with write_transaction(session):
        audience = get_audience(session, audience_id)
        if (audience.archived_at is not None) == archived:
            code = "audience_archived" if archived else "audience_not_archived"
            raise Conflict(code, field="archived_at")
        now = clock.now()
        audience.archived_at = now if archived else None
        audience.updated_at = now
        audience.version += 1
        record(
            session,
            actor=actor_of(actor),
            action="campaign.audience_archived" if archived else "campaign.audience_restored",
            target_type="campaign_audience",
            target_id=audience.id,
            before={"archived": not archived},
            after={"archived": archived},
        )
    return audience
