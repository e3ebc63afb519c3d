"""JSON route of the 360 view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from guanxi.core.ids import PathId
from guanxi.security.deps import Reader, require_read
from guanxi.security.permissions import Permission
from guanxi.workspace.schemas import Customer360
from guanxi.workspace.service import customer_360

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


@router.get("/{customer_id}", response_model=Customer360)
async def get_customer(
    customer_id: PathId,
    reader: Annotated[Reader, require_read(Permission.customer_read)],
) -> Response:
    """The 360 view of one customer: profile, shipping numbers, recent shipments, history."""
    view = await reader.run(customer_360, customer_id=customer_id)
    # Already a validated model: serialise it once here instead of re-validating it.
    return Response(view.model_dump_json(), media_type="application/json")
