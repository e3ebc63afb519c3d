"""The public unsubscribe page (``/u/{token}``): no sign-in, zh / en, fit for a phone.

GET shows what the link is about and a confirm button; POST withdraws the consent (the
confirm button, or a mail client's RFC 8058 one-click POST). A tampered link gets a
friendly refusal, never an error page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from guanxi.core import i18n
from guanxi.core.web import choose_language, request_language
from guanxi.customers.consent import LABELS
from guanxi.notify import unsubscribe
from guanxi.security.deps import SessionDep
from guanxi.web.render import render

router = APIRouter()

Token = Annotated[str, Path(max_length=300)]
Lang = Annotated[str | None, Query(max_length=10)]


def _page(
    request: Request, token: str, view: unsubscribe.UnsubscribeView | None, *, done: bool = False
) -> Response:
    lang = getattr(request.state, "lang", None) or "zh_CN"
    purpose = (
        i18n.gettext(lang, LABELS.get(view.purpose.value, view.purpose.value)) if view else None
    )
    response = render(
        request,
        "notify/unsubscribe.html",
        status_code=200 if view is not None else 404,
        token=token,
        view=view,
        done=done,
        purpose=purpose,
        switch_to=[(c, n) for c, n in i18n.LANGUAGE_NAMES.items() if c != lang],
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _language(request: Request, lang: str | None) -> None:
    if not choose_language(request, lang):
        request_language(request)


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    token: Token, request: Request, session: SessionDep, lang: Lang = None
) -> Response:
    """What the link unsubscribes from, and a button to confirm."""
    _language(request, lang)
    return _page(request, token, unsubscribe.view(session, token))


@router.post("/u/{token}", response_class=HTMLResponse)
def confirm(token: Token, request: Request, session: SessionDep, lang: Lang = None) -> Response:
    """Withdraw the consent the link names (the confirm button, or one-click)."""
    _language(request, lang)
    view = unsubscribe.unsubscribe(session, token)
    return _page(request, token, view, done=view is not None)
