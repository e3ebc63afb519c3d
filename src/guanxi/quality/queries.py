"""The SQL of the data-quality report: per-kind counts, example ids and duplicate groups.

Shaped for both databases. Counts are grouped by customer kind so each figure's denominator
can be the kinds it applies to. Facts about phones and addresses are first reduced to one
row per customer on the child table and then joined (a hash join on PostgreSQL, an ordered
walk on SQLite) instead of one correlated EXISTS per customer and fact, which PostgreSQL
would run row by row in a select list. Nothing here writes, decrypts or returns personal
data: blind indexes are grouped as opaque strings and only customer ids leave the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    collate,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from guanxi.customers.enums import (
    CreditRating,
    CustomerKind,
    CustomerStatus,
    LifecycleStage,
    PhoneKind,
    SourceChannel,
)
from guanxi.customers.models import ContactPerson, Customer, CustomerAddress, CustomerPhone
from guanxi.quality.enums import DuplicateRule
from guanxi.quality.schemas import DuplicateFigures, DuplicateGroup
from guanxi.shipments.models import Shipment

EXAMPLES = 20
EXAMPLE_GROUPS = 10
GROUP_MEMBERS = 10
EARLIEST_BIRTHDAY = date(1900, 1, 1)
# Names people type when they do not know the real one; compared lower-cased and trimmed.
PLACEHOLDER_NAMES = ("null", "none", "n/a", "unknown", "未知", "不详", "无名")
# Fragments of test and filler records, anywhere in the name (lower-cased).
JUNK_FRAGMENTS = ("test", "测试", "xxx")

ACTIVE = Customer.status == CustomerStatus.active.value

# customer kind -> measure -> number of active customers of that kind
KindCounts = dict[str, dict[str, int]]


def filled(column: Any) -> ColumnElement[bool]:
    """The column holds something other than NULL or blanks."""
    return and_(column.is_not(None), func.trim(column) != "")


def blank(column: Any) -> ColumnElement[bool]:
    """The column is NULL or blank."""
    return or_(column.is_(None), func.trim(column) == "")


def _outside(column: Any, values: list[str], *, nullable: bool) -> ColumnElement[bool]:
    """The column holds something other than the list's values (NULL is fine if nullable)."""
    if nullable:
        return and_(column.is_not(None), column.not_in(values))
    return or_(column.is_(None), column.not_in(values))


