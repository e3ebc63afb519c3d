"""HTML pages of customers: list and search, create and edit forms, archive, reveal."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core.errors import Conflict, FieldError, ValidationFailed
from guanxi.core.ids import PathId
from guanxi.core.web import field_errors_from_pydantic, request_language, translate_field_error
from guanxi.customers import consent_pages, queries, service
from guanxi.customers.enums import (
    CreditRating,
    CustomerKind,
    CustomerStatus,
    LifecycleStage,
    SourceChannel,
)
from guanxi.customers.schemas import CustomerCreate, CustomerUpdate, RevealRequest
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import list_users
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.customer_write)]
Archiver = Annotated[User, require(Permission.customer_archive)]
Revealer = Annotated[User, require(Permission.customer_reveal)]

# Where an API field's error is shown on the form.
_FORM_FIELD = {
    "addresses": "address_line",
    "contacts.name": "contact_name",
    "contacts.phone": "contact_phone",
    "contacts.title": "contact_title",
    "contacts.email": "contact_email",
}


def _form_errors(errors: list[FieldError], lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for error in errors:
        parts = [str(p) for p in error.loc if not str(p).isdigit()]
        key = ".".join(parts) or "form"
        name = _FORM_FIELD.get(key, _FORM_FIELD.get(parts[0] if parts else "", key))
        out.setdefault(name, translate_field_error(error, lang))
    return out


def _options(request: Request, session: Any) -> dict[str, Any]:
    return {
        "kinds": list(CustomerKind),
        "sources": list(SourceChannel),
        "stages": list(LifecycleStage),
        "ratings": list(CreditRating),
        "statuses": list(CustomerStatus),
        "owners": [(u.id, u.display_name) for u in list_users(session) if u.is_active],
    }


def _form(
    request: Request,
    session: Any,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    customer: Any,
    status_code: int = 200,
) -> Response:
    """The create / edit form with its choices, values and per-field messages."""
    return render(
        request,
        "customers/form.html",
        status_code=status_code,
        values=values,
        errors=errors,
        customer=customer,
        **_options(request, session),
    )


async def _form_data(request: Request) -> dict[str, Any]:
    """The submitted form as the API's JSON shape (empty inputs left out)."""
    form = await request.form()
    data: dict[str, Any] = {}
    for key in (
        "kind",
        "name",
        "email",
        "id_number",
        "credit_code",
        "source",
        "industry",
        "region",
        "owner_id",
        "birthday",
        "lifecycle_stage",
        "credit_rating",
        "notes",
        "version",
    ):
        value = form.get(key)
        if isinstance(value, str) and value.strip():
            data[key] = value.strip()
    phones = [p.strip() for p in form.getlist("phones") if isinstance(p, str) and p.strip()]
    data["phones"] = phones
    tags = form.get("tags")
    data["tags"] = (
        [t.strip() for t in re.split(r"[,，、;；]", tags) if t.strip()]
        if isinstance(tags, str)
        else []
    )
    line = form.get("address_line")
    if isinstance(line, str) and line.strip():
        data["addresses"] = [{"line": line.strip()}]
    contact = {k: form.get(f"contact_{k}") for k in ("name", "title", "phone")}
    if isinstance(contact["name"], str) and contact["name"].strip():
        data["contacts"] = [
            {k: v.strip() for k, v in contact.items() if isinstance(v, str) and v.strip()}
        ]
    return data


def _choice(enum: type[StrEnum], name: str, value: str | None) -> str | None:
    if not value:
        return None
    if value not in enum._value2member_map_:
        raise ValidationFailed([FieldError(("query", name), "enum", "Unknown value")])
    return value


