"""Row-level scope: the optional regions and desk teams a user is limited to.

A user without scope rows sees what the role allows. A scoped user sees, in addition to
the role's own rules, only:

- customers whose region starts with one of their regions (a user scoped to teams only
  sees no customers: a scope lists what is allowed, never what is not);
- tickets of one of their teams, or of a customer in their regions;
- shipments of the customers they see;
- sales opportunities of customers in their regions, and the leads without a customer
  that they own (such a lead has no region: the owner is its only allowance).

The rules are applied where each record type is looked up and listed
(``customers.service.can_see`` / ``visible_clause``, ``tickets.service.get_ticket`` /
``ticket_clause``, shipments through the customer, ``sales.service.scope_clause`` /
``in_scope``), so every page, API route and export agrees and out-of-scope records answer
404 like missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, object_session

from guanxi.audit.labels import ACTION_LABELS
from guanxi.audit.service import record
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, NotFound, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.security.models import User, UserScope
from guanxi.security.service import actor_of

ACTION_LABELS["user.scope_set"] = N_("Row-level scope changed")


class ScopeKind(StrEnum):
    """What a scope row limits: customers' regions or service-desk teams."""

    region = "region"
    team = "team"


@dataclass(frozen=True)
class Scope:
    """A scoped user's limits: region prefixes and team ids (either may be empty)."""

    regions: tuple[str, ...] = ()
    team_ids: tuple[int, ...] = ()

    def covers_region(self, region: str | None) -> bool:
        """Whether a customer of ``region`` is inside the scope."""
        return region is not None and any(region.startswith(r) for r in self.regions)


# The scope read for a user instance, kept on it: instances live for one request's
# session, so this is a per-request cache that a change of scope cannot outlive.
_CACHE_ATTR = "_guanxi_row_scope"


def _stored(session: Session, user_id: int) -> Scope:
    rows = session.execute(
        select(UserScope.kind, UserScope.value).where(UserScope.user_id == user_id)
    ).all()
    return Scope(
        regions=tuple(sorted(v for k, v in rows if k == ScopeKind.region.value)),
        team_ids=tuple(sorted(int(v) for k, v in rows if k == ScopeKind.team.value)),
    )


def scope_of(user: User) -> Scope | None:
    """The user's scope, or None when unscoped. No query for unscoped users (the flag comes
    with the user's row); one per request for scoped ones."""
    if not getattr(user, "scoped", False):
        return None
    cached: Scope | None = user.__dict__.get(_CACHE_ATTR)
    if cached is not None:
        return cached
    session = object_session(user)
    # A scoped user whose rows cannot be read (a detached instance) sees nothing rather
    # than everything.
    found = _stored(session, user.id) if session is not None else Scope()
    user.__dict__[_CACHE_ATTR] = found
    return found


def read_scope(session: Session, *, user_id: int) -> Scope:
    """The scope rows of a user (empty when unscoped), for the form and the API."""
    if session.get(User, user_id) is None:
        raise NotFound("user not found", user_id=user_id)
    return _stored(session, user_id)


def _clean_regions(regions: list[str]) -> tuple[str, ...]:
    cleaned = sorted({r.strip() for r in regions if r.strip()})
    for n, region in enumerate(cleaned):
        if len(region) > 50:
            error = FieldError(
                ("regions", n), "string_too_long", "at most 50 characters", {"max_length": 50}
            )
            raise ValidationFailed([error])
        # PostgreSQL refuses NUL in text, and no control character belongs in a name.
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in region):
            error = FieldError(("regions", n), "string_pattern_mismatch", "Invalid format")
            raise ValidationFailed([error])
    return tuple(cleaned)


def _check_teams(session: Session, team_ids: list[int]) -> tuple[int, ...]:
    # Teams belong to the service desk; imported here, not at the top, because security
    # sits below every domain (the desk's tables are loaded with the app's models).
    from guanxi.tickets.models import Team

    wanted = sorted(set(team_ids))
    if not wanted:
        return ()
    known = set(session.scalars(select(Team.id).where(Team.id.in_(wanted))))
    for n, team_id in enumerate(wanted):
        if team_id not in known:
            raise ValidationFailed(
                [FieldError(("team_ids", n), "team_unknown", "No such team", {"team_id": team_id})]
            )
    return tuple(wanted)


def set_scope(
    session: Session, *, user_id: int, regions: list[str], team_ids: list[int], actor: User
) -> Scope:
    """Replace a user's scope (both lists empty: unscoped, the role's whole reach); audited
    as ``user.scope_set`` with the scope before and after."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user not found", user_id=user_id)
        before = read_scope(session, user_id=user_id)
        after = Scope(regions=_clean_regions(regions), team_ids=_check_teams(session, team_ids))
        session.execute(delete(UserScope).where(UserScope.user_id == user_id))
        rows = [(ScopeKind.region, r) for r in after.regions]
        rows += [(ScopeKind.team, str(t)) for t in after.team_ids]
        session.add_all([UserScope(user_id=user_id, kind=k.value, value=v) for k, v in rows])
        user.scoped = bool(after.regions or after.team_ids)  # type: ignore[attr-defined]
        user.__dict__.pop(_CACHE_ATTR, None)
        record(
            session,
            actor=actor_of(actor),
            action="user.scope_set",
            target_type="user",
            target_id=user_id,
            before={"regions": list(before.regions), "team_ids": list(before.team_ids)},
            after={"regions": list(after.regions), "team_ids": list(after.team_ids)},
        )
    return after
