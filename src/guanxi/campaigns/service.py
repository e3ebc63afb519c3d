"""Campaigns: create, edit (before launch), cost lines, stop; listing and reading.

A campaign is validated whole when saved: an audience that exists, variants with distinct
letters and the texts their channel needs (an SMS names an active gateway template; an
e-mail has a subject), only the known placeholders, a target URL when a text carries the
link, an active coupon template, a send time in the future. Launching is
:mod:`guanxi.campaigns.launch`; clicks and conversions :mod:`guanxi.campaigns.tracking`.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import guanxi.campaigns.campaign_messages  # noqa: F401 - registers the error texts
from guanxi.audit.service import Actor, record
from guanxi.campaigns.models import Campaign, CampaignCost, CampaignVariant
from guanxi.campaigns.schemas import (
    CampaignChannel,
    CampaignIn,
    CampaignStatus,
    CampaignUpdate,
    CostIn,
)
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of

# The placeholders a campaign text may use.
PLACEHOLDERS = ("name", "company", "link", "coupon_name", "coupon_code")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# Audited fields of a campaign (variants are audited as a list of their texts).
_FIELDS = (
    "name",
    "goal",
    "audience_id",
    "channel",
    "target_url",
    "coupon_template",
    "send_at",
    "budget_fen",
    "control_pct",
    "rate_per_hour",
    "attribution_days",
)
EDITABLE = (CampaignStatus.draft.value, CampaignStatus.scheduled.value)


def _actor(actor: Actor | User) -> Actor:
    return actor if isinstance(actor, Actor) else actor_of(actor)


def list_campaigns(session: Session, *, limit: int = 200) -> list[Campaign]:
    """Campaigns newest first, with their variants and costs loaded."""
    stmt = (
        select(Campaign)
        .options(selectinload(Campaign.variants), selectinload(Campaign.costs))
        .order_by(Campaign.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    """One campaign, or NotFound."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign_unknown", campaign_id=campaign_id)
    return campaign


def total_cost(campaign: Campaign) -> int:
    """The sum of the campaign's cost lines, in fen."""
    return sum(c.amount_fen for c in campaign.costs)


def _placeholder_errors(field: tuple[str | int, ...], text: str) -> list[FieldError]:
    unknown = [m for m in _PLACEHOLDER.findall(text) if m not in PLACEHOLDERS]
    if not unknown:
        return []
    available = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    return [
        FieldError(
            field,
            "campaign_placeholder",
            f"Unknown placeholder {{{unknown[0]}}}; you can use: {available}",
            {"name": "{" + unknown[0] + "}", "available": available},
        )
    ]


def uses_link(campaign_in: CampaignIn) -> bool:
    """Whether any text of the campaign carries the tracked link."""
    return any(
        "{link}" in text
        for v in campaign_in.variants
        for text in (v.subject_zh, v.body_zh, v.subject_en, v.body_en)
    )


def validate(
    session: Session, campaign_in: CampaignIn, *, now: datetime | None = None
) -> list[FieldError]:
    """Every problem of a campaign, each naming its field (empty when it is sound)."""
    from guanxi.campaigns.models import Audience

    errors: list[FieldError] = []
    audience = session.get(Audience, campaign_in.audience_id)
    if audience is None or audience.archived_at is not None:
        errors.append(FieldError(("audience_id",), "campaign_audience_unknown", "No such audience"))
    url = campaign_in.target_url
    if url and not url.lower().startswith(("http://", "https://")):
        errors.append(
            FieldError(
                ("target_url",),
                "campaign_target_url",
                "Give a web address starting with http:// or https://",
            )
        )
    if not url and uses_link(campaign_in):
        errors.append(
            FieldError(
                ("target_url",),
                "campaign_link_needs_url",
                "A message with a link needs the target URL",
            )
        )
    seen: set[str] = set()
    sms = campaign_in.channel is CampaignChannel.sms
    for n, v in enumerate(campaign_in.variants):
        at: tuple[str | int, ...] = ("variants", n)
        if v.code in seen:
            errors.append(
                FieldError(
                    (*at, "code"), "campaign_variant_duplicate", "Each variant needs its own letter"
                )
            )
        seen.add(v.code)
        if not v.body_zh:
            errors.append(
                FieldError((*at, "body_zh"), "campaign_body_required", "Write the message")
            )
        if not sms and not v.subject_zh:
            errors.append(
                FieldError(
                    (*at, "subject_zh"), "campaign_subject_required", "An e-mail needs a subject"
                )
            )
        if not sms and v.body_en and not v.subject_en:
            errors.append(
                FieldError(
                    (*at, "subject_en"), "campaign_subject_required", "An e-mail needs a subject"
                )
            )
        if sms:
            errors.extend(_sms_template_errors(session, (*at, "sms_template"), v.sms_template))
        for name in ("subject_zh", "body_zh", "subject_en", "body_en"):
            errors.extend(_placeholder_errors((*at, name), getattr(v, name)))
    if campaign_in.coupon_template:
        errors.extend(_coupon_errors(session, campaign_in.coupon_template))
    moment = now or clock.now()
    if campaign_in.send_at is not None and campaign_in.send_at < moment - timedelta(minutes=1):
        errors.append(
            FieldError(("send_at",), "campaign_send_at_past", "Choose a send time in the future")
        )
    return errors


