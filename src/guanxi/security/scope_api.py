"""JSON routes of a user's row-level scope: ``GET`` / ``PUT /api/v1/users/{user_id}/scope``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guanxi.core.ids import PathId
from guanxi.security import scope
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/users", tags=["users"])

# No control characters (PostgreSQL refuses NUL in text; none belongs in a region's name).
RegionName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
TeamId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class UserScopeIn(BaseModel):
    """A user's whole scope: region prefixes of customers and desk team ids (both empty:
    unscoped, the role's whole reach)."""

    model_config = ConfigDict(extra="forbid")
    regions: list[RegionName] = Field(default_factory=list, max_length=50)
    team_ids: list[TeamId] = Field(default_factory=list, max_length=50)


class UserScopeRead(BaseModel):
    """A user's scope as stored (sorted, without repeats)."""

    user_id: int
    scoped: bool
    regions: list[str]
    team_ids: list[int]

    @classmethod
    def of(cls, user_id: int, found: scope.Scope) -> UserScopeRead:
        """The read shape of a scope."""
        return cls(
            user_id=user_id,
            scoped=bool(found.regions or found.team_ids),
            regions=list(found.regions),
            team_ids=list(found.team_ids),
        )


@router.get("/{user_id}/scope", response_model=UserScopeRead)
def read_scope(
    user_id: PathId, session: SessionDep, user: Annotated[User, require(Permission.user_read)]
) -> UserScopeRead:
    """The regions and teams the user is limited to."""
    return UserScopeRead.of(user_id, scope.read_scope(session, user_id=user_id))


@router.put("/{user_id}/scope", response_model=UserScopeRead)
def set_scope(
    user_id: PathId,
    body: UserScopeIn,
    session: SessionDep,
    user: Annotated[User, require(Permission.user_manage)],
) -> UserScopeRead:
    """Replace the user's scope (audited); unknown team ids are refused (422 ``team_ids``)."""
    found = scope.set_scope(
        session, user_id=user_id, regions=body.regions, team_ids=body.team_ids, actor=user
    )
    return UserScopeRead.of(user_id, found)
