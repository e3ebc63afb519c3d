"""JSON routes of the outbound channels: the outbox (what waits, what failed and why; send
one again, cancel one), SMS templates, quiet hours, webhook endpoints, and the SMS
providers' callbacks (public, authenticated by the secret token in their path)."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from guanxi.core.errors import NotFound
from guanxi.core.ids import PathId, QueryId
from guanxi.notify import callbacks, outbox_admin, webhooks
from guanxi.notify.outbox import Channel, Delivery, OutboxStatus
from guanxi.notify.outbox_admin import OutboxFilters
from guanxi.notify.policy import QuietHoursPolicy, quiet_hours, save_quiet_hours
from guanxi.notify.schemas import (
    OutboxCounts,
    OutboxPage,
    OutboxRead,
    QuietHoursRead,
    SmsTemplateRead,
    SmsTemplateUpdate,
    TemplateCode,
    WebhookCreate,
    WebhookRead,
)
from guanxi.notify.sms import templates
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of

router = APIRouter(prefix="/api/v1", tags=["notify"])

# Deliveries are seen by supervisors and compliance; changed by administrators only.
Reader = Annotated[User, require(Permission.notify_read)]
Admin = Annotated[User, require(Permission.notify_manage)]


# --------------------------------------------------------------------------- outbox


@router.get("/outbox", response_model=OutboxPage)
def list_outbox(
    session: SessionDep,
    user: Reader,
    status: Annotated[list[OutboxStatus] | None, Query()] = None,
    channel: Annotated[list[Channel] | None, Query()] = None,
    delivery: Annotated[list[Delivery] | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=120)] = None,
    customer_id: QueryId = None,
    before: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OutboxPage:
    """Messages not sent yet (pending, being sent) and given up on (failed), newest first;
    ``status`` narrows the list (``sent`` shows sent ones, ``cancelled`` the cancelled),
    ``channel``, ``delivery``, ``source`` (a prefix such as ``care:``) filter it."""
    filters = OutboxFilters(
        statuses=tuple(status) if status else outbox_admin.DEFAULT_STATUSES,
        channels=tuple(channel or ()),
        deliveries=tuple(delivery or ()),
        source=source or None,
        customer_id=customer_id,
    )
    items = outbox_admin.list_outbox(session, filters=filters, before_id=before, limit=limit)
    return OutboxPage(
        items=[OutboxRead.model_validate(i) for i in items],
        next_before=items[-1].id if len(items) == limit else None,
    )


@router.get("/outbox/counts", response_model=OutboxCounts)
def outbox_counts(session: SessionDep, user: Reader) -> OutboxCounts:
    """Messages per channel and status."""
    return OutboxCounts(counts=outbox_admin.status_counts(session))


@router.post("/outbox/{message_id}/retry", response_model=OutboxRead)
def retry(message_id: PathId, session: SessionDep, user: Admin) -> OutboxRead:
    """Send a pending or failed message at the worker's next run (a failed one gets all
    its attempts again)."""
    return OutboxRead.model_validate(
        outbox_admin.retry_message(session, message_id=message_id, actor=actor_of(user))
    )


@router.post("/outbox/{message_id}/cancel", response_model=OutboxRead)
def cancel(message_id: PathId, session: SessionDep, user: Admin) -> OutboxRead:
    """Cancel a message that waits to be sent."""
    return OutboxRead.model_validate(
        outbox_admin.cancel_message(session, message_id=message_id, actor=actor_of(user))
    )


# --------------------------------------------------------------------------- SMS templates


def _template_read(view: templates.TemplateView) -> SmsTemplateRead:
    data = asdict(view)
    data["param_order"] = list(view.param_order)
    return SmsTemplateRead.model_validate(data)


@router.get("/notify/sms-templates", response_model=list[SmsTemplateRead])
def list_sms_templates(session: SessionDep, user: Reader) -> list[SmsTemplateRead]:
    """Every SMS template (built in and saved), by code."""
    return [_template_read(v) for v in templates.list_templates(session)]


@router.put("/notify/sms-templates/{code}", response_model=SmsTemplateRead)
def save_sms_template(
    code: TemplateCode, body: SmsTemplateUpdate, session: SessionDep, user: Admin
) -> SmsTemplateRead:
    """Create or change a template: the providers' approved template ids, the texts."""
    view = templates.save_template(session, code=code, values=body.model_dump(), actor=user)
    return _template_read(view)


# --------------------------------------------------------------------------- quiet hours


@router.get("/notify/quiet-hours", response_model=QuietHoursRead)
def get_quiet_hours(session: SessionDep, user: Reader) -> QuietHoursRead:
    """The quiet hours in force."""
    return QuietHoursRead.model_validate(asdict(quiet_hours(session)))


