"""JSON route of the 360 view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from guanxi.core.ids import PathId
from guanxi.core.web import run_read
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.workspace.schemas import Customer360
from guanxi.workspace.service import customer_360

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


@router.get("/{customer_id}", response_model=Customer360)
async def get_customer(
    request: Request,
    customer_id: PathId,
    session: SessionDep,
    user: Annotated[User, require(Permission.customer_read)],
) -> Response:
    """The 360 view of one customer: profile, shipping numbers, recent shipments, history."""
    view = await run_read(request, customer_360, session, customer_id=customer_id, viewer=user)
    # Already a validated model: serialise it once here instead of re-validating it.
    return Response(view.model_dump_json(), media_type="application/json")
