"""Fixed lists of the loyalty domain, each value with a translatable label."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class PointsKind(StrEnum):
    """What a ledger line records."""

    earn = "earn"  # per shipment, by the earn rules
    bonus = "bonus"  # a campaign or goodwill bonus
    adjust = "adjust"  # a manual correction with a reason (signed)
    redeem = "redeem"  # spent (for a coupon, at an outlet)
    expire = "expire"  # expired, oldest points first


CREDITS = (PointsKind.earn.value, PointsKind.bonus.value)


class TierReason(StrEnum):
    """Why a member's tier history has a line."""

    joined = "joined"
    upgrade = "upgrade"
    grace_started = "grace_started"
    grace_cancelled = "grace_cancelled"
    downgrade = "downgrade"


class CouponKind(StrEnum):
    """What a coupon takes off."""

    amount_off = "amount_off"
    percent_off = "percent_off"
    free_service = "free_service"


class CouponStatus(StrEnum):
    """Where a coupon stands."""

    issued = "issued"
    redeemed = "redeemed"
    expired = "expired"
    void = "void"


class FreeService(StrEnum):
    """Value-added services a coupon can make free."""

    insurance = "insurance"  # 保价
    door_delivery = "door_delivery"  # 送货上门
    signed_receipt = "signed_receipt"  # 签单返还
    packaging = "packaging"  # 包装


LABELS: dict[str, str] = {
    "earn": N_("Earned"),
    "bonus": N_("Bonus"),
    "adjust": N_("Adjustment"),
    "redeem": N_("Redeemed"),
    "expire": N_("Expired"),
    "joined": N_("Joined"),
    "upgrade": N_("Upgraded"),
    "grace_started": N_("Grace period started"),
    "grace_cancelled": N_("Grace period cancelled"),
    "downgrade": N_("Downgraded"),
    "amount_off": N_("Amount off"),
    "percent_off": N_("Percent off"),
    "free_service": N_("Free service"),
    "issued": N_("Issued"),
    "redeemed": N_("Used"),
    "expired": N_("Expired"),
    "void": N_("Void"),
    "insurance": N_("Insured value (保价)"),
    "door_delivery": N_("Door delivery"),
    "signed_receipt": N_("Signed-receipt return"),
    "packaging": N_("Packaging"),
    "shipment": N_("First shipment"),
    "agent": N_("Enrolled by an agent"),
}
