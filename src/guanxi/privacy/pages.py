"""HTML pages of data-subject requests: the register (``/privacy``: due dates, overdue
highlighted, filters by status and kind, the request policy), the form that registers a
request (linked from the customer's 360 view) and a request's page with its actions
(take on, correct, download the export, complete, reject) and its audit trail.

A refused action comes back to the same page with each message beside its field, in the
reader's language; nothing is saved.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.core import i18n
from guanxi.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from guanxi.core.ids import MAX_ID, PathId, QueryId
from guanxi.core.web import field_messages, request_language, translate_code
from guanxi.customers.service import get_customer, phone_reads
from guanxi.loyalty.web import text_of
from guanxi.privacy import service
from guanxi.privacy.enums import (
    ACTION_LABELS,
    LABELS,
    RequestChannel,
    RequestKind,
    RequestStatus,
    Verification,
)
from guanxi.privacy.models import PrivacyRequest
from guanxi.privacy.schemas import (
    RequestComplete,
    RequestCorrection,
    RequestCreate,
    RequestPolicy,
    RequestReject,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.web.render import context, environment

router = APIRouter()

Registrar = Annotated[User, require(Permission.privacy_request)]
Reader = Annotated[User, require(Permission.privacy_read)]
Officer = Annotated[User, require(Permission.privacy_manage)]

_PAGE = 50
# The correction form's fields (left empty: not changed).
CORRECTABLE = ("name", "email", "id_number", "region", "industry")


def _render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    lang = request_language(request)

    def plabel(code: str | None) -> str:
        return i18n.gettext(lang, LABELS.get(code or "", code or ""))

    def alabel(action: str) -> str:
        return i18n.gettext(lang, ACTION_LABELS.get(action, action))

    helpers = {
        "plabel": plabel,
        "alabel": alabel,
        "kinds": [k.value for k in RequestKind],
        "statuses": [s.value for s in RequestStatus],
        "channels": [c.value for c in RequestChannel],
        "verifications": [v.value for v in Verification],
    }
    html = environment().get_template(template).render(context(request, **helpers, **values))
    return HTMLResponse(html, status_code=status_code)


def _messages(request: Request, exc: Exception) -> dict[str, str]:
    """A refused action as {field: message}; the workflow's own refusals translated."""
    if isinstance(exc, DomainError) and not isinstance(exc, ValidationFailed):
        lang = request_language(request)
        field = str(exc.params.get("field", "status"))
        text = translate_code(exc.message, lang, {}) or i18n.gettext(lang, exc.message)
        return {field: text}

    def key(loc: tuple[str | int, ...]) -> str:
        # A correction's errors name the customer field ("changes.email").
        parts = [str(p) for p in loc]
        return parts[1] if parts[:1] == ["changes"] and len(parts) > 1 else parts[0]

    return field_messages(request, exc, key=key)


def _int(form: FormData, name: str) -> int:
    value = text_of(form, name) or ""
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise ValidationFailed([FieldError((name,), "int_parsing", "Must be a whole number")])
    return int(value)


# --------------------------------------------------------------------------- register


