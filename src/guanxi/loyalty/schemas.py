"""JSON shapes of the loyalty programme: members, ledger lines, tier history, coupons and
their templates, the tier report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import BodyId
from guanxi.loyalty.enums import CouponKind, FreeService

Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
TemplateCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_\-]{0,39}$")
]
Name100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Points = Annotated[int, Field(ge=1, le=10_000_000)]


class EnrolIn(BaseModel):
    """Make a customer a member (an agent enrolling them before a first shipment)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: BodyId


class AdjustIn(BaseModel):
    """A manual correction of a member's points, with the reason (signed, never zero).

    ``key`` makes a retried request add nothing (any text unique to this correction)."""

    model_config = ConfigDict(extra="forbid")

    points: Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
    reason: Reason
    key: Key | None = None


class BonusIn(BaseModel):
    """Bonus points (campaign, goodwill), once per ``key``."""

    model_config = ConfigDict(extra="forbid")

    points: Points
    reason: Reason
    key: Key


class RedeemIn(BaseModel):
    """Points spent for the customer (at an outlet, on an order): ``reference`` names the
    order or waybill; ``key`` makes a retry spend nothing twice."""

    model_config = ConfigDict(extra="forbid")

    points: Points
    reference: Reference
    key: Key | None = None


class BuyCouponIn(BaseModel):
    """Buy a coupon with points (the template's points price), once per ``key``."""

    model_config = ConfigDict(extra="forbid")

    template_code: TemplateCode
    key: Key | None = None


class PointsEntryRead(BaseModel):
    """One ledger line."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    kind: str
    points: int
    source_key: str
    occurred_at: datetime
    expires_at: datetime | None
    shipment_id: int | None
    reason: str | None
    reference: str | None
    actor_id: int | None


class TierChangeRead(BaseModel):
    """One step of a member's tier history."""

    model_config = ConfigDict(from_attributes=True)

    from_tier: str | None
    to_tier: str
    reason: str
    at: datetime
    spend_fen: int
    shipments: int


class ExpiringRead(BaseModel):
    """Points that will expire at a moment unless spent before."""

    at: datetime
    points: int


class ProgressRead(BaseModel):
    """How far the member's window figures are from the next tier."""

    next_tier: str | None
    next_tier_name: str | None
    spend_fen: int
    shipments: int
    spend_needed_fen: int | None
    shipments_needed: int | None
    # 0..100: the larger of the spend and shipment shares of the next tier's threshold.
    percent: int


class MemberRead(BaseModel):
    """A member as the 360 view and the API show them."""

    customer_id: int
    customer_name: str
    tier: str
    tier_name: str
    tier_since: datetime
    joined_at: datetime
    downgrade_due_at: datetime | None
    downgrade_to: str | None
    balance: int
    lifetime_points: int
    enrolled_via: str
    discount_percent: int
    priority_service: bool
    progress: ProgressRead
    expiring: list[ExpiringRead]


class MemberRow(BaseModel):
    """A line of the members list."""

    customer_id: int
    customer_name: str
    tier: str
    balance: int
    lifetime_points: int
    joined_at: datetime
    downgrade_due_at: datetime | None


class MemberPage(BaseModel):
    """A page of members; ``next`` continues the list."""

    items: list[MemberRow]
    next: int | None


class BalanceCheckRead(BaseModel):
    """The ledger == balances check."""

    ok: bool
    members: int
    entries: int
    balance_total: int
    ledger_total: int
    differences: list[tuple[int, int, int]]
    lifetime_differences: list[tuple[int, int, int]]


class CouponTemplateIn(BaseModel):
    """A coupon template as an administrator writes it.

    Validity: a fixed window (``valid_from``, ``valid_until``) or ``valid_days`` from
    issue. ``eligible_tiers`` empty: anyone; otherwise only members of those tiers (an
    exclusive offer). ``points_price``: members may buy it with points.
    """

    model_config = ConfigDict(extra="forbid")

    code: TemplateCode
    name_zh: Name100
    name_en: Name100
    kind: CouponKind
    amount_off_fen: Annotated[int, Field(ge=1, le=10**9)] | None = None
    percent_off: Annotated[int, Field(ge=1, le=99)] | None = None
    free_service: FreeService | None = None
    min_spend_fen: Annotated[int, Field(ge=0, le=10**10)] = 0
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    valid_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    total_limit: Annotated[int, Field(ge=1, le=10**8)] | None = None
    eligible_tiers: list[Annotated[str, StringConstraints(max_length=20)]] = Field(
        default_factory=list, max_length=10
    )
    points_price: Annotated[int, Field(ge=1, le=10**7)] | None = None
    active: bool = True


class CouponTemplateRead(BaseModel):
    """A coupon template with how many were issued."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name_zh: str
    name_en: str
    kind: str
    amount_off_fen: int | None
    percent_off: int | None
    free_service: str | None
    min_spend_fen: int
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    total_limit: int | None
    issued_count: int
    eligible_tiers: list[str]
    points_price: int | None
    active: bool


class IssueIn(BaseModel):
    """Issue coupons of a template to one audience: a list of customers, the members of
    a tier, or an analytics segment. ``source_key`` names the occasion (a campaign, a
    goodwill gesture): issuing again with the same key gives nobody a second coupon."""

    model_config = ConfigDict(extra="forbid")

    template_code: TemplateCode
    source_key: Key
    customer_ids: list[BodyId] = Field(default_factory=list, max_length=10_000)
    tier: Annotated[str, StringConstraints(max_length=20)] | None = None
    segment: Annotated[str, StringConstraints(max_length=20)] | None = None


class IssueResult(BaseModel):
    """What an issue did: coupons per customer (already issued ones included)."""

    template_code: str
    issued: int
    coupons: dict[int, str]


class CouponRedeemIn(BaseModel):
    """Redeem a coupon on an order or waybill; ``amount_fen`` (the order's amount) is
    checked against the minimum spend and gives the discount."""

    model_config = ConfigDict(extra="forbid")

    reference: Reference
    amount_fen: Annotated[int, Field(ge=0, le=10**10)] | None = None
    customer_id: BodyId | None = None


class CouponVoidIn(BaseModel):
    """Void a coupon, saying why."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class CouponRead(BaseModel):
    """A coupon."""

    code: str
    display_code: str
    template_code: str
    template_name: str
    kind: str
    customer_id: int
    status: Literal["issued", "redeemed", "expired", "void"]
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime
    redeemed_at: datetime | None
    redeemed_ref: str | None
    discount_fen: int | None
    void_reason: str | None
    usable: bool


class MonthRow(BaseModel):
    """One month of the tier report."""

    month: str
    upgrades: int
    downgrades: int
    issued: int
    redeemed: int
    expired: int


class TierCount(BaseModel):
    """Members in one tier."""

    tier: str
    name: str
    members: int
    balance: int


class ReportRead(BaseModel):
    """The tier report: members per tier, movement and points per month, the points
    liability (every unspent point), coupons outstanding."""

    tiers: list[TierCount]
    months: list[MonthRow]
    members: int
    liability_points: int
    expiring_30d: int
    coupons_outstanding: int
    # When the months and the expiring figure were computed (the daily job's, or now).
    figures_as_of: datetime