@router.put("/notify/quiet-hours", response_model=QuietHoursRead)
def put_quiet_hours(body: QuietHoursPolicy, session: SessionDep, user: Admin) -> QuietHoursRead:
    """Replace the quiet hours (audited)."""
    return QuietHoursRead.model_validate(asdict(save_quiet_hours(session, policy=body, actor=user)))


# --------------------------------------------------------------------------- webhooks


def _webhook_read(view: webhooks.EndpointView) -> WebhookRead:
    data = asdict(view)
    data["events"] = list(view.events)
    return WebhookRead.model_validate(data)


@router.get("/webhooks", response_model=list[WebhookRead])
def list_webhooks(session: SessionDep, user: Admin) -> list[WebhookRead]:
    """Every webhook endpoint, newest first."""
    return [_webhook_read(v) for v in webhooks.list_endpoints(session)]


@router.post("/webhooks", response_model=WebhookRead, status_code=201)
def create_webhook(body: WebhookCreate, session: SessionDep, user: Admin) -> WebhookRead:
    """Register an endpoint; the answer carries its signing secret, shown this once."""
    view = webhooks.create_endpoint(
        session, name=body.name, url=body.url, events=body.events, actor=user
    )
    return _webhook_read(view)


@router.post("/webhooks/{endpoint_id}/rotate", response_model=WebhookRead)
def rotate_webhook_secret(endpoint_id: PathId, session: SessionDep, user: Admin) -> WebhookRead:
    """Give the endpoint a new signing secret, shown this once."""
    return _webhook_read(webhooks.rotate_secret(session, endpoint_id=endpoint_id, actor=user))


@router.post("/webhooks/{endpoint_id}/disable", response_model=WebhookRead)
def disable_webhook(endpoint_id: PathId, session: SessionDep, user: Admin) -> WebhookRead:
    """Switch the endpoint off; its waiting deliveries are cancelled."""
    view = webhooks.set_active(session, endpoint_id=endpoint_id, active=False, actor=user)
    return _webhook_read(view)


@router.post("/webhooks/{endpoint_id}/enable", response_model=WebhookRead)
def enable_webhook(endpoint_id: PathId, session: SessionDep, user: Admin) -> WebhookRead:
    """Switch the endpoint on again."""
    view = webhooks.set_active(session, endpoint_id=endpoint_id, active=True, actor=user)
    return _webhook_read(view)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=list[OutboxRead])
def webhook_deliveries(endpoint_id: PathId, session: SessionDep, user: Admin) -> list[OutboxRead]:
    """The endpoint's newest deliveries with their state and last error."""
    webhooks.get_endpoint(session, endpoint_id)
    rows = webhooks.recent_deliveries(session, endpoint_id)
    return [OutboxRead.model_validate(outbox_admin.get_item(session, r.id)) for r in rows]


# --------------------------------------------------------------------------- SMS callbacks
# Public: the providers call them. The secret token in the path authenticates them
# (compared in constant time); no token configured switches them off (404).


def _check_token(request: Request, token: str) -> None:
    expected = request.app.state.settings.sms_callback_token
    if not expected or not secrets.compare_digest(token.encode(), expected.encode()):
        raise NotFound("not found")


_ALIYUN_OK = {"code": 0, "msg": "成功"}
_TENCENT_OK = {"result": 0, "errmsg": "OK"}
Payload = Annotated[Any, Body()]


@router.post("/public/sms/aliyun/{token}/report")
def aliyun_report(token: str, request: Request, session: SessionDep, payload: Payload) -> Any:
    """Aliyun SmsReport: delivery reports."""
    _check_token(request, token)
    callbacks.apply_reports(session, callbacks.aliyun_reports(payload))
    return _ALIYUN_OK


@router.post("/public/sms/aliyun/{token}/reply")
def aliyun_reply(token: str, request: Request, session: SessionDep, payload: Payload) -> Any:
    """Aliyun SmsUp: customers' replies (TD withdraws consent)."""
    _check_token(request, token)
    callbacks.apply_replies(session, callbacks.aliyun_replies(payload))
    return _ALIYUN_OK


@router.post("/public/sms/tencent/{token}/status")
def tencent_status(token: str, request: Request, session: SessionDep, payload: Payload) -> Any:
    """Tencent status callback: delivery reports."""
    _check_token(request, token)
    callbacks.apply_reports(session, callbacks.tencent_reports(payload))
    return _TENCENT_OK


@router.post("/public/sms/tencent/{token}/reply")
def tencent_reply(token: str, request: Request, session: SessionDep, payload: Payload) -> Any:
    """Tencent reply callback: customers' replies (TD withdraws consent)."""
    _check_token(request, token)
    callbacks.apply_replies(session, callbacks.tencent_replies(payload))
    return _TENCENT_OK
