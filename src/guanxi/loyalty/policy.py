"""The membership programme's rules an administrator sets (会员政策): the tiers in order
with what qualifies for each and what each grants, the rolling window and the downgrade
grace period, how points are earned, and when they expire.

Stored as one validated JSON document (``loyalty_setting`` key ``policy``) and saved with
``audit.service.save_setting`` (audited with what changed). Per-field limits are pydantic
constraints; the rules between fields (the entry tier, ascending thresholds, unique codes,
known coupon templates) are checked by :func:`policy_errors` with the offending field's
path, so a refusal always names the field.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import save_setting
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.loyalty.models import CouponTemplate, LoyaltySetting
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.shipments.enums import ServiceType

POLICY_KEY = "policy"

TierCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,19}$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Multiplier = Annotated[Decimal, Field(gt=0, le=10, decimal_places=2)]


class TierRule(BaseModel):
    """One tier: who qualifies (over the rolling window) and what it grants.

    Qualification: spend of at least ``min_spend_fen`` or at least ``min_shipments``
    shipments (both, with ``require_both``); a threshold left empty is not asked for. The
    first tier is the entry tier and has none.
    """

    model_config = ConfigDict(extra="forbid")

    code: TierCode
    name_zh: Name
    name_en: Name
    min_spend_fen: Annotated[int, Field(ge=0, le=10**13)] | None = None
    min_shipments: Annotated[int, Field(ge=0, le=10**7)] | None = None
    require_both: bool = False
    discount_percent: Annotated[int, Field(ge=0, le=90)] = 0
    priority_service: bool = False
    # Exclusive offers: coupon templates only this tier (and those named there) may get.
    coupon_templates: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        default_factory=list, max_length=20
    )

    def qualifies(self, spend_fen: int, shipments: int) -> bool:
        """Whether window figures reach this tier."""
        checks = []
        if self.min_spend_fen is not None:
            checks.append(spend_fen >= self.min_spend_fen)
        if self.min_shipments is not None:
            checks.append(shipments >= self.min_shipments)
        if not checks:
            return True
        return all(checks) if self.require_both else any(checks)

    def name(self, lang: str) -> str:
        """The tier's name in ``lang``."""
        return self.name_zh if lang.startswith("zh") else self.name_en


def _default_multipliers() -> dict[ServiceType, Decimal]:
    return {
        ServiceType.express: Decimal("1.5"),
        ServiceType.same_day: Decimal("1.5"),
        ServiceType.cold_chain: Decimal("2"),
        ServiceType.international: Decimal("2"),
    }


class EarnRule(BaseModel):
    """Points per shipment: ``points_per_yuan`` of the fee times the service type's
    multiplier (1 when not listed), rounded down, plus ``shipment_bonus``; shipments with
    a fee below ``min_fee_fen`` earn nothing."""

    model_config = ConfigDict(extra="forbid")

    points_per_yuan: Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)] = Decimal(1)
    multipliers: dict[ServiceType, Multiplier] = Field(default_factory=_default_multipliers)
    shipment_bonus: Annotated[int, Field(ge=0, le=10_000)] = 0
    min_fee_fen: Annotated[int, Field(ge=0, le=10**9)] = 0

    @property
    def rate_hundredths(self) -> int:
        """Points per yuan in hundredths (1.25 -> 125): integer arithmetic in SQL."""
        return int(self.points_per_yuan * 100)

    def multiplier_hundredths(self, service_type: str | None) -> int:
        """The service type's multiplier in hundredths (x1.5 -> 150)."""
        if service_type is None:
            return 100
        try:
            return int(self.multipliers.get(ServiceType(service_type), Decimal(1)) * 100)
        except ValueError:
            return 100

    def points_for(self, fee_fen: int, service_type: str | None) -> int:
        """Points a shipment earns (the reference of the set-based accrual SQL)."""
        if fee_fen <= 0 or fee_fen < self.min_fee_fen:
            return 0
        base = fee_fen * self.rate_hundredths * self.multiplier_hundredths(service_type)
        # fen -> yuan (100) x rate hundredths (100) x multiplier hundredths (100)
        return base // 1_000_000 + self.shipment_bonus


def _default_tiers() -> list[TierRule]:
    return [
        TierRule(code="member", name_zh="普通会员", name_en="Member"),
        TierRule(
            code="silver",
            name_zh="银卡会员",
            name_en="Silver",
            min_spend_fen=30_000,
            min_shipments=12,
            discount_percent=2,
        ),
        TierRule(
            code="gold",
            name_zh="金卡会员",
            name_en="Gold",
            min_spend_fen=100_000,
            min_shipments=36,
            discount_percent=5,
            priority_service=True,
        ),
        TierRule(
            code="diamond",
            name_zh="钻石会员",
            name_en="Diamond",
            min_spend_fen=300_000,
            min_shipments=100,
            discount_percent=8,
            priority_service=True,
        ),
    ]