def _sms_template_errors(
    session: Session, field: tuple[str | int, ...], code: str | None
) -> list[FieldError]:
    from guanxi.notify.sms.templates import get_template

    if not code:
        return [
            FieldError(field, "campaign_sms_template", "Choose the SMS template of the gateway")
        ]
    view = get_template(session, code)
    if view is not None and view.active:
        return []
    return [
        FieldError(
            field,
            "campaign_sms_template_unknown",
            f"No active SMS template has the code {code}",
            {"code": code},
        )
    ]


def _coupon_errors(session: Session, code: str) -> list[FieldError]:
    from guanxi.loyalty.coupons import get_template

    try:
        active = get_template(session, code).active
    except NotFound:
        active = False
    if active:
        return []
    return [
        FieldError(
            ("coupon_template",),
            "campaign_coupon_unknown",
            f"No active coupon template has the code {code}",
            {"code": code},
        )
    ]


def _values(campaign_in: CampaignIn) -> dict[str, Any]:
    data = campaign_in.model_dump(exclude={"version", "variants"})
    data["channel"] = campaign_in.channel.value
    data["target_url"] = campaign_in.target_url
    return data


def _variants(campaign_in: CampaignIn) -> list[CampaignVariant]:
    sms = campaign_in.channel is CampaignChannel.sms
    return [
        CampaignVariant(
            code=v.code,
            weight=v.weight,
            sms_template=v.sms_template if sms else None,
            subject_zh=v.subject_zh,
            body_zh=v.body_zh,
            subject_en=v.subject_en,
            body_en=v.body_en,
        )
        for v in campaign_in.variants
    ]


def _audited(campaign: Campaign) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(campaign, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["variants"] = [
        {
            "code": v.code,
            "weight": v.weight,
            "sms_template": v.sms_template,
            "subject_zh": v.subject_zh,
            "body_zh": v.body_zh,
            "subject_en": v.subject_en,
            "body_en": v.body_en,
        }
        for v in campaign.variants
    ]
    return out


def _status_for(campaign_in: CampaignIn) -> str:
    return (
        CampaignStatus.scheduled.value
        if campaign_in.send_at is not None
        else CampaignStatus.draft.value
    )


def create_campaign(session: Session, *, campaign_in: CampaignIn, actor: User) -> Campaign:
    """Add a campaign: a draft, or scheduled when it names a send time. Its random seed
    (the control / variant split) is drawn here and kept."""
    with write_transaction(session):
        errors = validate(session, campaign_in)
        if errors:
            raise ValidationFailed(errors)
        now = clock.now()
        campaign = Campaign(
            **_values(campaign_in),
            seed=secrets.randbits(62),
            status=_status_for(campaign_in),
            created_at=now,
            created_by=actor.id,
            updated_at=now,
            updated_by=actor.id,
        )
        campaign.variants = _variants(campaign_in)
        session.add(campaign)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="campaign.created",
            target_type="campaign",
            target_id=campaign.id,
            after=_audited(campaign),
        )
    return campaign


