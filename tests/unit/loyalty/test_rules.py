"""The loyalty rules that need no database: points per shipment, tier qualification and
the evaluation decision, expiry dates, policy validation, coupon codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from guanxi.loyalty import codes
from guanxi.loyalty.clock import expiry_of
from guanxi.loyalty.enums import TierReason
from guanxi.loyalty.policy import EarnRule, LoyaltyPolicy, TierRule, policy_errors
from guanxi.loyalty.tiers import Figures, decide

POLICY = LoyaltyPolicy()
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- earning


@pytest.mark.parametrize(
    ("fee", "service", "points"),
    [
        (1234, "standard", 12),  # 12.34 yuan x 1 -> 12.34 -> 12
        (1234, "express", 18),  # x 1.5 -> 18.51 -> 18
        (1234, "cold_chain", 24),  # x 2 -> 24.68 -> 24
        (1234, None, 12),  # unknown service type: x 1
        (1234, "teleport", 12),  # a type the policy does not know: x 1
        (99, "standard", 0),  # under one yuan
        (0, "express", 0),
    ],
)
def test_points_per_shipment_by_default_rules(fee: int, service: str | None, points: int) -> None:
    assert POLICY.earn.points_for(fee, service) == points


def test_points_with_rate_bonus_and_minimum_fee() -> None:
    rule = EarnRule(
        points_per_yuan=Decimal("0.5"),
        multipliers={"express": Decimal("1.25")},  # type: ignore[dict-item]
        shipment_bonus=3,
        min_fee_fen=500,
    )
    # 20.00 yuan x 0.5 x 1.25 = 12.5 -> 12, plus 3
    assert rule.points_for(2000, "express") == 15
    # 20.00 x 0.5 = 10, plus 3
    assert rule.points_for(2000, "standard") == 13
    # below the minimum fee: nothing, not even the bonus
    assert rule.points_for(499, "express") == 0
    assert rule.points_for(500, "standard") == 5  # 2.5 -> 2, plus 3


# --------------------------------------------------------------------------- tiers


@pytest.mark.parametrize(
    ("spend", "count", "tier"),
    [
        (0, 0, "member"),
        (29_999, 11, "member"),
        (30_000, 0, "silver"),  # spend alone
        (0, 12, "silver"),  # shipments alone
        (99_999, 35, "silver"),
        (100_000, 1, "gold"),
        (299_999, 99, "gold"),
        (0, 100, "diamond"),
    ],
)
def test_qualified_tier_by_spend_or_shipments(spend: int, count: int, tier: str) -> None:
    assert POLICY.qualified(spend, count).code == tier


def test_require_both_thresholds() -> None:
    rule = TierRule(
        code="vip", name_zh="贵宾", name_en="VIP", min_spend_fen=1000, min_shipments=2,
        require_both=True,
    )  # fmt: skip
    assert not rule.qualifies(1000, 1)
    assert not rule.qualifies(999, 5)
    assert rule.qualifies(1000, 2)


def test_decisions_upgrade_grace_cancel_downgrade() -> None:
    gold = Figures(100_000, 0)
    silver = Figures(30_000, 0)
    nothing = Figures(0, 0)
    # Upgrade at once, also past a running grace period.
    up = decide(POLICY, tier="silver", downgrade_due_at=None, figures=gold, now=NOW)
    assert up is not None
    assert (up.reason, up.to_tier, up.changes_tier) == (TierReason.upgrade, "gold", True)
    # The same tier: nothing; during a grace period: the downgrade is cancelled.
    assert decide(POLICY, tier="gold", downgrade_due_at=None, figures=gold, now=NOW) is None
    due = NOW + timedelta(days=10)
    cancel = decide(POLICY, tier="gold", downgrade_due_at=due, figures=gold, now=NOW)
    assert cancel is not None
    assert (cancel.reason, cancel.downgrade_due_at, cancel.changes_tier) == (
        TierReason.grace_cancelled,
        None,
        False,
    )
    # Lower: the grace period starts, 90 days.
    start = decide(POLICY, tier="gold", downgrade_due_at=None, figures=silver, now=NOW)
    assert start is not None
    assert start.reason is TierReason.grace_started
    assert start.downgrade_due_at == NOW + timedelta(days=90)
    assert start.to_tier == "silver"
    assert not start.changes_tier
    # Still lower before the end: nothing; at the end: down to what the figures reach.
    assert decide(POLICY, tier="gold", downgrade_due_at=due, figures=nothing, now=NOW) is None
    down = decide(POLICY, tier="gold", downgrade_due_at=due, figures=nothing, now=due)
    assert down is not None
    assert (down.reason, down.to_tier, down.changes_tier) == (TierReason.downgrade, "member", True)
    # Without a grace period the downgrade is immediate.
    no_grace = POLICY.model_copy(update={"grace_days": 0})
    now_down = decide(no_grace, tier="gold", downgrade_due_at=None, figures=silver, now=NOW)
    assert now_down is not None
    assert (now_down.reason, now_down.to_tier) == (TierReason.downgrade, "silver")


def test_a_tier_removed_from_the_policy_is_replaced_at_once() -> None:
    moved = decide(POLICY, tier="platinum", downgrade_due_at=None, figures=Figures(), now=NOW)
    assert moved is not None
    assert (moved.to_tier, moved.changes_tier) == ("member", True)


# --------------------------------------------------------------------------- expiry


@pytest.mark.parametrize(
    ("earned", "months", "expires"),
    [
        # 2026-03-05 18:00 local -> end of March 2028 local = 2028-03-31 16:00 UTC
        (datetime(2026, 3, 5, 10, tzinfo=UTC), 24, datetime(2028, 3, 31, 16, tzinfo=UTC)),
        # 2026-01-31 20:00 UTC is already 1 February in Shanghai -> end of February 2027
        (datetime(2026, 1, 31, 20, tzinfo=UTC), 12, datetime(2027, 2, 28, 16, tzinfo=UTC)),
        # December + 1 month -> end of January next year
        (datetime(2026, 12, 10, tzinfo=UTC), 1, datetime(2027, 1, 31, 16, tzinfo=UTC)),
    ],
)
def test_points_expire_at_the_end_of_the_month(
    earned: datetime, months: int, expires: datetime
) -> None:
    assert expiry_of(earned, months) == expires


# --------------------------------------------------------------------------- policy


def test_policy_rules_between_fields_name_the_field() -> None:
    bad = LoyaltyPolicy(
        tiers=[
            TierRule(code="base", name_zh="基础", name_en="Base", min_shipments=5),
            TierRule(code="plus", name_zh="加", name_en="Plus", min_spend_fen=1000),
            TierRule(code="plus", name_zh="加2", name_en="Plus 2", min_spend_fen=900),
            TierRule(code="top", name_zh="顶", name_en="Top", coupon_templates=["nope"]),
        ]
    )
    found = {(".".join(map(str, e.loc)), e.code) for e in policy_errors(bad, known_templates=set())}
    assert found == {
        ("tiers.0.min_shipments", "loyalty_entry_threshold"),
        ("tiers.2.code", "loyalty_tier_twice"),
        ("tiers.2.min_spend_fen", "loyalty_tier_order"),
        ("tiers.3.min_spend_fen", "loyalty_tier_threshold"),
        ("tiers.3.coupon_templates.0", "coupon_template_unknown"),
    }
    assert policy_errors(POLICY, known_templates=set()) == []


def test_policy_field_limits_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        LoyaltyPolicy.model_validate(
            {"grace_days": -1, "earn": {"points_per_yuan": "1.234"}, "tiers": []}
        )
    locs = {".".join(map(str, e["loc"])) for e in info.value.errors()}
    assert locs == {"grace_days", "earn.points_per_yuan", "tiers"}


# --------------------------------------------------------------------------- codes


def test_new_codes_are_valid_and_readable() -> None:
    seen = {codes.new_code() for _ in range(2000)}
    assert len(seen) == 2000
    for code in list(seen)[:200]:
        assert len(code) == 12
        assert not set(code) & set("01IOL") - set(codes.ALPHABET)
        assert codes.normalise(code) == code
        assert codes.normalise(codes.display(code).lower()) == code


@given(st.text(alphabet=codes.ALPHABET, min_size=11, max_size=11), st.integers(0, 10), st.data())
def test_a_single_typo_is_caught(body: str, position: int, data: st.DataObject) -> None:
    code = body + codes.check_char(body)
    wrong = data.draw(st.sampled_from([c for c in codes.ALPHABET if c != code[position]]))
    typo = code[:position] + wrong + code[position + 1 :]
    assert codes.normalise(typo) is None


def test_codes_refuse_look_alikes_and_wrong_length() -> None:
    assert codes.normalise("ABCD-EFGH-JKL0") is None
    assert codes.normalise("ABCD-EFGH") is None
    assert codes.normalise("") is None
