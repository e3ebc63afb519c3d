"""HTML pages of the customer pool (``/pool``): browse and claim (with my claims of today
against the cap, and my claimed customers to release), the pool policy (sales managers)
and the pool history.

A refused claim says why in the row (htmx) or at the top of the page; a refused policy
comes back with each message beside its field, in the reader's language; nothing is saved.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core import clock, i18n
from guanxi.core.errors import DomainError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.ids import PathId
from guanxi.core.web import (
    field_errors_from_pydantic,
    field_messages,
    request_language,
    translate_code,
    translate_field_error,
)
from guanxi.customers.enums import CustomerKind
from guanxi.pool import service
from guanxi.pool.enums import LABELS, PoolEventKind
from guanxi.pool.policy import PoolPolicy, load_policy, save_policy
from guanxi.pool.returns import run_returns
from guanxi.pool.schemas import AssignIn
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.web.render import render

router = APIRouter()

Salesperson = Annotated[User, require(Permission.sales_pipeline)]
Manager = Annotated[User, require(Permission.sales_manage)]
Param = Annotated[str | None, Query(max_length=50)]

POLICY_FIELDS = {
    "daily_cap": N_("Claims per salesperson per day"),
    "no_follow_up_days": N_("Return after days without follow-up"),
    "contract_ended_days": N_("Return days after the last contract ended"),
    "warn_days": N_("Warn the owner days before"),
    "exempt_tags": N_("Never return customers tagged"),
    "only_from_pool": N_("Only customers taken from the pool return"),
}


def _timezone(request: Request) -> str:
    return str(request.app.state.settings.timezone)


def _days(value: str | None) -> int | None:
    """A whole number of days typed in a filter box; anything else is no filter."""
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 4 else None


def _refusal(request: Request, exc: DomainError) -> str:
    """A refused claim or release in the reader's language."""
    lang = request_language(request)
    if isinstance(exc, ValidationFailed):
        return "; ".join(translate_field_error(e, lang) for e in exc.errors)
    params = {k: v for k, v in exc.params.items() if k not in ("field", "customer_id")}
    return translate_code(exc.message, lang, params) or i18n.gettext(lang, "Invalid value")


def _plabel(request: Request) -> Any:
    lang = request_language(request)

    def plabel(code: str | None) -> str:
        return i18n.gettext(lang, LABELS[code]) if code in LABELS else (code or "")

    return plabel


