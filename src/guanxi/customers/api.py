"""JSON routes of customers (``/api/v1/customers``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from guanxi.core.ids import PathId, QueryId
from guanxi.customers import consent_api, queries, service
from guanxi.customers.enums import CustomerKind, CustomerStatus, LifecycleStage, SourceChannel
from guanxi.customers.schemas import (
    CustomerCreate,
    CustomerPage,
    CustomerRead,
    CustomerUpdate,
    RevealRead,
    RevealRequest,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])

Reader = Annotated[User, require(Permission.customer_read)]
Writer = Annotated[User, require(Permission.customer_write)]


@router.get("", response_model=CustomerPage)
def list_customers(
    session: SessionDep,
    user: Reader,
    q: Annotated[
        str | None, Query(max_length=100, description="name, phone, waybill, credit code ...")
    ] = None,
    kind: CustomerKind | None = None,
    status: CustomerStatus | None = CustomerStatus.active,
    source: SourceChannel | None = None,
    lifecycle_stage: LifecycleStage | None = None,
    owner_id: QueryId = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    region: Annotated[str | None, Query(max_length=50)] = None,
    created_from: AwareDatetime | None = None,
    created_to: AwareDatetime | None = None,
    sort: Annotated[str, Query(pattern=r"^-?(id|name|created_at)$")] = "-id",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CustomerPage:
    """List or search customers, newest first unless sorted otherwise."""
    filters = queries.CustomerFilters(
        q=q,
        kind=kind,
        status=status,
        source=source,
        lifecycle_stage=lifecycle_stage,
        owner_id=owner_id,
        tag=tag,
        region=region,
        created_from=created_from,
        created_to=created_to,
    )
    rows, next_cursor = queries.list_customers(
        session, filters=filters, viewer=user, sort=sort, cursor=cursor, limit=limit
    )
    return CustomerPage(items=[service.to_summary(c) for c in rows], next_cursor=next_cursor)


@router.post("", response_model=CustomerRead, status_code=201)
def create_customer(body: CustomerCreate, session: SessionDep, user: Writer) -> CustomerRead:
    """Create a customer."""
    return service.to_read(service.create_customer(session, customer_in=body, actor=user))


@router.patch("/{customer_id}", response_model=CustomerRead)
def update_customer(
    customer_id: PathId, body: CustomerUpdate, session: SessionDep, user: Writer
) -> CustomerRead:
    """Change some fields; lists given replace the stored ones."""
    return service.to_read(
        service.update_customer(session, customer_id=customer_id, customer_in=body, actor=user)
    )


@router.post("/{customer_id}/archive", response_model=CustomerRead)
def archive_customer(
    customer_id: PathId,
    session: SessionDep,
    user: Annotated[User, require(Permission.customer_archive)],
) -> CustomerRead:
    """Archive: hidden from lists, kept with its history."""
    return service.to_read(
        service.set_status(
            session, customer_id=customer_id, status=CustomerStatus.archived, actor=user
        )
    )


@router.post("/{customer_id}/restore", response_model=CustomerRead)
def restore_customer(
    customer_id: PathId,
    session: SessionDep,
    user: Annotated[User, require(Permission.customer_archive)],
) -> CustomerRead:
    """Bring an archived customer back."""
    return service.to_read(
        service.set_status(
            session, customer_id=customer_id, status=CustomerStatus.active, actor=user
        )
    )


@router.post("/{customer_id}/reveal", response_model=RevealRead)
def reveal(
    customer_id: PathId,
    body: RevealRequest,
    session: SessionDep,
    user: Annotated[User, require(Permission.customer_reveal)],
) -> RevealRead:
    """Show one personal field in clear; the reveal is written to the audit log."""
    values = service.reveal(session, customer_id=customer_id, field=body.field, actor=user)
    return RevealRead(field=body.field, values=values)


# The consents (customers/consent_api.py) live under the same prefix.
router.include_router(consent_api.router)
