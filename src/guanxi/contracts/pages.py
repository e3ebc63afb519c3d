"""HTML pages of contracts (``/contracts``): the list with the contract policy, the new
contract form, a contract's page (terms, edit or amend, activate, terminate, renew, the
amendment history, documents and the volume against the commitment) and the monthly
report of volume against commitment (below commitment first, CSV export).

A refused change comes back to the same page with each message beside its field, in the
reader's language; nothing is saved.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from guanxi.contracts import documents, service, volume
from guanxi.contracts.enums import FIELD_LABELS, LABELS, ContractStatus
from guanxi.contracts.models import Contract
from guanxi.contracts.schemas import (
    ContractCreate,
    ContractPolicy,
    ContractRenew,
    ContractTerminate,
    ContractUpdate,
)
from guanxi.core import clock, i18n
from guanxi.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from guanxi.core.ids import MAX_ID, PathId, QueryId
from guanxi.core.web import (
    BodyLimit,
    ParsedForm,
    body_limit,
    field_errors_from_pydantic,
    field_messages,
    format_fen,
    request_language,
)
from guanxi.customers.models import Customer
from guanxi.customers.service import can_see
from guanxi.loyalty.web import fen_of, text_of
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission
from guanxi.tickets import attachments
from guanxi.tickets.attachments_api import uploaded_file
from guanxi.web.render import context, environment

router = APIRouter()

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.sales_pipeline)]
Manager = Annotated[User, require(Permission.sales_manage)]

# The tickets' page for a file refused before it is read (it links back to the contract).
DOCUMENT_PAGE_UPLOAD = BodyLimit(
    "/contracts/{contract_id}/documents",
    "attachment_max_bytes",
    "file",
    "tickets/attachment_too_large.html",
)
DISCOUNT_ERROR = "contract_discount_pct"
_PAGE = 50


def render_contracts(
    request: Request, template: str, status_code: int = 200, **values: Any
) -> Response:
    """Render a contracts template with the shared context and the contract labels."""
    lang = request_language(request)

    def clabel(code: str | None) -> str:
        if code is None:
            return ""
        return i18n.gettext(lang, LABELS.get(code, code))

    def flabel(name: str) -> str:
        return i18n.gettext(lang, FIELD_LABELS.get(name, name))

    def hvalue(name: str, value: Any) -> str:
        """A value of the amendment history for people."""
        if value is None or value == "":
            return "—"
        if name == "discount_bp":
            return f"{percent(int(value))} %"
        if name == "commit_revenue_fen":
            return f"¥{format_fen(int(value))}"
        if name == "auto_renew":
            return i18n.gettext(lang, "Yes") if value else i18n.gettext(lang, "No")
        if name == "status":
            return clabel(str(value))
        return str(value)

    helpers = {
        "clabel": clabel,
        "flabel": flabel,
        "hvalue": hvalue,
        "statuses": [s.value for s in ContractStatus],
        "percent": percent,
    }
    html = environment().get_template(template).render(context(request, **helpers, **values))
    return HTMLResponse(html, status_code=status_code)


def percent(bp: int) -> str:
    """Basis points as a percentage without trailing zeros (1250 -> "12.5")."""
    return f"{Decimal(bp) / 100:.2f}".rstrip("0").rstrip(".")


def _today(request: Request) -> date:
    return clock.now().astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


def _messages(request: Request, exc: Exception) -> dict[str, str]:
    """A refused change as {field: message} in the reader's language."""
    return field_messages(request, exc, domain_field="status")


def _discount_bp(form: FormData) -> int | str:
    """The discount typed as a percentage ("12.5") in basis points; a text that is not a
    percentage with at most two decimals between 0 and 100 is passed on as is."""
    value = text_of(form, "discount_pct") or "0"
    try:
        pct = Decimal(value)
    except InvalidOperation:
        return value
    if pct != pct.quantize(Decimal("0.01")) or not 0 <= pct <= 100:
        return value
    return int(pct * 100)


