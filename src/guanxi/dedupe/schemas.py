"""JSON shapes of de-duplication: pairs, side-by-side comparison, merges, runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from guanxi.core.ids import BodyId
from guanxi.customers.merging import MERGEABLE
from guanxi.customers.schemas import CustomerRead


class PairRead(BaseModel):
    """A suspected duplicate pair."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    left_id: int
    left_name: str
    right_id: int
    right_name: str
    probability: float
    rule: str
    agreed: list[str]
    status: str


class PairPage(BaseModel):
    """One page of pairs and how many there are in that status."""

    items: list[PairRead]
    total: int


class PairDetail(BaseModel):
    """Both records side by side (identifiers masked) for a reviewer."""

    pair: PairRead
    left: CustomerRead
    right: CustomerRead
    mergeable: list[str] = list(MERGEABLE)


class MergeRequest(BaseModel):
    """Which record stays, and which fields to take from the other one.

    Without ``take`` the survivor keeps its values and only fills its blanks.
    """

    model_config = ConfigDict(extra="forbid")

    survivor_id: BodyId
    take: list[Annotated[str, Field(max_length=30)]] | None = Field(default=None, max_length=20)


class MergeRead(BaseModel):
    """A merge and what it moved (counts per table)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    merged_id: int
    pair_id: int | None
    automatic: bool
    created_at: datetime
    undone_at: datetime | None
    moved: dict[str, int]
    changed_fields: list[str]


class UndoRead(BaseModel):
    """The undone merge, and the survivor's fields kept because edited since the merge."""

    merge: MergeRead
    kept_fields: list[str]


class CandidateRead(BaseModel):
    """An existing customer the record being entered probably duplicates."""

    customer_id: int
    name: str
    probability: float
    agreed: list[str]


def merge_read(merge: Any) -> MergeRead:
    """The read shape of a :class:`~guanxi.dedupe.models.CustomerMerge`."""
    return MergeRead(
        id=merge.id,
        survivor_id=merge.survivor_id,
        merged_id=merge.merged_id,
        pair_id=merge.pair_id,
        automatic=merge.automatic,
        created_at=merge.created_at,
        undone_at=merge.undone_at,
        moved={table: len(ids) for table, ids in merge.moved.items()},
        changed_fields=sorted({c.removesuffix("_enc").removesuffix("_bidx") for c in merge.fields}),
    )
