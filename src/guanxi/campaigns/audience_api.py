"""JSON routes of audiences (``/api/v1/audiences/...``): the saved audiences, and the
live count of a definition while it is edited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from guanxi.campaigns import audiences as service
from guanxi.campaigns.schemas import (
    AudienceCount,
    AudienceDefinition,
    AudienceIn,
    AudienceMember,
    AudienceRead,
)
from guanxi.core.ids import PathId
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/audiences", tags=["audiences"])

Reader = Annotated[User, require(Permission.campaign_read)]
Manager = Annotated[User, require(Permission.campaign_manage)]


def default_language(request: Request) -> str:
    """The site's language, which customers without one recorded are written to in."""
    return str(request.app.state.settings.default_language)


@router.get("", response_model=list[AudienceRead])
def list_audiences(
    session: SessionDep,
    user: Reader,
    archived: Annotated[bool, Query(description="the archived audiences instead")] = False,
) -> list[AudienceRead]:
    """Saved audiences by name (the current ones, or the archived ones)."""
    return [
        AudienceRead.model_validate(a) for a in service.list_audiences(session, archived=archived)
    ]


@router.post("", response_model=AudienceRead, status_code=201)
def create_audience(body: AudienceIn, session: SessionDep, user: Manager) -> AudienceRead:
    """Save a new audience (audited)."""
    return AudienceRead.model_validate(service.save_audience(session, audience_in=body, actor=user))


@router.post("/count", response_model=AudienceCount)
def count_audience(
    body: AudienceDefinition, request: Request, session: SessionDep, user: Reader
) -> AudienceCount:
    """How many active customers a definition holds now (the live count of the editor)."""
    return AudienceCount(
        count=service.live_count(session, body, default_language=default_language(request))
    )


@router.get("/{audience_id}", response_model=AudienceRead)
def get_audience(audience_id: PathId, session: SessionDep, user: Reader) -> AudienceRead:
    """One saved audience."""
    return AudienceRead.model_validate(service.get_audience(session, audience_id))


@router.put("/{audience_id}", response_model=AudienceRead)
def update_audience(
    audience_id: PathId, body: AudienceIn, session: SessionDep, user: Manager
) -> AudienceRead:
    """Replace an audience's name, description and filters (audited; name the version you
    read to be told of a concurrent edit)."""
    return AudienceRead.model_validate(
        service.save_audience(session, audience_in=body, actor=user, audience_id=audience_id)
    )


@router.get("/{audience_id}/count", response_model=AudienceCount)
def count_saved(
    audience_id: PathId, request: Request, session: SessionDep, user: Reader
) -> AudienceCount:
    """How many active customers a saved audience holds now."""
    audience = service.get_audience(session, audience_id)
    return AudienceCount(
        count=service.count_members(
            session, service.definition_of(audience), default_language=default_language(request)
        )
    )


@router.get("/{audience_id}/sample", response_model=list[AudienceMember])
def sample(
    audience_id: PathId, request: Request, session: SessionDep, user: Reader
) -> list[AudienceMember]:
    """The newest customers of a saved audience, masked."""
    audience = service.get_audience(session, audience_id)
    members = service.sample_members(
        session, service.definition_of(audience), default_language=default_language(request)
    )
    return [AudienceMember(**vars(m)) for m in members]


@router.delete("/{audience_id}", response_model=AudienceRead)
def archive_audience(audience_id: PathId, session: SessionDep, user: Manager) -> AudienceRead:
    """Archive an audience (audited): kept for the campaigns that used it, no longer
    offered; ``POST .../restore`` brings it back."""
    return AudienceRead.model_validate(
        service.set_archived(session, audience_id=audience_id, archived=True, actor=user)
    )


@router.post("/{audience_id}/restore", response_model=AudienceRead)
def restore_audience(audience_id: PathId, session: SessionDep, user: Manager) -> AudienceRead:
    """Bring an archived audience back (audited)."""
    return AudienceRead.model_validate(
        service.set_archived(session, audience_id=audience_id, archived=False, actor=user)
    )
