"""What the loyalty pages share: labels in the user's language, refusals as messages that
name the field, and form values turned into numbers without guessing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.core import i18n
from guanxi.core.errors import DomainError, ValidationFailed
from guanxi.core.web import (
    field_errors_from_pydantic,
    request_language,
    translate_code,
    translate_field_error,
)
from guanxi.loyalty.enums import LABELS
from guanxi.loyalty.messages import FIELD_NAMES


def labeller(request: Request) -> Callable[[str | None], str]:
    """``llabel(value)``: a loyalty code's label in the user's language."""
    lang = request_language(request)

    def llabel(value: str | None) -> str:
        if value is None:
            return ""
        return i18n.gettext(lang, LABELS.get(str(value), str(value)))

    return llabel


def field_name(lang: str, loc: tuple[str | int, ...]) -> str:
    """A field path for people: ``tiers.1.min_spend_fen`` -> ``Tier 2 · Spend threshold``."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        key = loc[i]
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(nxt, int) and str(key) in FIELD_NAMES:
            parts.append(f"{i18n.gettext(lang, FIELD_NAMES[str(key)])} {nxt + 1}")
            i += 2
            continue
        if isinstance(key, int):
            parts.append(str(key + 1))
        else:
            parts.append(i18n.gettext(lang, FIELD_NAMES.get(key, key)))
        i += 1
    return " · ".join(parts)


def refusal(request: Request, exc: Exception) -> list[str]:
    """Why a change was refused, one line per field, in the user's language."""
    lang = request_language(request)
    if isinstance(exc, ValidationError):
        errors = field_errors_from_pydantic(list(exc.errors()))
    elif isinstance(exc, ValidationFailed):
        errors = exc.errors
    elif isinstance(exc, DomainError):
        text = translate_code(exc.message, lang, exc.params) or i18n.gettext(
            lang, "The change was refused"
        )
        field = exc.params.get("field")
        return [_line(lang, field_name(lang, (field,)), text) if field else text]
    else:  # pragma: no cover - callers pass only the types above
        raise exc
    return [_line(lang, field_name(lang, e.loc), translate_field_error(e, lang)) for e in errors]


def _line(lang: str, field: str, message: str) -> str:
    """ "Field: message", punctuated for the language."""
    return i18n.gettext(lang, "{field}: {text}", field=field, text=message)


def text_of(form: FormData, name: str) -> str | None:
    """A form field's trimmed text, None when empty."""
    value = str(form.get(name) or "").strip()
    return value or None


def fen_of(form: FormData, name: str) -> int | str | None:
    """Yuan as typed ("12", "12.5") in fen; anything else is passed on to be refused by
    validation (which names the field)."""
    value = text_of(form, name)
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return value
    if amount != amount.quantize(Decimal("0.01")):
        return value
    return int(amount * 100)