def _digits_only(column: Any, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        # GLOB runs in SQLite's C code; REGEXP there would call back into Python per row.
        glob = column.op("GLOB", is_comparison=True)
        return and_(glob("[0-9]*"), not_(glob("*[^0-9]*")))
    digits: ColumnElement[bool] = column.regexp_match("^[0-9]+$")
    return digits


def _junk_name(dialect: str) -> ColumnElement[bool]:
    # Evaluated for every active customer: each function call here costs about half a
    # second per million customers on SQLite, so only what the test needs is applied.
    lowered = func.lower(Customer.name)
    return or_(
        _digits_only(Customer.name, dialect),
        func.length(func.trim(Customer.name)) == 1,
        func.lower(func.trim(Customer.name)).in_(PLACEHOLDER_NAMES),
        *(lowered.like(f"%{fragment}%") for fragment in JUNK_FRAGMENTS),
    )


def column_checks(today: date, dialect: str) -> dict[str, ColumnElement[bool]]:
    """Measures that read the customer row alone, each a condition on it."""
    return {
        "name": filled(Customer.name),
        "kind": filled(Customer.kind),
        "email": Customer.email_bidx.is_not(None),
        "id_number": Customer.id_number_bidx.is_not(None),
        "credit_code": Customer.credit_code_bidx.is_not(None),
        "region": filled(Customer.region),
        "industry": filled(Customer.industry),
        "owner": Customer.owner_id.is_not(None),
        "birthday": Customer.birthday.is_not(None),
        "source": and_(filled(Customer.source), Customer.source != SourceChannel.other.value),
        "junk_name": _junk_name(dialect),
        "birthday_future": Customer.birthday > today,
        "birthday_before_1900": Customer.birthday < EARLIEST_BIRTHDAY,
        "kind_unknown": _outside(Customer.kind, [k.value for k in CustomerKind], nullable=False),
        "source_unknown": _outside(
            Customer.source, [s.value for s in SourceChannel], nullable=False
        ),
        "lifecycle_unknown": _outside(
            Customer.lifecycle_stage, [s.value for s in LifecycleStage], nullable=False
        ),
        "credit_rating_unknown": _outside(
            Customer.credit_rating, [c.value for c in CreditRating], nullable=True
        ),
    }


# A customer has an address fact when any of its addresses meets the condition.
ADDRESS_FACTS: dict[str, ColumnElement[bool]] = {
    "address_district": filled(CustomerAddress.district),
    "address_no_province": blank(CustomerAddress.province),
    "address_unparsed": blank(CustomerAddress.division_code),
}
_MOBILE = CustomerPhone.kind == PhoneKind.mobile.value
_LANDLINE = CustomerPhone.kind == PhoneKind.landline.value


def _has_address(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(CustomerAddress.customer_id == Customer.id, condition)


def _has_phone(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(CustomerPhone.customer_id == Customer.id, condition)


def landline_only() -> ColumnElement[bool]:
    """Phones on file, a landline among them, no mobile: no SMS reaches the customer."""
    return and_(_has_phone(_LANDLINE), not_(_has_phone(_MOBILE)))


def stale(cutoff: datetime) -> ColumnElement[bool]:
    """Not edited since the cut-off, and no shipment created since then either."""
    return and_(
        or_(Customer.updated_at.is_(None), Customer.updated_at < cutoff),
        not_(exists().where(Shipment.customer_id == Customer.id, Shipment.created_at >= cutoff)),
    )


def row_checks(today: date, dialect: str, cutoff: datetime) -> dict[str, ColumnElement[bool]]:
    """Every invalid-value measure and ``stale`` as a condition on a customer row.

    The same tests as :func:`count_by_kind`, in the form that finds example ids.
    """
    return {
        **column_checks(today, dialect),
        **{name: _has_address(cond) for name, cond in ADDRESS_FACTS.items()},
        # Counted for individuals only (see service.INVALID_SCOPES); examples likewise.
        "landline_only": and_(Customer.kind == CustomerKind.individual.value, landline_only()),
        "stale": stale(cutoff),
    }


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _any(condition: ColumnElement[bool]) -> Any:
    return func.max(case((condition, 1), else_=0))


_KIND = Customer.kind.label("customer_kind")  # not "kind": that is a measure's name


def _merge(into: KindCounts, stmt: Select[*tuple[Any, ...]], session: Session) -> None:
    for row in session.execute(stmt).mappings():
        counts = into.setdefault(row["customer_kind"], {})
        for key, value in row.items():
            if key != "customer_kind":
                counts[key] = int(value or 0)


def count_by_kind(session: Session, *, today: date, cutoff: datetime) -> KindCounts:
    """Every per-customer measure, counted over active customers and grouped by kind.

    ``n`` is the number of active customers; the others are named after the completeness
    field or invalid-value rule they measure, plus ``stale``.
    """
    dialect = session.get_bind().dialect.name
    counts: KindCounts = {}
    columns = column_checks(today, dialect)
    _merge(
        counts,
        select(
            _KIND,
            func.count().label("n"),
            *(_count_if(cond).label(name) for name, cond in columns.items()),
        )
        .where(ACTIVE)
        .group_by(_KIND),
        session,
    )

    addresses = (
        select(
            CustomerAddress.customer_id,
            *(_any(cond).label(name) for name, cond in ADDRESS_FACTS.items()),
        )
        .group_by(CustomerAddress.customer_id)
        .subquery("addresses")
    )
    _merge(
        counts,
        select(
            _KIND,
            func.count().label("address"),
            *(func.sum(addresses.c[name]).label(name) for name in ADDRESS_FACTS),
        )
        .join(addresses, addresses.c.customer_id == Customer.id)
        .where(ACTIVE)
        .group_by(_KIND),
        session,
    )

    phones = (
        select(
            CustomerPhone.customer_id,
            _any(_MOBILE).label("mobile"),
            _any(_LANDLINE).label("landline"),
        )
        .group_by(CustomerPhone.customer_id)
        .subquery("phones")
    )
    _merge(
        counts,
        select(
            _KIND,
            func.count().label("phone"),
            _count_if(and_(phones.c.landline == 1, phones.c.mobile == 0)).label("landline_only"),
        )
        .join(phones, phones.c.customer_id == Customer.id)
        .where(ACTIVE)
        .group_by(_KIND),
        session,
    )

    # EXISTS in a WHERE clause: a semi-join (anti-join for stale) on PostgreSQL.
    has_contact = exists().where(ContactPerson.customer_id == Customer.id)
    _merge(
        counts,
        select(_KIND, func.count().label("contacts")).where(ACTIVE, has_contact).group_by(_KIND),
        session,
    )
    _merge(
        counts,
        select(_KIND, func.count().label("stale")).where(ACTIVE, stale(cutoff)).group_by(_KIND),
        session,
    )
    return counts


def example_ids(
    session: Session, conditions: Mapping[str, ColumnElement[bool]]
) -> dict[str, list[int]]:
    """Up to 20 lowest ids of active customers per condition, in one round trip."""
    out: dict[str, list[int]] = {code: [] for code in conditions}
    if not conditions:
        return out
    parts = []
    for code, condition in conditions.items():
        first = (
            select(Customer.id)
            .where(ACTIVE, condition)
            .order_by(Customer.id)
            .limit(EXAMPLES)
            .subquery()
        )
        parts.append(select(literal(code).label("code"), first.c.id))
    for code, cid in session.execute(union_all(*parts)).all():
        out[code].append(int(cid))
    for ids in out.values():
        ids.sort()
    return out


def count_totals(session: Session, *, since: datetime) -> dict[str, tuple[int, int]]:
    """Per status: customers, and those created since ``since``."""
    stmt = select(Customer.status, func.count(), _count_if(Customer.created_at >= since)).group_by(
        Customer.status
    )
    return {status: (int(n), int(recent or 0)) for status, n, recent in session.execute(stmt)}


# --------------------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class _Keyed:
    """How one duplicate rule lists (key columns k0.., customer id ``cid``) of active customers."""

    rule: DuplicateRule
    build: Callable[[str], Select[*tuple[Any, ...]]]


def _repeated(column: Any) -> Select[*tuple[Any, ...]]:
    # Keys occurring more than once in the whole table, read from the column's index alone:
    # only their few rows are then joined to customers.
    return select(column).where(column.is_not(None)).group_by(column).having(func.count() > 1)


def _customer_key(column: Any) -> Callable[[str], Select[*tuple[Any, ...]]]:
    def build(dialect: str) -> Select[*tuple[Any, ...]]:
        return select(column.label("k0"), Customer.id.label("cid")).where(
            ACTIVE, column.in_(_repeated(column))
        )

    return build


def _phone_key(dialect: str) -> Select[*tuple[Any, ...]]:
    return (
        select(CustomerPhone.phone_bidx.label("k0"), CustomerPhone.customer_id.label("cid"))
        .join(Customer, Customer.id == CustomerPhone.customer_id)
        .where(ACTIVE, CustomerPhone.phone_bidx.in_(_repeated(CustomerPhone.phone_bidx)))
    )


def _name_district_key(dialect: str) -> Select[*tuple[Any, ...]]:
    a = CustomerAddress

    def exact(column: Any) -> Any:
        # Grouping needs equality only: byte order spares PostgreSQL a linguistic sort.
        return collate(column, "C") if dialect == "postgresql" else column

    # District names repeat across cities (朝阳区 in Beijing and Changchun, 鼓楼区 in five
    # cities), so the district is qualified by its province and city.
    return (
        select(
            exact(Customer.name).label("k0"),
            exact(func.coalesce(a.province, "")).label("k1"),
            exact(func.coalesce(a.city, "")).label("k2"),
            exact(a.district).label("k3"),
            Customer.id.label("cid"),
        )
        .join(a, a.customer_id == Customer.id)
        .where(ACTIVE, filled(a.district), filled(Customer.name))
    )


DUPLICATE_KEYS = (
    _Keyed(DuplicateRule.phone, _phone_key),
    _Keyed(DuplicateRule.email, _customer_key(Customer.email_bidx)),
    _Keyed(DuplicateRule.id_number, _customer_key(Customer.id_number_bidx)),
    _Keyed(DuplicateRule.credit_code, _customer_key(Customer.credit_code_bidx)),
    _Keyed(DuplicateRule.name_district, _name_district_key),
)


def duplicates(session: Session, rule: DuplicateRule) -> DuplicateFigures:
    """Groups of two or more distinct active customers sharing the rule's key.

    One statement: its first row (group 0) carries the number of groups and of distinct
    customers in them, the others the members of the first groups (lowest member id first).
    The rule's rows are read twice (to group them, then to list the groups' members); all
    later steps work on the members only. The key never leaves the database: groups are
    told apart by their rank.
    """
    keyed = next(k for k in DUPLICATE_KEYS if k.rule is rule)
    src = keyed.build(session.get_bind().dialect.name).cte(f"src_{rule.value}")
    names = [c.key for c in src.c if c.key != "cid"]

    def same_key(left: Any, right: Any) -> ColumnElement[bool]:
        return and_(*(left.c[k] == right.c[k] for k in names))

    members_of_key = func.count(src.c.cid.distinct())
    groups = (
        select(
            *(src.c[k] for k in names),
            members_of_key.label("n"),
            func.min(src.c.cid).label("first_id"),
        )
        .group_by(*(src.c[k] for k in names))
        .having(members_of_key > 1)
        .cte(f"groups_{rule.value}")
    )
    # Every (group, customer) pair once: a customer listing the same key twice (two
    # addresses in one district) is one member. Small next to the rule's rows.
    members = (
        select(src.c.cid, groups.c.n, groups.c.first_id, *(groups.c[k] for k in names))
        .select_from(src.join(groups, same_key(src, groups)))
        .distinct()
        .cte(f"members_{rule.value}")
    )
    counts = select(
        literal(0).label("g"),
        select(func.count()).select_from(groups).scalar_subquery().label("n"),
        select(func.count(members.c.cid.distinct())).scalar_subquery().label("cid"),
    )
    member_keys = [members.c[k] for k in names]
    ranked = select(
        members.c.cid,
        members.c.n,
        func.dense_rank().over(order_by=[members.c.first_id, *member_keys]).label("g"),
        func.row_number().over(partition_by=member_keys, order_by=members.c.cid).label("pos"),
    ).subquery("ranked")
    examples = select(ranked.c.g, ranked.c.n, ranked.c.cid).where(
        ranked.c.g <= EXAMPLE_GROUPS, ranked.c.pos <= GROUP_MEMBERS
    )

    total_groups = total_customers = 0
    by_group: dict[int, tuple[int, list[int]]] = {}
    for g, n, cid in session.execute(union_all(counts, examples)).all():
        if g == 0:
            total_groups, total_customers = int(n or 0), int(cid or 0)
        else:
            by_group.setdefault(int(g), (int(n), []))[1].append(int(cid))
    return DuplicateFigures(
        rule=rule,
        groups=total_groups,
        customers=total_customers,
        examples=[
            DuplicateGroup(size=n, customer_ids=sorted(ids))
            for _, (n, ids) in sorted(by_group.items())
        ],
    )