@router.get("/customers", response_class=HTMLResponse)
def customer_list(
    request: Request,
    session: SessionDep,
    user: Reader,
    q: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = CustomerStatus.active.value,
    source: Annotated[str | None, Query(max_length=20)] = None,
    lifecycle_stage: Annotated[str | None, Query(max_length=20)] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    region: Annotated[str | None, Query(max_length=50)] = None,
    sort: Annotated[str, Query(pattern=r"^-?(id|name|created_at)$")] = "-id",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Customers with one search box and filters; htmx asks for the results table only.

    A filter form sends every select, the unused ones empty: empty means "all".
    """
    filters = queries.CustomerFilters(
        q=q,
        kind=_choice(CustomerKind, "kind", kind),
        status=_choice(CustomerStatus, "status", status),
        source=_choice(SourceChannel, "source", source),
        lifecycle_stage=_choice(LifecycleStage, "lifecycle_stage", lifecycle_stage),
        tag=tag or None,
        region=region or None,
    )
    rows, next_cursor = queries.list_customers(
        session, filters=filters, viewer=user, sort=sort, cursor=cursor, limit=50
    )
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    ctx = {
        "customers": [service.to_summary(c) for c in rows],
        "next_cursor": next_cursor,
        "params": params,
        "filters": filters,
        "sort": sort,
        **_options(request, session),
    }
    if request.headers.get("hx-target") == "results":
        return render(request, "customers/_results.html", **ctx)
    return render(request, "customers/list.html", **ctx)


@router.get("/customers/new", response_class=HTMLResponse)
def new_customer(request: Request, session: SessionDep, user: Writer) -> Response:
    """The empty create form."""
    return _form(
        request, session, values={"kind": "individual", "phones": [""]}, errors={}, customer=None
    )


@router.post("/customers", response_class=HTMLResponse)
async def create_customer(request: Request, session: SessionDep, user: Writer) -> Response:
    """Create from the form; on invalid input show the form again with each field's message."""
    data = await _form_data(request)
    lang = request_language(request)
    try:
        customer = service.create_customer(session, customer_in=CustomerCreate(**data), actor=user)
    except ValidationError as exc:
        errors = _form_errors(field_errors_from_pydantic(list(exc.errors())), lang)
    except ValidationFailed as exc:
        errors = _form_errors(exc.errors, lang)
    else:
        return RedirectResponse(f"/customers/{customer.id}", status_code=303)
    return _form(
        request, session, status_code=422, values=_echo(data), errors=errors, customer=None
    )


def _echo(data: dict[str, Any]) -> dict[str, Any]:
    """Submitted values back into the form's shape."""
    values = dict(data)
    values["phones"] = data.get("phones") or [""]
    values["tags"] = ", ".join(data.get("tags") or [])
    if data.get("addresses"):
        values["address_line"] = data["addresses"][0].get("line", "")
    if data.get("contacts"):
        for k, v in data["contacts"][0].items():
            values[f"contact_{k}"] = v
    return values


@router.get("/customers/{customer_id}/edit", response_class=HTMLResponse)
def edit_customer(
    customer_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """The edit form, filled in (identifiers stay masked: typing a new value replaces them)."""
    customer = service.get_customer(session, customer_id=customer_id, viewer=user)
    read = service.to_read(customer)
    first = read.addresses[0] if read.addresses else None
    values = {
        "kind": read.kind.value,
        "name": read.name,
        "source": read.source.value,
        "industry": read.industry,
        "region": read.region,
        "owner_id": customer.owner_id,
        "birthday": read.birthday.isoformat() if read.birthday else "",
        "lifecycle_stage": read.lifecycle_stage.value,
        "credit_rating": read.credit_rating.value if read.credit_rating else "",
        "notes": read.notes,
        "tags": ", ".join(read.tags),
        "version": read.version,
        "address_line": "".join(
            x for x in (first.province, first.city, first.district, first.detail) if x
        )
        if first
        else "",
    }
    return _form(request, session, values=values, errors={}, customer=read)


@router.post("/customers/{customer_id}", response_class=HTMLResponse)
async def update_customer(
    customer_id: PathId, request: Request, session: SessionDep, user: Writer
) -> Response:
    """Save the edit form. Empty identifier inputs keep the stored (masked) values."""
    data = await _form_data(request)
    form = await request.form()
    if not data["phones"]:
        data.pop("phones")
    original_line = form.get("original_address_line")
    if data.get("addresses") and data["addresses"][0]["line"] == original_line:
        data.pop("addresses")
    data.pop("contacts", None)
    for optional in ("industry", "region", "birthday", "credit_rating", "notes", "owner_id"):
        data.setdefault(optional, None)
    lang = request_language(request)
    try:
        service.update_customer(
            session, customer_id=customer_id, customer_in=CustomerUpdate(**data), actor=user
        )
    except ValidationError as exc:
        errors = _form_errors(field_errors_from_pydantic(list(exc.errors())), lang)
    except ValidationFailed as exc:
        errors = _form_errors(exc.errors, lang)
    except Conflict as exc:
        errors = _form_errors([FieldError(("form",), exc.message, exc.message)], lang)
    else:
        return RedirectResponse(f"/customers/{customer_id}", status_code=303)
    customer = service.to_read(service.get_customer(session, customer_id=customer_id, viewer=user))
    return _form(
        request, session, status_code=422, values=_echo(data), errors=errors, customer=customer
    )


@router.post("/customers/{customer_id}/archive")
def archive(customer_id: PathId, session: SessionDep, user: Archiver) -> Response:
    """Archive and go back to the customer."""
    service.set_status(session, customer_id=customer_id, status=CustomerStatus.archived, actor=user)
    return RedirectResponse(f"/customers/{customer_id}", status_code=303)


@router.post("/customers/{customer_id}/restore")
def restore(customer_id: PathId, session: SessionDep, user: Archiver) -> Response:
    """Restore and go back to the customer."""
    service.set_status(session, customer_id=customer_id, status=CustomerStatus.active, actor=user)
    return RedirectResponse(f"/customers/{customer_id}", status_code=303)


@router.post("/customers/{customer_id}/reveal/{field}", response_class=HTMLResponse)
def reveal(
    customer_id: PathId, field: str, request: Request, session: SessionDep, user: Revealer
) -> Response:
    """The clear values of one field, as a fragment that replaces the masked one (audited)."""
    body = RevealRequest(field=field)
    values = service.reveal(session, customer_id=customer_id, field=body.field, actor=user)
    return render(request, "customers/_revealed.html", values=values)


# The consent panel of the 360 view (customers/consent_pages.py).
router.include_router(consent_pages.router)
