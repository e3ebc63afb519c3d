"""Small helpers shared by tests: valid identifiers built with python-stdnum's check digits."""

from __future__ import annotations

from stdnum.cn import ric, uscc


def resident_id(area: str = "330113", birth: str = "19800115", seq: str = "123") -> str:
    """A resident ID number with a correct check digit."""
    body = area + birth + seq
    return body + ric.calc_check_digit(body + "0")  # stdnum drops the last character


def credit_code(body: str = "91330110MA2H3X4Y5") -> str:
    """A unified social credit code with a correct check character."""
    return body + uscc.calc_check_digit(body)
