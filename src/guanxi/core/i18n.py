"""Translations (Babel catalogues, zh_CN and en) and language negotiation.

Messages are written in English in the code and templates; ``locale/zh_CN/.../messages.po``
holds the Chinese. Catalogues are read from the .po files at start-up (no compile step to
forget when installing from a checkout).
"""

from __future__ import annotations

import io
import logging
from functools import cache
from gettext import NullTranslations
from importlib import resources
from typing import Any

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

log = logging.getLogger("guanxi.i18n")
LANGUAGES = ("zh_CN", "en")
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}


def N_(message: str) -> str:  # noqa: N802 - the conventional marker name
    """Mark a string for extraction without translating it here."""
    return message


@cache
def translations(lang: str) -> NullTranslations:
    """The gettext catalogue of a language; English is the source language."""
    if lang not in LANGUAGES or lang == "en":
        return NullTranslations()
    po = resources.files("guanxi") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        # A broken install should show English, not fail every request; tests catch it.
        log.error("translation catalogue missing: %s", po)
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def gettext(lang: str, message: str, **params: Any) -> str:
    """Translate ``message`` into ``lang`` and fill ``{name}`` placeholders."""
    text = translations(lang).gettext(message)
    return text.format(**params) if params else text


def normalise_language(value: str | None) -> str | None:
    """Map ``zh``, ``zh-CN``, ``zh_Hans_CN``, ``en-US`` ... onto a supported language."""
    if not value:
        return None
    v = value.replace("-", "_").lower()
    if v.startswith("zh"):
        return "zh_CN"
    if v.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None, default: str) -> str:
    """Pick a supported language from an ``Accept-Language`` header."""
    if not header:
        return default
    prefs = []
    for part in header.split(","):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        prefs.append((weight, lang.strip()))
    prefs.sort(key=lambda p: -p[0])
    chosen = negotiate_locale([p[1].replace("-", "_") for p in prefs], ["zh_CN", "zh", "en"])
    return normalise_language(chosen) or default


def locale_of(lang: str) -> Locale:
    """The Babel locale for number and date formatting."""
    return Locale.parse(lang)
