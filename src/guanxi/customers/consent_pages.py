"""The consent panel of the customer 360 view: the standing per purpose, the history,
and (for users who may edit customers) a form to record a consent given on the phone or
at the counter. Loaded by htmx into the 360 page, so the page's hot read stays as it is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core import i18n
from guanxi.core.errors import ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import field_errors_from_pydantic, request_language, translate_field_error
from guanxi.customers import consent
from guanxi.customers.schemas import ConsentUpdate
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.customer_write)]
_FIELDS = {
    "purpose": N_("Purpose"),
    "granted": N_("Answer"),
    "notice_version": N_("Notice version"),
}


def _label(lang: str, code: str | None) -> str:
    """A consent code (purpose, source, legal basis) in the page's language."""
    return i18n.gettext(lang, consent.LABELS.get(code, code)) if code else "—"


def _panel(
    request: Request,
    session: Any,
    customer_id: int,
    user: User,
    *,
    error: str | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    states, history = consent.read_consents(session, customer_id=customer_id, viewer=user)
    lang = request_language(request)
    return render(
        request,
        "customers/_consents.html",
        status_code=status_code,
        customer_id=customer_id,
        states=states,
        history=history[:20],
        purposes=list(consent.Purpose),
        error=error,
        saved=saved,
        clabel=lambda code: _label(lang, code),
    )


@router.get("/customers/{customer_id}/consents", response_class=HTMLResponse)
def consent_panel(
    customer_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """The consent panel (fragment)."""
    return _panel(request, session, customer_id, user)


@router.post("/customers/{customer_id}/consents", response_class=HTMLResponse)
def record(
    customer_id: PathId,
    request: Request,
    session: SessionDep,
    user: Writer,
    purpose: Annotated[str, Form()] = "",
    granted: Annotated[str, Form()] = "",
    notice_version: Annotated[str, Form()] = "",
) -> Response:
    """Record a consent an agent took on the phone or at the counter (source "agent")."""
    lang = request_language(request)
    try:
        body = ConsentUpdate(
            purpose=purpose,
            granted=granted,
            source="agent",
            notice_version=notice_version or None,
        )
        consent.set_consent(session, customer_id=customer_id, consent_in=body, actor=user)
    except ValidationError as exc:
        errors = field_errors_from_pydantic(list(exc.errors()))
        text = "; ".join(
            f"{i18n.gettext(lang, _FIELDS.get(str(e.loc[-1]), str(e.loc[-1])))}: "
            f"{translate_field_error(e, lang)}"
            for e in errors
        )
        # 200: htmx swaps only successful answers; the panel shows the message.
        return _panel(request, session, customer_id, user, error=text)
    except ValidationFailed as exc:
        text = "; ".join(translate_field_error(e, lang) for e in exc.errors)
        return _panel(request, session, customer_id, user, error=text)
    if "hx-request" not in request.headers:
        # A plain form post (no script): back to the customer.
        return RedirectResponse(f"/customers/{customer_id}#consents", status_code=303)
    return _panel(request, session, customer_id, user, saved=True)
