"""JSON routes of de-duplication: the review queue, merge, "not the same", undo, check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from guanxi.core.ids import PathId
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import get_customer
from guanxi.dedupe import service
from guanxi.dedupe.enums import PairStatus
from guanxi.dedupe.schemas import (
    CandidateRead,
    MergeRead,
    MergeRequest,
    PairDetail,
    PairPage,
    PairRead,
    UndoRead,
    merge_read,
)
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of

router = APIRouter(prefix="/api/v1", tags=["duplicates"])

Merger = Annotated[User, require(Permission.customer_merge)]
Writer = Annotated[User, require(Permission.customer_write)]


def _pair(row: service.PairRow) -> PairRead:
    return PairRead(**{**row.__dict__, "agreed": list(row.agreed)})


@router.get("/duplicates", response_model=PairPage)
def list_pairs(
    session: SessionDep,
    user: Merger,
    status: PairStatus = PairStatus.pending,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PairPage:
    """Suspected duplicate pairs in one status, most probable first."""
    rows, total = service.list_pairs(session, status=status, limit=limit, offset=offset)
    return PairPage(items=[_pair(r) for r in rows], total=total)


@router.get("/duplicates/{pair_id}", response_model=PairDetail)
def get_pair(pair_id: PathId, session: SessionDep, user: Merger) -> PairDetail:
    """Both records of a pair side by side."""
    pair, left, right = service.pair_detail(session, pair_id=pair_id, viewer=user)
    return PairDetail(pair=_pair(pair), left=left, right=right)


@router.post("/duplicates/{pair_id}/merge", response_model=MergeRead)
def merge_pair(pair_id: PathId, body: MergeRequest, session: SessionDep, user: Merger) -> MergeRead:
    """Merge the pair into ``survivor_id``, taking the ``take`` fields from the other."""
    merge = service.merge_pair(
        session,
        pair_id=pair_id,
        survivor_id=body.survivor_id,
        fields=body.take,
        actor=actor_of(user),
    )
    return merge_read(merge)


@router.post("/duplicates/{pair_id}/distinct", response_model=PairRead)
def mark_distinct(pair_id: PathId, session: SessionDep, user: Merger) -> PairRead:
    """Not the same customer: the pair leaves the queue and is not suggested again."""
    service.mark_distinct(session, pair_id=pair_id, actor=actor_of(user))
    return _pair(service.get_pair(session, pair_id))


@router.post("/merges/{merge_id}/undo", response_model=UndoRead)
def undo_merge(merge_id: PathId, session: SessionDep, user: Merger) -> UndoRead:
    """Undo a merge: both records and every moved row back as they were."""
    result = service.undo_merge(session, merge_id=merge_id, actor=actor_of(user))
    return UndoRead(merge=merge_read(result.merge), kept_fields=result.kept_columns)


@router.get("/customers/{customer_id}/merges", response_model=list[MergeRead])
def customer_merges(customer_id: PathId, session: SessionDep, user: Merger) -> list[MergeRead]:
    """Merges the customer took part in, as survivor or as the merged record (404 for a
    customer the user may not see, row-level scope included)."""
    get_customer(session, customer_id=customer_id, viewer=user)
    return [merge_read(m) for m in service.merges_of(session, customer_id)]


@router.post("/duplicates/check", response_model=list[CandidateRead])
def duplicate_check(body: CustomerCreate, session: SessionDep, user: Writer) -> list[CandidateRead]:
    """Existing customers the record about to be created probably is (nothing is saved)."""
    return [
        CandidateRead(
            customer_id=c.customer_id,
            name=c.name,
            probability=c.probability,
            agreed=list(c.agreed),
        )
        for c in service.likely_duplicates_of(session, body)
    ]
