"""Administrators' pages of the outbound channels: the outbox (filters, counts, retry,
cancel), the quiet hours, the SMS template registry and the webhook endpoints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from guanxi.core.errors import Conflict, FieldError, ValidationFailed
from guanxi.core.ids import PathId, QueryId
from guanxi.core.web import field_errors_from_pydantic, request_language, translate_field_error
from guanxi.notify import outbox_admin, webhooks
from guanxi.notify.labels import labeller
from guanxi.notify.outbox import Category, Channel, Delivery, OutboxStatus
from guanxi.notify.outbox_admin import OutboxFilters
from guanxi.notify.policy import QuietHoursPolicy, quiet_hours, save_quiet_hours
from guanxi.notify.schemas import SmsTemplateUpdate
from guanxi.notify.sms import templates
from guanxi.security.deps import SessionDep, require
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of
from guanxi.web.render import render

router = APIRouter()

Reader = Annotated[User, require(Permission.notify_read)]
Admin = Annotated[User, require(Permission.notify_manage)]
PAGE = 100


def _messages(request: Request, errors: list[FieldError]) -> list[str]:
    lang = request_language(request)
    return [f"{'.'.join(str(p) for p in e.loc)}: {translate_field_error(e, lang)}" for e in errors]


def _enum_list(values: list[str], enum: Any) -> tuple[Any, ...]:
    known = {e.value for e in enum}
    return tuple(enum(v) for v in values if v in known)


# --------------------------------------------------------------------------- outbox


@router.get("/admin/outbox", response_class=HTMLResponse)
def outbox_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    status: Annotated[list[str] | None, Query()] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    delivery: Annotated[list[str] | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=120)] = None,
    before: QueryId = None,
    errors: list[str] | None = None,
) -> Response:
    """The outbox: counts per channel and status, then the messages, newest first."""
    statuses = _enum_list(status or [], OutboxStatus) or outbox_admin.DEFAULT_STATUSES
    filters = OutboxFilters(
        statuses=statuses,
        channels=_enum_list(channel or [], Channel),
        deliveries=_enum_list(delivery or [], Delivery),
        source=source or None,
    )
    items = outbox_admin.list_outbox(session, filters=filters, before_id=before, limit=PAGE)
    return render(
        request,
        "notify/outbox.html",
        nlabel=labeller(request),
        items=items,
        counts=outbox_admin.status_counts(session),
        quiet=quiet_hours(session),
        filters=filters,
        statuses=list(OutboxStatus),
        channels=list(Channel),
        deliveries=list(Delivery),
        next_before=items[-1].id if len(items) == PAGE else None,
        errors=errors or [],
    )


def _back(request: Request) -> str:
    referer = request.headers.get("referer", "")
    # Only our own page, never an outside address (no open redirect).
    path = referer.split("://", 1)[-1].partition("/")[2]
    return "/" + path if path.startswith("admin/outbox") else "/admin/outbox"


@router.post("/admin/outbox/{message_id}/retry")
def retry(message_id: PathId, request: Request, session: SessionDep, user: Admin) -> Response:
    """Send the message again at the next run."""
    outbox_admin.retry_message(session, message_id=message_id, actor=actor_of(user))
    return RedirectResponse(_back(request), status_code=303)


@router.post("/admin/outbox/{message_id}/cancel")
def cancel(message_id: PathId, request: Request, session: SessionDep, user: Admin) -> Response:
    """Cancel a waiting message."""
    outbox_admin.cancel_message(session, message_id=message_id, actor=actor_of(user))
    return RedirectResponse(_back(request), status_code=303)


@router.post("/admin/outbox/quiet-hours", response_class=HTMLResponse)
def quiet(
    request: Request,
    session: SessionDep,
    user: Admin,
    start: Annotated[str, Form()] = "",
    end: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
) -> Response:
    """Save the quiet hours."""
    try:
        policy = QuietHoursPolicy.model_validate({"start": start, "end": end, "timezone": timezone})
    except ValidationError as exc:
        errors = _messages(request, field_errors_from_pydantic(list(exc.errors())))
        return outbox_page(request, session, user, errors=errors)
    save_quiet_hours(session, policy=policy, actor=user)
    return RedirectResponse("/admin/outbox#quiet-hours", status_code=303)


# --------------------------------------------------------------------------- SMS templates


@router.get("/admin/sms-templates", response_class=HTMLResponse)
def templates_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    edit: Annotated[str | None, Query(max_length=40)] = None,
    errors: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    """Every template with its providers' ids; one of them in the edit form."""
    rows = templates.list_templates(session)
    current = next((t for t in rows if t.code == edit), None) if edit else None
    form = values or (asdict(current) if current else None)
    return render(
        request,
        "notify/sms_templates.html",
        nlabel=labeller(request),
        rows=rows,
        edit=edit,
        form=form,
        categories=list(Category),
        errors=errors or [],
        status_code=422 if errors else 200,
    )


