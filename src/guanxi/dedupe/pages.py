"""HTML pages of de-duplication: the review queue, one pair side by side, merge and undo,
and the "possible duplicate" warning the create form asks for while it is filled in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core.ids import PathId
from guanxi.customers.merging import MERGEABLE
from guanxi.customers.schemas import CustomerCreate
from guanxi.dedupe import service
from guanxi.dedupe.enums import PairStatus
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of
from guanxi.web.render import render

router = APIRouter()

Merger = Annotated[User, require(Permission.customer_merge)]
Writer = Annotated[User, require(Permission.customer_write)]
PAGE = 50


@router.get("/duplicates", response_class=HTMLResponse)
def queue(
    request: Request,
    session: SessionDep,
    user: Merger,
    status: PairStatus = PairStatus.pending,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Pairs waiting for review (or decided ones), most probable first, and recent runs."""
    pairs, total = service.list_pairs(session, status=status, limit=PAGE, offset=(page - 1) * PAGE)
    return render(
        request,
        "dedupe/queue.html",
        pairs=pairs,
        total=total,
        status=status.value,
        statuses=list(PairStatus),
        page=page,
        pages=max(1, (total + PAGE - 1) // PAGE),
        runs=service.recent_runs(session, limit=5),
    )


def _value(customer: Any, field: str) -> str:
    """A field of a read customer as the side-by-side table shows it."""
    value = getattr(customer, field, None)
    if field == "owner_id":
        return customer.owner.display_name if customer.owner else ""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


@router.get("/duplicates/{pair_id}", response_class=HTMLResponse)
def pair_page(pair_id: PathId, request: Request, session: SessionDep, user: Merger) -> Response:
    """Both records side by side: pick the survivor and, per field, the value that stays."""
    pair, left, right = service.pair_detail(session, pair_id=pair_id, viewer=user)
    rows = [(f, _value(left, f), _value(right, f)) for f in MERGEABLE]
    return render(request, "dedupe/pair.html", pair=pair, left=left, right=right, rows=rows)


@router.post("/duplicates/{pair_id}/merge", response_class=HTMLResponse)
async def merge_pair(
    pair_id: PathId, request: Request, session: SessionDep, user: Merger
) -> Response:
    """Merge as chosen on the pair page; the survivor's 360 page shows the result."""
    form = await request.form()
    pair = service.get_pair(session, pair_id)
    survivor = pair.right_id if form.get("survivor") == "right" else pair.left_id
    other_side = "left" if survivor == pair.right_id else "right"
    take = [f for f in MERGEABLE if form.get(f"pick_{f}") == other_side]
    service.merge_pair(
        session, pair_id=pair_id, survivor_id=survivor, fields=take, actor=actor_of(user)
    )
    return RedirectResponse(f"/customers/{survivor}", status_code=303)


@router.post("/duplicates/{pair_id}/distinct", response_class=HTMLResponse)
def mark_distinct(pair_id: PathId, session: SessionDep, user: Merger) -> Response:
    """Not the same customer; back to the queue."""
    service.mark_distinct(session, pair_id=pair_id, actor=actor_of(user))
    return RedirectResponse("/duplicates", status_code=303)


@router.post("/merges/{merge_id}/undo", response_class=HTMLResponse)
def undo_merge(merge_id: PathId, session: SessionDep, user: Merger) -> Response:
    """Undo a merge; the restored record's page shows it back."""
    result = service.undo_merge(session, merge_id=merge_id, actor=actor_of(user))
    return RedirectResponse(f"/customers/{result.merge.merged_id}", status_code=303)


@router.post("/duplicates/check", response_class=HTMLResponse)
async def duplicate_check(request: Request, session: SessionDep, user: Writer) -> Response:
    """The create form's warning while it is filled in (htmx fragment; nothing saved).

    Fields that do not validate yet are left out of the comparison rather than reported:
    the form reports them when it is submitted.
    """
    form = await request.form()
    data: dict[str, Any] = {
        k: v.strip()
        for k in ("kind", "name", "email", "id_number", "credit_code", "birthday")
        if isinstance(v := form.get(k), str) and v.strip()
    }
    data["phones"] = [p.strip() for p in form.getlist("phones") if isinstance(p, str) and p.strip()]
    line = form.get("address_line")
    if isinstance(line, str) and line.strip():
        data["addresses"] = [{"line": line.strip()}]
    candidate = None
    for _attempt in range(3):
        try:
            candidate = CustomerCreate(**data)
            break
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if "name" in bad or not bad:
                break
            data = {k: v for k, v in data.items() if k not in bad}
    found = service.likely_duplicates_of(session, candidate) if candidate else []
    return render(request, "dedupe/_check.html", candidates=found)
