"""Rendering pages in the user's language with the shared layout context."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from sqlalchemy import inspect

from guanxi.audit.labels import ACTION_LABELS
from guanxi.core import i18n
from guanxi.core.web import format_fen, iso_date, local_time, request_language, template_environment
from guanxi.customers.enums import CODED_FIELDS, FIELD_LABELS
from guanxi.customers.enums import LABELS as CUSTOMER_LABELS
from guanxi.dedupe.enums import LABELS as DEDUPE_LABELS
from guanxi.interactions.enums import LABELS as INTERACTION_LABELS
from guanxi.pool.enums import LABELS as POOL_LABELS
from guanxi.security.models import User
from guanxi.security.permissions import ROLE_LABELS
from guanxi.security.service import permissions_of
from guanxi.shipments.enums import LABELS as SHIPMENT_LABELS

LABELS = {
    **CUSTOMER_LABELS,
    **SHIPMENT_LABELS,
    **DEDUPE_LABELS,
    **INTERACTION_LABELS,
    **ACTION_LABELS,
    **ROLE_LABELS,
    **POOL_LABELS,
}


@cache
def environment() -> Environment:
    """The process-wide template environment."""
    return template_environment()


def _usable(request: Request, user: User | None) -> User | None:
    """The signed-in user, read again when a failed write rolled the request's session
    back (which expires every instance) and the session was closed before the error page
    is drawn: without this a refused form post (a 404 inside a service) answered 500."""
    if user is None:
        return None
    state = inspect(user)
    if state.session is not None or not state.expired_attributes or state.identity is None:
        return user
    with request.app.state.sessionmaker() as session:
        fresh: User | None = session.get(User, state.identity[0])
        if fresh is not None:
            fresh.token_scopes = user.token_scopes
    return fresh


def context(request: Request, **values: Any) -> dict[str, Any]:
    """The variables every page has: translation, user, permissions, CSRF token, helpers."""
    lang = request_language(request)
    tz = request.app.state.settings.timezone
    user = _usable(request, getattr(request.state, "user", None))

    def _(message: str, **params: Any) -> str:
        return i18n.gettext(lang, message, **params)

    def label(value: str | None) -> str:
        if value is None:
            return ""
        return i18n.gettext(lang, LABELS.get(str(value), str(value)))

    def field_name(key: str) -> str:
        return i18n.gettext(lang, FIELD_LABELS[key]) if key in FIELD_LABELS else key

    def field_value(key: str, value: Any) -> str:
        """An audited value for people: lists joined, codes translated, empty as a dash."""
        if value is None or value == [] or value == "":
            return "—"
        if isinstance(value, list):
            return "、".join(field_value(key, v) for v in value)
        if key in CODED_FIELDS:
            return label(str(value))
        return str(value)

    return {
        "request": request,
        "field_name": field_name,
        "field_value": field_value,
        "_": _,
        "gettext": _,
        "label": label,
        "lang": lang,
        "languages": i18n.LANGUAGE_NAMES,
        "user": user,
        "perms": set(permissions_of(user)) if user else set(),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "fen": format_fen,
        "local_time": lambda v, fmt="%Y-%m-%d %H:%M": local_time(v, tz, fmt),
        "iso_date": iso_date,
        **values,
    }


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render ``template`` with the shared context."""
    html = environment().get_template(template).render(context(request, **values))
    return HTMLResponse(html, status_code=status_code)


def render_error(request: Request, status: int) -> HTMLResponse:
    """The 403 / 404 page."""
    return render(request, "error.html", status_code=status, status=status)
