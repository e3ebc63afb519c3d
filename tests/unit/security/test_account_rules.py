"""Password policy, lockout lengths, address masking and TOTP steps, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from guanxi.core import clock
from guanxi.core.errors import ValidationFailed
from guanxi.security import totp
from guanxi.security.lockout import LoginPolicy
from guanxi.security.passwords import PasswordPolicy, breached_passwords
from guanxi.security.sessions import mask_address

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_the_shipped_breached_list_is_read_whole() -> None:
    words = breached_passwords()
    assert len(words) == 96_518
    assert {"123456", "password", "qwertyuiop", "1234567890"} <= words


@pytest.mark.parametrize(
    ("password", "username", "codes"),
    [
        ("Tr0ub4dor&3x!", "wangwu", []),
        ("short1!", "wangwu", ["password_too_short"]),
        ("wangwu-2026-spring", "WangWu", ["password_has_username"]),
        ("QWERTYUIOP", "wangwu", ["password_breached"]),
        ("abc123", "abc", ["password_too_short", "password_has_username", "password_breached"]),
    ],
)
def test_password_policy(password: str, username: str, codes: list[str]) -> None:
    problems = PasswordPolicy(min_length=10).problems(password, username=username)
    assert [p.code for p in problems] == codes
    assert all(p.loc == ("password",) for p in problems)


def test_policy_names_the_field_and_the_length() -> None:
    with pytest.raises(ValidationFailed) as caught:
        PasswordPolicy(min_length=12).check("Tr0ub4dor&3", username="li", field="new_password")
    [error] = caught.value.errors
    assert (error.loc, error.code, error.params) == (
        ("new_password",),
        "password_too_short",
        {"min_length": 12},
    )


def test_lockouts_double_up_to_a_day() -> None:
    policy = LoginPolicy(lockout_minutes=15)
    assert [policy.lock_length(n) for n in (1, 2, 3, 4)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
    ]
    assert policy.lock_length(12) == timedelta(days=1)


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("203.0.113.77", "203.0.113.*"),
        ("2001:db8:1:2::7", "2001:db8:1:*"),
        ("testclient", "testclient"),
        (None, None),
    ],
)
def test_addresses_are_masked_before_storage(address: str | None, masked: str | None) -> None:
    assert mask_address(address) == masked


def test_a_code_is_accepted_once_and_only_near_its_step() -> None:
    secret = pyotp.random_base32()
    step = int(T0.timestamp()) // 30
    code = pyotp.TOTP(secret).at(T0)
    with clock.frozen(T0):
        assert totp._matching_step(secret, code, None) == step
        # The same code again (its step already used) is refused: no replay.
        assert totp._matching_step(secret, code, step) is None
        assert totp._matching_step(secret, "12345", None) is None
    # One step late still passes (clock drift); two steps late does not.
    with clock.frozen(T0 + timedelta(seconds=30)):
        assert totp._matching_step(secret, code, None) == step
    with clock.frozen(T0 + timedelta(seconds=60)):
        assert totp._matching_step(secret, code, None) is None
