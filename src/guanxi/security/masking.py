"""Masking of personal identifiers for every surface where the viewer may not reveal them."""

from __future__ import annotations

# Two-digit long-distance codes (Beijing 010, Shanghai 021, ...); all others have three digits.
_SHORT_AREA = {"10", "20", "21", "22", "23", "24", "25", "27", "28", "29"}


def mask_phone(e164: str) -> str:
    """``+8613912345678`` -> ``139****5678``; ``+8657188881234`` -> ``0571-****1234``.

    Numbers outside China show only their last four digits.
    """
    if not e164.startswith("+86"):
        return "****" + e164[-4:] if len(e164) > 4 else "****"
    digits = e164[3:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    area = digits[:2] if digits[:2] in _SHORT_AREA else digits[:3]
    return f"0{area}-****{digits[-4:]}"


def mask_email(email: str) -> str:
    """``zhang.san@example.com`` -> ``z***@example.com``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_id_number(value: str) -> str:
    """Resident ID: first 3 and last 4 visible (``330**********1234``)."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


def mask_credit_code(value: str) -> str:
    """Credit code: first 2 and last 4 visible; the middle identifies the registrant."""
    return value[:2] + "*" * (len(value) - 6) + value[-4:] if len(value) > 6 else "*" * len(value)


def mask_name(name: str) -> str:
    """A person's or company's name on a printed waybill (隐私面单): the first character and
    two stars (``张三丰`` -> ``张**``), so the length gives nothing away."""
    name = name.strip()
    return f"{name[:1]}**" if name else ""


def shorten_address(detail: str, keep: int = 4) -> str:
    """The street part of an address cut to its first ``keep`` characters (``文三路 90 号
    3 单元 501`` -> ``文三路 …``): enough for the courier's sorting, the rest is read
    from the system at delivery."""
    detail = detail.strip()
    return detail if len(detail) <= keep else detail[:keep] + "…"


MASKERS = {
    "phone": mask_phone,
    "email": mask_email,
    "id_number": mask_id_number,
    "credit_code": mask_credit_code,
}
