"""JSON routes of campaigns (``/api/v1/campaigns/...``): campaigns and their cost lines,
launch and stop, the report with ROI and its export, and the campaign policy.

``campaign.read`` reads (the report), ``campaign.manage`` writes, launches, stops and
enters costs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from guanxi.campaigns import policy as campaign_policy
from guanxi.campaigns import roi, service
from guanxi.campaigns.launch import launch
from guanxi.campaigns.schemas import (
    CampaignIn,
    CampaignPolicyRead,
    CampaignRead,
    CampaignReport,
    CampaignUpdate,
    CostIn,
    CostRead,
)
from guanxi.campaigns.tracking import refresh_conversions
from guanxi.core.ids import PathId
from guanxi.core.web import request_language
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

Reader = Annotated[User, require(Permission.campaign_read)]
Manager = Annotated[User, require(Permission.campaign_manage)]


class LaunchRead(BaseModel):
    """What a launch did."""

    campaign_id: int
    status: str
    recipients: int
    control: int
    capped: int
    queued: int


@router.get("", response_model=list[CampaignRead])
def list_campaigns(
    session: SessionDep,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[CampaignRead]:
    """Campaigns, newest first."""
    return [CampaignRead.model_validate(c) for c in service.list_campaigns(session, limit=limit)]


@router.post("", response_model=CampaignRead, status_code=201)
def create_campaign(body: CampaignIn, session: SessionDep, user: Manager) -> CampaignRead:
    """Add a campaign (a draft; scheduled when it names a send time)."""
    return CampaignRead.model_validate(
        service.create_campaign(session, campaign_in=body, actor=user)
    )


@router.get("/policy", response_model=CampaignPolicyRead)
def get_policy(session: SessionDep, user: Reader) -> CampaignPolicyRead:
    """The campaigns' frequency cap."""
    return CampaignPolicyRead(**campaign_policy.load_policy(session).model_dump())


@router.put("/policy", response_model=CampaignPolicyRead)
def put_policy(
    body: campaign_policy.CampaignPolicy, session: SessionDep, user: Manager
) -> CampaignPolicyRead:
    """Replace the campaigns' frequency cap (audited)."""
    saved = campaign_policy.save_policy(session, policy=body, actor=user)
    return CampaignPolicyRead(**saved.model_dump())


@router.get("/{campaign_id}", response_model=CampaignRead)
def get_campaign(campaign_id: PathId, session: SessionDep, user: Reader) -> CampaignRead:
    """One campaign."""
    return CampaignRead.model_validate(service.get_campaign(session, campaign_id))


@router.put("/{campaign_id}", response_model=CampaignRead)
def update_campaign(
    campaign_id: PathId, body: CampaignUpdate, session: SessionDep, user: Manager
) -> CampaignRead:
    """Change a campaign before its launch (name the version you read)."""
    return CampaignRead.model_validate(
        service.update_campaign(session, campaign_id=campaign_id, campaign_in=body, actor=user)
    )


@router.post("/{campaign_id}/launch", response_model=LaunchRead)
def launch_campaign(campaign_id: PathId, session: SessionDep, user: Manager) -> LaunchRead:
    """Launch now (or resume an interrupted launch): snapshot the audience, queue the
    treated recipients' messages."""
    result = launch(session, campaign_id=campaign_id, actor=user)
    return LaunchRead(**vars(result))


@router.post("/{campaign_id}/stop", response_model=CampaignRead)
def stop_campaign(campaign_id: PathId, session: SessionDep, user: Manager) -> CampaignRead:
    """Stop: cancel the messages not yet sent (audited)."""
    return CampaignRead.model_validate(
        service.stop_campaign(session, campaign_id=campaign_id, actor=user)
    )


@router.post("/{campaign_id}/conversions", response_model=CampaignReport)
def refresh(campaign_id: PathId, session: SessionDep, user: Manager) -> CampaignReport:
    """Recompute the conversions now (the worker does it hourly) and return the report."""
    service.get_campaign(session, campaign_id)
    refresh_conversions(session, campaign_id=campaign_id)
    return roi.report(session, campaign_id=campaign_id)


@router.post("/{campaign_id}/costs", response_model=CostRead, status_code=201)
def add_cost(campaign_id: PathId, body: CostIn, session: SessionDep, user: Manager) -> CostRead:
    """Add a cost line."""
    return CostRead.model_validate(
        service.add_cost(session, campaign_id=campaign_id, cost_in=body, actor=user)
    )


@router.delete("/{campaign_id}/costs/{cost_id}", status_code=204)
def delete_cost(
    campaign_id: PathId, cost_id: PathId, session: SessionDep, user: Manager
) -> Response:
    """Remove a cost line."""
    service.delete_cost(session, campaign_id=campaign_id, cost_id=cost_id, actor=user)
    return Response(status_code=204)


@router.get("/{campaign_id}/report", response_model=CampaignReport)
def get_report(campaign_id: PathId, session: SessionDep, user: Reader) -> CampaignReport:
    """The funnel per group, ROI and conversion uplift with 95 % intervals, satisfaction
    before and after."""
    return roi.report(session, campaign_id=campaign_id)


@router.get("/{campaign_id}/report/export")
def export_report(
    campaign_id: PathId,
    request: Request,
    session: SessionDep,
    user: Reader,
    format: Literal["csv", "xlsx"] = "csv",  # noqa: A002 - the query parameter's name
) -> Response:
    """The report as CSV (UTF-8 with BOM) or XLSX."""
    return export_response(request, session, campaign_id, format)


def export_response(request: Request, session: SessionDep, campaign_id: int, fmt: str) -> Response:
    """The export download (shared with the report page)."""
    from guanxi.analytics.dashboards import to_csv, to_xlsx

    table = roi.export_table(session, campaign_id=campaign_id, lang=request_language(request))
    name = f"campaign-{campaign_id}"
    if fmt == "xlsx":
        return Response(
            to_xlsx(table, "campaign"),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return Response(
        to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