@router.post("/admin/sms-templates/{code}", response_class=HTMLResponse)
def save_template(
    code: str,
    request: Request,
    session: SessionDep,
    user: Admin,
    name: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    sign: Annotated[str, Form()] = "",
    aliyun_template: Annotated[str, Form()] = "",
    tencent_template: Annotated[str, Form()] = "",
    text_zh: Annotated[str, Form()] = "",
    text_en: Annotated[str, Form()] = "",
    param_order: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
) -> Response:
    """Save one template."""
    values: dict[str, Any] = {
        "code": code,
        "name": name,
        "category": category,
        "sign": sign,
        "aliyun_template": aliyun_template or None,
        "tencent_template": tencent_template or None,
        "text_zh": text_zh,
        "text_en": text_en,
        "param_order": [p.strip() for p in param_order.replace("，", ",").split(",") if p.strip()],
        "active": active == "1",
    }
    try:
        body = SmsTemplateUpdate.model_validate({k: v for k, v in values.items() if k != "code"})
        if not code.isascii() or not code.replace("_", "").isalnum() or not code[:1].isalpha():
            raise ValidationFailed(
                [FieldError(("code",), "sms_template_code", "A template code is lower-case")]
            )
        templates.save_template(session, code=code, values=body.model_dump(), actor=user)
    except ValidationError as exc:
        errors = _messages(request, field_errors_from_pydantic(list(exc.errors())))
        return templates_page(request, session, user, edit=code, errors=errors, values=values)
    except ValidationFailed as exc:
        errors = _messages(request, exc.errors)
        return templates_page(request, session, user, edit=code, errors=errors, values=values)
    return RedirectResponse(f"/admin/sms-templates#t-{code}", status_code=303)


# --------------------------------------------------------------------------- webhooks


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request,
    session: SessionDep,
    user: Admin,
    errors: list[str] | None = None,
    created: webhooks.EndpointView | None = None,
) -> Response:
    """The endpoints; a just created or rotated one shows its secret once."""
    return render(
        request,
        "notify/webhooks.html",
        endpoints=webhooks.list_endpoints(session),
        events=webhooks.EVENTS,
        errors=errors or [],
        created=created,
        status_code=422 if errors else 200,
    )


@router.post("/admin/webhooks", response_class=HTMLResponse)
def create_webhook(
    request: Request,
    session: SessionDep,
    user: Admin,
    name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Register an endpoint and show its secret once."""
    try:
        view = webhooks.create_endpoint(
            session, name=name, url=url.strip(), events=events or [], actor=user
        )
    except ValidationFailed as exc:
        return webhooks_page(request, session, user, errors=_messages(request, exc.errors))
    return webhooks_page(request, session, user, created=view)


@router.post("/admin/webhooks/{endpoint_id}/rotate", response_class=HTMLResponse)
def rotate(endpoint_id: PathId, request: Request, session: SessionDep, user: Admin) -> Response:
    """New secret, shown once."""
    view = webhooks.rotate_secret(session, endpoint_id=endpoint_id, actor=user)
    return webhooks_page(request, session, user, created=view)


@router.post("/admin/webhooks/{endpoint_id}/disable")
def disable(endpoint_id: PathId, session: SessionDep, user: Admin) -> Response:
    """Switch the endpoint off."""
    try:
        webhooks.set_active(session, endpoint_id=endpoint_id, active=False, actor=user)
    except Conflict:
        pass  # already off: the page shows it so
    return RedirectResponse("/admin/webhooks", status_code=303)


@router.post("/admin/webhooks/{endpoint_id}/enable")
def enable(endpoint_id: PathId, session: SessionDep, user: Admin) -> Response:
    """Switch the endpoint on again."""
    webhooks.set_active(session, endpoint_id=endpoint_id, active=True, actor=user)
    return RedirectResponse("/admin/webhooks", status_code=303)


@router.get("/admin/webhooks/{endpoint_id}", response_class=HTMLResponse)
def webhook_deliveries(
    endpoint_id: PathId, request: Request, session: SessionDep, user: Admin
) -> Response:
    """One endpoint's recent deliveries."""
    endpoint = webhooks.get_endpoint(session, endpoint_id)
    items = [
        outbox_admin.get_item(session, r.id)
        for r in webhooks.recent_deliveries(session, endpoint_id)
    ]
    return render(
        request, "notify/webhook.html", nlabel=labeller(request), endpoint=endpoint, items=items
    )