def _terms(form: FormData) -> tuple[dict[str, Any], list[FieldError]]:
    """The form's contract terms as schema input, and the errors only the form can have
    (the discount is typed as a percentage)."""
    discount = _discount_bp(form)
    errors = []
    if isinstance(discount, str):
        errors.append(
            FieldError(
                ("discount_bp",),
                DISCOUNT_ERROR,
                "Give a percentage from 0 to 100 with at most two decimals",
            )
        )
        discount = 0
    return {
        "title": text_of(form, "title") or "",
        "discount_bp": discount,
        "commit_shipments": text_of(form, "commit_shipments"),
        "commit_revenue_fen": fen_of(form, "commit_revenue"),
        "start_date": text_of(form, "start_date"),
        "end_date": text_of(form, "end_date"),
        "auto_renew": form.get("auto_renew") == "on",
        "reminder_days": text_of(form, "reminder_days"),
        "notes": text_of(form, "notes"),
    }, errors


def _form_of(contract: Contract) -> dict[str, Any]:
    """A stored contract as the form shows it."""
    return {
        "title": contract.title,
        "discount_pct": percent(contract.discount_bp),
        "commit_shipments": contract.commit_shipments or "",
        "commit_revenue": (
            f"{Decimal(contract.commit_revenue_fen) / 100:.2f}"
            if contract.commit_revenue_fen
            else ""
        ),
        "start_date": contract.start_date.isoformat(),
        "end_date": contract.end_date.isoformat(),
        "auto_renew": contract.auto_renew,
        "reminder_days": contract.reminder_days or "",
        "notes": contract.notes or "",
        "owner_id": contract.owner_id or "",
        "version": contract.version,
    }


def _form_echo(form: FormData) -> dict[str, Any]:
    """The submitted form, to show again beside its errors."""
    data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    data["auto_renew"] = form.get("auto_renew") == "on"
    return data


def _owners(session: SessionDep, user: User) -> list[tuple[int, str]]:
    """Whom the user may name as a contract's owner (a manager: anyone in sales)."""
    if has_permission(user, Permission.sales_manage):
        return service.pipeline_users(session)
    return [(user.id, user.display_name)]


# --------------------------------------------------------------------------- list, policy


@router.get("/contracts", response_class=HTMLResponse)
def list_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    status: Annotated[str | None, Query(max_length=12)] = None,
    mine: bool = False,
    customer: QueryId = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Contracts of the customers the user can see, newest first (``customer``: of one)."""
    return _list_page(
        request, session, user, status=status, mine=mine, customer=customer, page=page
    )


def _list_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    status: str | None = None,
    mine: bool = False,
    customer: int | None = None,
    page: int = 1,
    errors: dict[str, str] | None = None,
    policy_form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    chosen = status if status in {s.value for s in ContractStatus} else None
    rows, total = service.list_contracts(
        session,
        viewer=user,
        status=ContractStatus(chosen) if chosen else None,
        owner_id=user.id if mine else None,
        customer_id=customer,
        limit=_PAGE,
        offset=(page - 1) * _PAGE,
    )
    return render_contracts(
        request,
        "contracts/list.html",
        status_code=status_code,
        contracts=service.to_reads(session, rows),
        total=total,
        page=page,
        pages=max(1, -(-total // _PAGE)),
        status_filter=chosen or "",
        mine=mine,
        customer=customer or "",
        policy=policy_form or service.load_policy(session).model_dump(),
        errors=errors or {},
        today=_today(request),
    )


@router.post("/contracts/policy", response_class=HTMLResponse)
async def save_policy(request: Request, session: SessionDep, user: Manager) -> Response:
    """Save the default number of reminder days."""
    form = await request.form()
    data = {"reminder_days": text_of(form, "reminder_days")}
    try:
        service.save_policy(session, policy_in=ContractPolicy.model_validate(data), actor=user)
    except (ValidationError, ValidationFailed) as exc:
        return _list_page(
            request,
            session,
            user,
            errors=_messages(request, exc),
            policy_form=data,
            status_code=422,
        )
    return RedirectResponse("/contracts?policy_saved=1", status_code=303)


# --------------------------------------------------------------------------- 360 panel


@router.get("/customers/{customer_id}/contracts", response_class=HTMLResponse)
def panel(customer_id: PathId, request: Request, session: SessionDep, user: Reader) -> Response:
    """The contracts panel of one customer's 360 view."""
    rows = service.contracts_of_customer(session, customer_id=customer_id, viewer=user)
    return render_contracts(
        request,
        "contracts/_panel.html",
        contracts=service.to_reads(session, rows),
        customer_id=customer_id,
    )