def _browse(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    message: str | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> Response:
    q = request.query_params
    filters = service.PoolFilters(
        region=(q.get("region") or "").strip()[:50] or None,
        kind=q.get("kind") if q.get("kind") in {k.value for k in CustomerKind} else None,
        industry=(q.get("industry") or "").strip()[:50] or None,
        min_days_in_pool=_days(q.get("min_days_in_pool")),
        shipped_within_days=_days(q.get("shipped_within_days")),
        idle_days=_days(q.get("idle_days")),
    )
    cursor = q.get("cursor")
    try:
        items, next_cursor = service.list_pool(
            session, filters=filters, now=clock.now(), cursor=cursor if cursor else None
        )
    except ValidationFailed:
        items, next_cursor = service.list_pool(session, filters=filters, now=clock.now())
    params = {k: v for k, v in q.items() if k != "cursor" and v}
    return render(
        request,
        "pool/browse.html",
        status_code=status_code,
        items=items,
        next_cursor=next_cursor,
        filters=filters,
        params=params,
        kinds=[k.value for k in CustomerKind],
        today=service.claims_today(
            session, user_id=user.id, now=clock.now(), timezone=_timezone(request)
        ),
        mine=service.my_claimed(session, user=user),
        assignees=service.assignees(session)
        if has_permission(user, Permission.sales_manage)
        else [],
        message=message,
        refused=refused,
    )


@router.get("/pool", response_class=HTMLResponse)
def browse(request: Request, session: SessionDep, user: Salesperson) -> Response:
    """The pool: filters, customers to claim, my claims today against the cap."""
    return _browse(request, session, user)


@router.post("/pool/{customer_id}/claim", response_class=HTMLResponse)
def claim(
    customer_id: PathId, request: Request, session: SessionDep, user: Salesperson
) -> Response:
    """Claim a customer; htmx gets the row back (claimed, or why not), a plain form the
    page with a message."""
    lang = request_language(request)
    htmx = request.headers.get("HX-Request") == "true"
    try:
        service.claim(session, customer_id=customer_id, actor=user, timezone=_timezone(request))
    except DomainError as exc:
        text = _refusal(request, exc)
        if htmx:
            return render(request, "pool/_claimed.html", customer_id=customer_id, refused=text)
        return _browse(request, session, user, refused=text, status_code=exc.status)
    today = service.claims_today(
        session, user_id=user.id, now=clock.now(), timezone=_timezone(request)
    )
    if htmx:
        return render(request, "pool/_claimed.html", customer_id=customer_id, refused=None,
                      today=today)  # fmt: skip
    done = i18n.gettext(lang, "Claimed: the customer is yours")
    return _browse(request, session, user, message=done)


@router.post("/pool/{customer_id}/release", response_class=HTMLResponse)
async def release(
    customer_id: PathId, request: Request, session: SessionDep, user: Salesperson
) -> Response:
    """Put one of my customers back in the pool (a reason for the history is optional)."""
    form = await request.form()
    note = str(form.get("note") or "").strip()[:200] or None
    try:
        service.release(session, customer_id=customer_id, actor=user, note=note)
    except DomainError as exc:
        return _browse(
            request, session, user, refused=_refusal(request, exc), status_code=exc.status
        )
    return RedirectResponse("/pool", status_code=303)


@router.post("/pool/assign", response_class=HTMLResponse)
async def assign(request: Request, session: SessionDep, user: Manager) -> Response:
    """Give a customer to a salesperson (sales managers)."""
    form = await request.form()
    try:
        body = AssignIn.model_validate(
            {
                "customer_ids": [str(form.get("customer_id") or "")],
                "owner_id": str(form.get("owner_id") or ""),
            }
        )
        service.assign(session, assign_in=body, actor=user)
    except ValidationError as exc:
        failed = ValidationFailed(field_errors_from_pydantic(list(exc.errors())))
        return _browse(request, session, user, refused=_refusal(request, failed), status_code=422)
    except DomainError as exc:
        return _browse(
            request, session, user, refused=_refusal(request, exc), status_code=exc.status
        )
    return RedirectResponse("/pool", status_code=303)


@router.get("/pool/policy", response_class=HTMLResponse)
def policy_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """The pool policy form."""
    return _policy(request, load_policy(session).model_dump(), {})


def _policy(
    request: Request, values: dict[str, Any], errors: dict[str, str], status_code: int = 200
) -> Response:
    lang = request_language(request)
    labels = {k: i18n.gettext(lang, v) for k, v in POLICY_FIELDS.items()}
    return render(
        request,
        "pool/policy.html",
        status_code=status_code,
        values=values,
        errors=errors,
        labels=labels,
        saved=request.query_params.get("saved") == "1",
    )


@router.post("/pool/policy", response_class=HTMLResponse)
async def save_policy_page(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save the policy; a refused value comes back beside its field, nothing saved."""
    form = await request.form()
    raw = {
        name: (str(form.get(name) or "").strip() or None)
        for name in ("daily_cap", "no_follow_up_days", "contract_ended_days", "warn_days")
    }
    text = str(form.get("exempt_tags") or "")
    for sep in ("，", "、", "\n"):
        text = text.replace(sep, ",")
    tags = [t.strip() for t in text.split(",") if t.strip()]
    data: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    for name in ("no_follow_up_days", "contract_ended_days"):
        data.setdefault(name, None)
    data["exempt_tags"] = tags
    data["only_from_pool"] = form.get("only_from_pool") == "on"
    try:
        save_policy(session, policy=PoolPolicy.model_validate(data), actor=user)
    except (ValidationError, ValidationFailed) as exc:
        values = {**raw, "exempt_tags": tags, "only_from_pool": data["only_from_pool"]}
        return _policy(request, values, field_messages(request, exc), status_code=422)
    return RedirectResponse("/pool/policy?saved=1", status_code=303)


@router.get("/pool/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    session: SessionDep,
    user: Manager,
    kind: Param = None,
    user_id: Param = None,
    customer_id: Param = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Claims, releases, assignments, returns and warnings, newest first."""
    filters = service.HistoryFilters(
        kind=kind if kind in {k.value for k in PoolEventKind} else None,
        user_id=int(user_id) if user_id and user_id.isdigit() and len(user_id) < 12 else None,
        customer_id=int(customer_id)
        if customer_id and customer_id.isdigit() and len(customer_id) < 12
        else None,
    )
    try:
        items, next_cursor = service.history(session, filters=filters, cursor=cursor or None)
    except ValidationFailed:
        items, next_cursor = service.history(session, filters=filters)
    params = {
        k: v
        for k, v in request.query_params.items()
        if k not in ("cursor", "warned", "returned") and v
    }
    return render(
        request,
        "pool/history.html",
        items=items,
        next_cursor=next_cursor,
        filters=filters,
        params=params,
        kinds=[k.value for k in PoolEventKind],
        people=service.assignees(session),
        plabel=_plabel(request),
        ran=_ran(request),
    )


@router.post("/pool/run", response_class=HTMLResponse)
def run_now(request: Request, session: SessionDep, user: Manager) -> Response:
    """Run today's returns now (the worker does it daily; a second run changes nothing)."""
    settings = request.app.state.settings
    run = run_returns(
        session, now=clock.now(), timezone=settings.timezone, language=settings.default_language
    )
    figures = run.figures()
    returned = figures["returned_no_follow_up"] + figures["returned_contract_ended"]
    return RedirectResponse(
        f"/pool/history?warned={figures['warned']}&returned={returned}", status_code=303
    )


def _ran(request: Request) -> tuple[int, int] | None:
    """The figures of a run just started from the history page (shown once)."""
    warned, returned = (request.query_params.get(k, "") for k in ("warned", "returned"))
    if warned.isdigit() and returned.isdigit() and len(warned + returned) < 16:
        return int(warned), int(returned)
    return None