def update_campaign(
    session: Session, *, campaign_id: int, campaign_in: CampaignUpdate, actor: User
) -> Campaign:
    """Change a campaign before its launch; refused when someone changed it since
    ``campaign_in.version`` was read, or once it is launching."""
    with write_transaction(session):
        campaign = get_campaign(session, campaign_id)
        if campaign.status not in EDITABLE:
            raise Conflict("campaign_not_editable", field="status")
        if campaign.version != campaign_in.version:
            raise Conflict("version_conflict", field="version")
        errors = validate(session, campaign_in)
        if errors:
            raise ValidationFailed(errors)
        before = _audited(campaign)
        for name, value in _values(campaign_in).items():
            setattr(campaign, name, value)
        # The old variants go first: a new one may reuse a letter (unique per campaign).
        campaign.variants.clear()
        session.flush()
        campaign.variants = _variants(campaign_in)
        campaign.status = _status_for(campaign_in)
        campaign.updated_at = clock.now()
        campaign.updated_by = actor.id
        campaign.version += 1
        session.flush()
        after = _audited(campaign)
        changed = [k for k in after if before[k] != after[k]]
        record(
            session,
            actor=actor_of(actor),
            action="campaign.changed",
            target_type="campaign",
            target_id=campaign.id,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return campaign


def add_cost(session: Session, *, campaign_id: int, cost_in: CostIn, actor: User) -> CampaignCost:
    """Add a cost line (at any time: costs often arrive after the launch)."""
    with write_transaction(session):
        campaign = get_campaign(session, campaign_id)
        cost = CampaignCost(
            campaign_id=campaign.id,
            label=cost_in.label,
            amount_fen=cost_in.amount_fen,
            created_at=clock.now(),
            created_by=actor.id,
        )
        session.add(cost)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="campaign.cost_added",
            target_type="campaign",
            target_id=campaign.id,
            after={"id": cost.id, "label": cost.label, "amount_fen": cost.amount_fen},
        )
    session.refresh(campaign)
    return cost


def delete_cost(session: Session, *, campaign_id: int, cost_id: int, actor: User) -> None:
    """Remove a cost line entered by mistake (audited with what it was)."""
    with write_transaction(session):
        cost = session.get(CampaignCost, cost_id)
        if cost is None or cost.campaign_id != campaign_id:
            raise NotFound("campaign_unknown", cost_id=cost_id)
        before = {"id": cost.id, "label": cost.label, "amount_fen": cost.amount_fen}
        session.delete(cost)
        record(
            session,
            actor=actor_of(actor),
            action="campaign.cost_removed",
            target_type="campaign",
            target_id=campaign_id,
            before=before,
        )
    session.expire_all()


def stop_campaign(session: Session, *, campaign_id: int, actor: Actor | User) -> Campaign:
    """Stop a campaign: a draft or scheduled one never goes out; a launching or launched
    one has its messages not yet sent cancelled (notify's ``cancel_pending``); a launch in
    progress sees the status and queues no further chunk."""
    from guanxi.notify.outbox import cancel_pending

    with write_transaction(session):
        # Locked first (PostgreSQL): a launch's chunk in progress commits before the
        # pending messages are cancelled, so none of its messages escape the stop.
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise NotFound("campaign_unknown", campaign_id=campaign_id)
        if campaign.status == CampaignStatus.stopped.value:
            raise Conflict("campaign_not_stoppable", field="status")
        before = campaign.status
        cancelled = cancel_pending(session, source=campaign.source, reason="campaign stopped")
        now = clock.now()
        campaign.status = CampaignStatus.stopped.value
        campaign.stopped_at = now
        campaign.updated_at = now
        campaign.version += 1
        record(
            session,
            actor=_actor(actor),
            action="campaign.stopped",
            target_type="campaign",
            target_id=campaign.id,
            before={"status": before},
            after={"status": campaign.status, "cancelled": cancelled},
        )
    return campaign


def campaign_input(campaign: Campaign) -> CampaignUpdate:
    """A stored campaign as input again (the edit form)."""
    data = _audited(campaign)
    data["send_at"] = campaign.send_at
    data["version"] = campaign.version
    data["variants"] = [
        {k: v for k, v in variant.items() if k != "sms_template" or v is not None}
        for variant in data["variants"]
    ]
    data["coupon_template"] = campaign.coupon_template
    return CampaignUpdate.model_validate(data)