# --------------------------------------------------------------------------- new


@router.get("/contracts/new", response_class=HTMLResponse)
def new_page(
    request: Request, session: SessionDep, user: Writer, customer_id: QueryId = None
) -> Response:
    """The form of a new contract (``customer_id``: the customer it is for)."""
    today = _today(request)
    form: dict[str, Any] = {
        "customer_id": customer_id or "",
        "start_date": today.isoformat(),
        # A year's contract by default: today to the day before the same day next year.
        "end_date": (service.add_months(today, 12) - timedelta(days=1)).isoformat(),
        "discount_pct": "0",
        "owner_id": user.id,
    }
    return _new_page(request, session, user, form=form)


def _new_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    customer = None
    raw = str(form.get("customer_id") or "")
    if raw.isdigit() and int(raw) <= MAX_ID:
        found = session.get(Customer, int(raw))
        customer = found if found is not None and can_see(user, found) else None
    return render_contracts(
        request,
        "contracts/new.html",
        status_code=status_code,
        form=form,
        customer=customer,
        owners=_owners(session, user),
        errors=errors or {},
    )


@router.post("/contracts", response_class=HTMLResponse)
async def create(request: Request, session: SessionDep, user: Writer) -> Response:
    """Create the draft contract and open its page."""
    form = await request.form()
    data, errors = _terms(form)
    data["customer_id"] = text_of(form, "customer_id")
    data["owner_id"] = text_of(form, "owner_id")
    try:
        if errors:
            raise ValidationFailed(errors)
        contract = service.create_contract(
            session, contract_in=ContractCreate.model_validate(data), actor=user
        )
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and not isinstance(exc, ValidationFailed | NotFound):
            raise
        return _new_page(
            request,
            session,
            user,
            form=_form_echo(form),
            errors=_messages(request, exc),
            status_code=422,
        )
    return RedirectResponse(f"/contracts/{contract.id}?saved=1", status_code=303)


# --------------------------------------------------------------------------- report


@router.get("/contracts/report", response_class=HTMLResponse)
def report_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    """Volume against commitment of every contract in force in the month."""
    today = _today(request)
    try:
        first = volume.parse_month(month) if month else today.replace(day=1)
        errors: dict[str, str] = {}
    except ValidationFailed as exc:
        first, errors = today.replace(day=1), _messages(request, exc)
    rows = volume.month_report(
        session,
        viewer=user,
        month=first,
        today=today,
        timezone=request.app.state.settings.timezone,
    )
    return render_contracts(
        request,
        "contracts/report.html",
        status_code=422 if errors else 200,
        rows=rows,
        month=f"{first:%Y-%m}",
        below=sum(1 for r in rows if r.below),
        errors=errors,
    )


# --------------------------------------------------------------------------- one contract


@router.get("/contracts/{contract_id}", response_class=HTMLResponse)
def contract_page(
    contract_id: PathId, request: Request, session: SessionDep, user: Reader
) -> Response:
    """A contract: terms, actions, history, documents and volume."""
    contract = service.get_contract(session, contract_id=contract_id, viewer=user)
    return _contract_page(request, session, user, contract)


