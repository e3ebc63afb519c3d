"""Field encryption, blind index and masking."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from guanxi.security.crypto import FieldCipher
from guanxi.security.masking import mask_credit_code, mask_email, mask_id_number, mask_phone

OLD = FieldCipher({"k1": b"1" * 32}, "k1", b"b" * 32)
NEW = FieldCipher({"k1": b"1" * 32, "k2": b"2" * 32}, "k2", b"b" * 32)


def test_round_trip_with_random_nonce() -> None:
    a = OLD.encrypt("phone", "+8613912345678")
    b = OLD.encrypt("phone", "+8613912345678")
    assert a != b
    assert a.startswith("k1$")
    assert OLD.decrypt("phone", a) == OLD.decrypt("phone", b) == "+8613912345678"
    assert "13912345678" not in a


def test_rotation_keeps_old_values_readable() -> None:
    old_value = OLD.encrypt("email", "a@b.cn")
    new_value = NEW.encrypt("email", "a@b.cn")
    assert NEW.key_id_of(old_value) == "k1"
    assert NEW.key_id_of(new_value) == "k2"
    assert NEW.decrypt("email", old_value) == NEW.decrypt("email", new_value) == "a@b.cn"


def test_value_moved_to_another_column_does_not_decrypt() -> None:
    value = OLD.encrypt("phone", "+8613912345678")
    with pytest.raises(InvalidTag):
        OLD.decrypt("id_number", value)


def test_blind_index_is_keyed_and_per_field() -> None:
    other = FieldCipher({"k1": b"1" * 32}, "k1", b"c" * 32)
    assert OLD.blind_index("phone", "+8613912345678") == OLD.blind_index("phone", "+8613912345678")
    assert OLD.blind_index("phone", "+8613912345678") != other.blind_index(
        "phone", "+8613912345678"
    )
    assert OLD.blind_index("phone", "x") != OLD.blind_index("email", "x")
    assert len(OLD.blind_index("phone", "x")) == 32


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher({"k": b"short"}, "k", b"b" * 32)
    with pytest.raises(ValueError, match="not among"):
        FieldCipher({"k": b"1" * 32}, "missing", b"b" * 32)


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+8613912345678", "139****5678"),
        ("+8657188881234", "0571-****1234"),
        ("+861088881234", "010-****1234"),
        ("+85291234567", "****4567"),
    ],
)
def test_mask_phone(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


def test_mask_identifiers() -> None:
    assert mask_email("zhang.san@example.com") == "z***@example.com"
    assert mask_id_number("33011319800115123X") == "330***********123X"
    assert mask_credit_code("91330110MA2H3X4Y5K") == "91************4Y5K"