@router.get("/privacy", response_class=HTMLResponse)
def requests_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    status: Annotated[str | None, Query(max_length=12)] = None,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    overdue: bool = False,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The register of data-subject requests: open ones first, the earliest due first."""
    return _requests_page(
        request, session, user, status=status, kind=kind, overdue=overdue, page=page
    )


def _requests_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    status: str | None = None,
    kind: str | None = None,
    overdue: bool = False,
    page: int = 1,
    errors: dict[str, str] | None = None,
    policy: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    chosen_status = status if status in {s.value for s in RequestStatus} else None
    chosen_kind = kind if kind in {k.value for k in RequestKind} else None
    rows, total = service.list_requests(
        session,
        status=RequestStatus(chosen_status) if chosen_status else None,
        kind=RequestKind(chosen_kind) if chosen_kind else None,
        overdue=True if overdue else None,
        limit=_PAGE,
        offset=(page - 1) * _PAGE,
    )
    return _render(
        request,
        "privacy/requests.html",
        status_code=status_code,
        requests=service.to_reads(session, rows),
        total=total,
        page=page,
        pages=max(1, -(-total // _PAGE)),
        status_filter=chosen_status or "",
        kind_filter=chosen_kind or "",
        overdue=overdue,
        policy=policy or service.load_policy(session).model_dump(),
        errors=errors or {},
    )


@router.post("/privacy/policy", response_class=HTMLResponse)
async def save_policy(request: Request, session: SessionDep, user: Officer) -> Response:
    """Save the request policy (working days to answer, days of warning)."""
    form = await request.form()
    data = {
        "due_working_days": text_of(form, "due_working_days"),
        "warn_working_days": text_of(form, "warn_working_days"),
    }
    try:
        service.save_policy(session, policy_in=RequestPolicy.model_validate(data), actor=user)
    except (ValidationError, DomainError) as exc:
        return _requests_page(
            request,
            session,
            user,
            errors=_messages(request, exc),
            policy=data,
            status_code=422,
        )
    return RedirectResponse("/privacy?policy_saved=1", status_code=303)


# --------------------------------------------------------------------------- new request


def _new_page(
    request: Request,
    session: SessionDep,
    user: User,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    customer = None
    cid = str(form.get("customer_id") or "")
    if cid.isdigit() and 1 <= int(cid) <= MAX_ID:
        try:
            customer = get_customer(session, customer_id=int(cid), viewer=user)
        except NotFound:
            customer = None
    return _render(
        request,
        "privacy/request_new.html",
        status_code=status_code,
        form=form,
        customer=customer,
        errors=errors or {},
    )


@router.get("/privacy/requests/new", response_class=HTMLResponse)
def new_request_page(
    request: Request, session: SessionDep, user: Registrar, customer: QueryId = None
) -> Response:
    """The form that registers a request (from the customer's 360 view)."""
    form = {"customer_id": customer or "", "channel": "phone", "verification": "phone_callback"}
    return _new_page(request, session, user, form)


@router.post("/privacy/requests", response_class=HTMLResponse)
async def create_request(request: Request, session: SessionDep, user: Registrar) -> Response:
    """Register the request; the privacy officer sees it in the register."""
    form = await request.form()
    data = {
        "customer_id": text_of(form, "customer_id"),
        "kind": text_of(form, "kind"),
        "channel": text_of(form, "channel"),
        "verification": text_of(form, "verification"),
        "details": text_of(form, "details"),
    }
    try:
        row = service.create_request(
            session, request_in=RequestCreate.model_validate(data), actor=user
        )
    except NotFound:
        errors = {"customer_id": i18n.gettext(request_language(request), "Customer not found")}
        return _new_page(request, session, user, data, errors, status_code=422)
    except (ValidationError, DomainError) as exc:
        return _new_page(request, session, user, data, _messages(request, exc), 422)
    if has_permission(user, Permission.privacy_read):
        return RedirectResponse(f"/privacy/requests/{row.id}?registered=1", status_code=303)
    return RedirectResponse(
        f"/customers/{row.customer_id}?privacy_request={row.id}", status_code=303
    )


# --------------------------------------------------------------------------- one request


def _masked_phones(session: SessionDep, customer_id: int, user: User) -> list[str]:
    """The customer's numbers, masked: the officer checks the call-back number against
    them without seeing it in clear (none once anonymised or out of the user's scope)."""
    try:
        customer = get_customer(session, customer_id=customer_id, viewer=user)
    except NotFound:
        return []
    return [p.number for p in phone_reads(customer)]


def _request_page(
    request: Request,
    session: SessionDep,
    request_id: int,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    row = service.get_request(session, request_id=request_id)
    return _render(
        request,
        "privacy/request.html",
        status_code=status_code,
        r=service.to_reads(session, [row])[0],
        phones=_masked_phones(session, row.customer_id, user),
        history=service.history(session, request_id=request_id),
        correctable=CORRECTABLE,
        errors=errors or {},
        form=form or {},
    )


@router.get("/privacy/requests/{request_id}", response_class=HTMLResponse)
def request_page(
    request_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """A request: what was asked, its due date, the actions and the audit trail."""
    return _request_page(request, session, request_id, user)


async def _act(
    request: Request,
    session: SessionDep,
    request_id: int,
    action: str,
    user: User,
) -> Response:
    form = await request.form()
    echo = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        version = _int(form, "version")
        _run(request, session, request_id, action, form, version, user)
    except NotFound:
        raise
    except (ValidationError, DomainError) as exc:
        return _request_page(
            request,
            session,
            request_id,
            user,
            errors=_messages(request, exc),
            form=echo,
            status_code=422 if not isinstance(exc, DomainError) or exc.status == 422 else 409,
        )
    return RedirectResponse(f"/privacy/requests/{request_id}?done={action}", status_code=303)


def _run(
    request: Request,
    session: SessionDep,
    request_id: int,
    action: str,
    form: FormData,
    version: int,
    user: User,
) -> PrivacyRequest:
    """One workflow action from the request page's forms."""
    if action == "start":
        return service.start_request(session, request_id=request_id, version=version, actor=user)
    if action == "reject":
        reject_in = RequestReject.model_validate(
            {"reason": text_of(form, "reason") or "", "version": version}
        )
        return service.reject_request(
            session, request_id=request_id, reject_in=reject_in, actor=user
        )
    if action == "complete":
        complete_in = RequestComplete.model_validate(
            {"note": text_of(form, "note"), "version": version}
        )
        return service.complete_request(
            session,
            request_id=request_id,
            complete_in=complete_in,
            actor=user,
            settings=request.app.state.settings,
        )
    changes = {f: text_of(form, f) for f in CORRECTABLE if text_of(form, f)}
    if not changes:
        raise ValidationFailed([FieldError((CORRECTABLE[0],), "missing", "This field is required")])
    correction_in = RequestCorrection.model_validate({"changes": changes, "version": version})
    return service.correct_customer(
        session, request_id=request_id, correction_in=correction_in, actor=user
    )


@router.post("/privacy/requests/{request_id}/start", response_class=HTMLResponse)
async def start(
    request_id: PathId, request: Request, session: SessionDep, user: Officer
) -> Response:
    """Take the request on."""
    return await _act(request, session, request_id, "start", user)


@router.post("/privacy/requests/{request_id}/correction", response_class=HTMLResponse)
async def correct(
    request_id: PathId, request: Request, session: SessionDep, user: Officer
) -> Response:
    """Apply the correction to the customer record."""
    return await _act(request, session, request_id, "correction", user)


@router.post("/privacy/requests/{request_id}/complete", response_class=HTMLResponse)
async def complete(
    request_id: PathId, request: Request, session: SessionDep, user: Officer
) -> Response:
    """Answer the request (a deletion anonymises the customer)."""
    return await _act(request, session, request_id, "complete", user)


@router.post("/privacy/requests/{request_id}/reject", response_class=HTMLResponse)
async def reject(
    request_id: PathId, request: Request, session: SessionDep, user: Officer
) -> Response:
    """Reject the request with its reason."""
    return await _act(request, session, request_id, "reject", user)