def _contract_page(
    request: Request,
    session: SessionDep,
    user: User,
    contract: Contract,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    read = service.to_reads(session, [contract])[0]
    may_write = has_permission(user, Permission.sales_pipeline) and service.can_write(
        user, contract
    )
    return render_contracts(
        request,
        "contracts/contract.html",
        status_code=status_code,
        contract=read,
        form=form or _form_of(contract),
        errors=errors or {},
        may_write=may_write,
        owners=_owners(session, user),
        history=service.amendments(session, contract_id=contract.id),
        files=documents.list_documents(session, contract_id=contract.id),
        months=volume.contract_months(
            session,
            contract,
            today=_today(request),
            timezone=request.app.state.settings.timezone,
        ),
        policy_days=service.load_policy(session).reminder_days,
        accept=",".join("." + ext for ext in attachments.ALLOWED_TYPES),
        allowed=attachments.allowed_extensions(),
        today=_today(request),
    )


def _refused(
    request: Request,
    session: SessionDep,
    user: User,
    contract_id: int,
    exc: Exception,
    form: dict[str, Any] | None = None,
) -> Response:
    """The contract page again with the refusal beside its field (nothing was saved)."""
    session.rollback()
    contract = service.get_contract(session, contract_id=contract_id, viewer=user)
    status_code = exc.status if isinstance(exc, DomainError) else 422
    if isinstance(exc, attachments.AttachmentTooLarge):
        status_code = 413
    return _contract_page(
        request,
        session,
        user,
        contract,
        form=form,
        errors=_messages(request, exc),
        status_code=status_code,
    )


@router.post("/contracts/{contract_id}", response_class=HTMLResponse)
async def update(
    contract_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """Save a draft's terms, or amend an active contract (with the reason)."""
    form = await request.form()
    data, errors = _terms(form)
    data["owner_id"] = text_of(form, "owner_id")
    data["version"] = text_of(form, "version")
    data["reason"] = text_of(form, "reason")
    try:
        if errors:
            raise ValidationFailed(errors)
        service.update_contract(
            session,
            contract_id=contract_id,
            contract_in=ContractUpdate.model_validate(data),
            actor=user,
        )
    except (ValidationError, ValidationFailed, DomainError) as exc:
        if isinstance(exc, NotFound):
            raise
        return _refused(request, session, user, contract_id, exc, _form_echo(form))
    return RedirectResponse(f"/contracts/{contract_id}?saved=1", status_code=303)


@router.post("/contracts/{contract_id}/activate", response_class=HTMLResponse)
async def activate(
    contract_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """Put the signed draft in force."""
    form = await request.form()
    try:
        version = int(text_of(form, "version") or "0")
        service.activate_contract(session, contract_id=contract_id, version=version, actor=user)
    except ValueError:
        return _refused(request, session, user, contract_id, _bad_version())
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _refused(request, session, user, contract_id, exc)
    return RedirectResponse(f"/contracts/{contract_id}?activated=1", status_code=303)


def _bad_version() -> ValidationFailed:
    return ValidationFailed([FieldError(("version",), "int_parsing", "Must be a whole number")])


@router.post("/contracts/{contract_id}/terminate", response_class=HTMLResponse)
async def terminate(
    contract_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """End the active contract early."""
    form = await request.form()
    data = {
        "ended_on": text_of(form, "ended_on"),
        "reason": text_of(form, "terminate_reason") or "",
        "version": text_of(form, "version"),
    }
    try:
        service.terminate_contract(
            session,
            contract_id=contract_id,
            terminate_in=ContractTerminate.model_validate(data),
            actor=user,
        )
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, NotFound):
            raise
        if isinstance(exc, ValidationError):
            # The form names the reason field apart from the amendment's reason.
            failed = field_errors_from_pydantic(list(exc.errors()))
            exc = ValidationFailed(
                [
                    FieldError(("terminate_reason",), e.code, e.message, e.params)
                    if e.loc[:1] == ("reason",)
                    else e
                    for e in failed
                ]
            )
        return _refused(request, session, user, contract_id, exc)
    return RedirectResponse(f"/contracts/{contract_id}?terminated=1", status_code=303)


@router.post("/contracts/{contract_id}/renew", response_class=HTMLResponse)
async def renew(
    contract_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """Draft the renewal and open it."""
    try:
        renewal = service.renew_contract(
            session, contract_id=contract_id, renew_in=ContractRenew(), actor=user
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _refused(request, session, user, contract_id, exc)
    return RedirectResponse(f"/contracts/{renewal.id}?saved=1", status_code=303)


@router.post("/contracts/{contract_id}/documents", response_class=HTMLResponse)
@body_limit(DOCUMENT_PAGE_UPLOAD)
def upload(
    contract_id: PathId, request: Request, session: SessionDep, user: Writer, form: ParsedForm
) -> Response:
    """Attach a file; refusals are shown beside the upload field."""
    try:
        file = uploaded_file(form)
        documents.add_document(
            session,
            contract_id=contract_id,
            filename=file.filename or "",
            declared_type=file.content_type,
            stream=file.file,
            actor=user,
            settings=request.app.state.settings,
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _refused(request, session, user, contract_id, exc)
    return RedirectResponse(f"/contracts/{contract_id}?uploaded=1#documents", status_code=303)