class LoyaltyPolicy(BaseModel):
    """Every rule of the programme, validated together."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[TierRule] = Field(default_factory=_default_tiers, min_length=1, max_length=10)
    # Qualification looks at shipments in the last ``window_days`` days.
    window_days: Annotated[int, Field(ge=30, le=1095)] = 365
    # A member who stops qualifying keeps the tier this long.
    grace_days: Annotated[int, Field(ge=0, le=730)] = 90
    earn: EarnRule = Field(default_factory=EarnRule)
    # Points earned in a month expire at the end of the same month this many months later.
    expiry_months: Annotated[int, Field(ge=1, le=120)] = 24
    # "Expiring soon" on the member's panel: within this many days.
    expiring_soon_days: Annotated[int, Field(ge=1, le=365)] = 30

    def tier(self, code: str) -> TierRule | None:
        """The rule of a tier code (None for a code no longer in the policy)."""
        return next((t for t in self.tiers if t.code == code), None)

    def rank(self, code: str) -> int:
        """The tier's position (0 = entry); an unknown code ranks as the entry tier."""
        return next((i for i, t in enumerate(self.tiers) if t.code == code), 0)

    def qualified(self, spend_fen: int, shipments: int) -> TierRule:
        """The highest tier the window figures reach."""
        best = self.tiers[0]
        for rule in self.tiers[1:]:
            if rule.qualifies(spend_fen, shipments):
                best = rule
        return best

    @property
    def entry(self) -> TierRule:
        """The tier every new member starts in."""
        return self.tiers[0]

    def priority_tiers(self) -> list[str]:
        """Codes of the tiers granting priority service in the desk."""
        return [t.code for t in self.tiers if t.priority_service]


def policy_errors(
    policy: LoyaltyPolicy, known_templates: set[str] | None = None
) -> list[FieldError]:
    """The rules between fields, each broken one with its field's path."""
    errors: list[FieldError] = []
    first = policy.tiers[0]
    for name in ("min_spend_fen", "min_shipments"):
        if getattr(first, name) not in (None, 0):
            errors.append(
                FieldError(
                    ("tiers", 0, name),
                    "loyalty_entry_threshold",
                    "The first tier is the entry tier: it has no threshold",
                )
            )
    seen: set[str] = set()
    for i, rule in enumerate(policy.tiers):
        if rule.code in seen:
            errors.append(
                FieldError(
                    ("tiers", i, "code"),
                    "loyalty_tier_twice",
                    "Two tiers have the code {code}",
                    {"code": rule.code},
                )
            )
        seen.add(rule.code)
        if i == 0:
            continue
        if rule.min_spend_fen is None and rule.min_shipments is None:
            errors.append(
                FieldError(
                    ("tiers", i, "min_spend_fen"),
                    "loyalty_tier_threshold",
                    "A tier above the entry tier needs a spend or a shipment threshold",
                )
            )
        before = policy.tiers[i - 1]
        for name in ("min_spend_fen", "min_shipments"):
            mine, theirs = getattr(rule, name), getattr(before, name)
            if mine is not None and theirs is not None and mine <= theirs:
                errors.append(
                    FieldError(
                        ("tiers", i, name),
                        "loyalty_tier_order",
                        "Must be higher than the tier below ({below})",
                        {"below": theirs},
                    )
                )
    if known_templates is not None:
        for i, rule in enumerate(policy.tiers):
            for j, code in enumerate(rule.coupon_templates):
                if code not in known_templates:
                    errors.append(
                        FieldError(
                            ("tiers", i, "coupon_templates", j),
                            "coupon_template_unknown",
                            "No such coupon template: {code}",
                            {"code": code},
                        )
                    )
    return errors


@lru_cache(maxsize=8)
def _parse(text: str) -> LoyaltyPolicy:
    return LoyaltyPolicy.model_validate_json(text)


DEFAULT_POLICY = LoyaltyPolicy()


def load_policy(session: Session) -> LoyaltyPolicy:
    """The policy in force (the defaults until an administrator saves one)."""
    row = session.get(LoyaltySetting, POLICY_KEY)
    return DEFAULT_POLICY if row is None else _parse(row.value)


def save_policy(session: Session, *, policy: LoyaltyPolicy, actor: User) -> LoyaltyPolicy:
    """Replace the policy after checking the rules between its fields; audited with what
    changed. New tier rules apply from the next evaluation (the daily job, or the next
    accrual for the members it touches); new earn rules to shipments accrued from now;
    a new expiry to points credited from now."""
    with write_transaction(session):
        known = set(session.scalars(select(CouponTemplate.code)))
        errors = policy_errors(policy, known)
        if errors:
            raise ValidationFailed(errors)
        text = policy.model_dump_json()
        save_setting(
            session,
            model=LoyaltySetting,
            key=POLICY_KEY,
            text=text,
            actor=actor_of(actor),
            user_id=actor.id,
            action="loyalty.policy_saved",
        )
    return _parse(text)
