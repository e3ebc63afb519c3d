"""Coupon codes people read out on the phone and type at an outlet counter.

Twelve characters from an alphabet without look-alikes (no 0/O, 1/I/L... only 2-9 and
A-Z minus I and O: 32 symbols), shown as ``ABCD-EFGH-JKLM``. Eleven are random
(``secrets``: 55 bits, so guessing a live code is hopeless) and the last is a Luhn mod 32
check character, so a mistyped code is told apart from an unknown one before any lookup.
Uniqueness is the database's (a unique index); the issuer draws again on a clash.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
N = len(ALPHABET)
LENGTH = 12


def check_char(body: str) -> str:
    """The Luhn mod N check character of ``body``."""
    factor = 2
    total = 0
    for char in reversed(body):
        addend = factor * _INDEX[char]
        factor = 1 if factor == 2 else 2
        total += addend // N + addend % N
    return ALPHABET[(N - total % N) % N]


def new_code() -> str:
    """A fresh random code (normalised form, no dashes)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH - 1))
    return body + check_char(body)


def normalise(typed: str) -> str | None:
    """A typed code in its stored form (upper case, no spaces or dashes), or None when it
    cannot be a code: wrong length, a character outside the alphabet, or a wrong check
    character (a typo)."""
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != LENGTH or any(c not in _INDEX for c in code):
        return None
    if check_char(code[:-1]) != code[-1]:
        return None
    return code


def display(code: str) -> str:
    """``ABCDEFGHJKLM`` -> ``ABCD-EFGH-JKLM``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
