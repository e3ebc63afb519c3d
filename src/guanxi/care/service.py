"""Care rules: create, edit, switch on and off (audited), list; and the run history.

A rule is validated whole when saved and again when switched on: its templates (syntax,
declared variables, a trial render, length), the SMS template code and e-mail subjects its
channel needs, festivals only for festival greetings, coupons only where a coupon makes
sense, audience segments that exist, and a send time outside notify's quiet hours.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import guanxi.care.messages  # noqa: F401 - registers the error texts
from guanxi.analytics.policy import PROSPECT, SEGMENTS
from guanxi.audit.service import record
from guanxi.care.audience import uses_email, uses_sms
from guanxi.care.calendar import FESTIVALS
from guanxi.care.enums import COUPON_KINDS, CareChannel, RuleKind
from guanxi.care.models import CareRule, CareRun
from guanxi.care.policy import load_policy, quiet_error
from guanxi.care.schemas import CareRuleIn, CareRuleUpdate
from guanxi.care.templating import EMAIL_MAX, SMS_MAX, SUBJECT_MAX, TemplateField, check
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of

# Audited fields of a rule (the templates are audited by their text).
_FIELDS = (
    "name",
    "kind",
    "channel",
    "festivals",
    "subject_zh",
    "body_zh",
    "subject_en",
    "body_en",
    "sms_template",
    "send_time",
    "lead_days",
    "audience",
    "coupon_template",
    "winback_days",
    "priority",
)


def list_rules(session: Session) -> list[CareRule]:
    """Every rule, switched-on first, then by priority (highest first)."""
    return list(
        session.scalars(
            select(CareRule).order_by(
                CareRule.enabled.desc(), CareRule.priority.desc(), CareRule.id
            )
        )
    )


def get_rule(session: Session, rule_id: int) -> CareRule:
    """One rule, or NotFound."""
    rule = session.get(CareRule, rule_id)
    if rule is None:
        raise NotFound("care_rule_unknown", rule_id=rule_id)
    return rule


def validate(session: Session, rule_in: CareRuleIn) -> list[FieldError]:
    """Every problem of a rule, each naming its field (empty when the rule is sound)."""
    kind, channel = rule_in.kind, rule_in.channel
    errors: list[FieldError] = []
    email = uses_email(channel)
    body_limit = EMAIL_MAX if channel is CareChannel.email else SMS_MAX
    if not rule_in.body_zh:
        errors.append(FieldError(("body_zh",), "care_template_required", "Write the message"))
    if email and not rule_in.subject_zh:
        errors.append(
            FieldError(("subject_zh",), "care_subject_required", "An e-mail needs a subject")
        )
    if email and rule_in.body_en and not rule_in.subject_en:
        errors.append(
            FieldError(("subject_en",), "care_subject_required", "An e-mail needs a subject")
        )
    fields = [
        TemplateField(name, source, limit, lang)
        for name, source, limit, lang in (
            ("subject_zh", rule_in.subject_zh, SUBJECT_MAX, "zh_CN"),
            ("body_zh", rule_in.body_zh, body_limit, "zh_CN"),
            ("subject_en", rule_in.subject_en, SUBJECT_MAX, "en"),
            ("body_en", rule_in.body_en, body_limit, "en"),
        )
        if source
    ]
    errors.extend(check(kind, fields))
    if uses_sms(channel) and not rule_in.sms_template:
        errors.append(
            FieldError(
                ("sms_template",), "care_sms_template", "Choose the SMS template of the gateway"
            )
        )
    errors.extend(_festival_errors(rule_in))
    if rule_in.coupon_template and kind not in COUPON_KINDS:
        errors.append(
            FieldError(
                ("coupon_template",),
                "care_coupon_kind",
                "Only birthday, anniversary and win-back messages carry a coupon",
            )
        )
    if rule_in.coupon_template and kind in COUPON_KINDS:
        errors.extend(_coupon_errors(session, rule_in.coupon_template))
    for n, segment in enumerate(rule_in.audience.segments):
        if segment not in SEGMENTS and segment != PROSPECT:
            errors.append(
                FieldError(
                    ("audience", "segments", n),
                    "care_segment_unknown",
                    f"Unknown segment: {segment}",
                    {"value": segment},
                )
            )
    at = rule_in.send_time or load_policy(session).default_send_time
    quiet = quiet_error(session, "send_time", at)
    if quiet is not None:
        errors.append(quiet)
    return errors


def _coupon_errors(session: Session, code: str) -> list[FieldError]:
    """The coupon template must exist and be active (loyalty's templates)."""
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
            "care_coupon_unknown",
            f"No active coupon template has the code {code}",
            {"code": code},
        )
    ]


def _festival_errors(rule_in: CareRuleIn) -> list[FieldError]:
    if rule_in.kind is not RuleKind.festival:
        if rule_in.festivals:
            return [
                FieldError(
                    ("festivals",), "care_festivals_kind", "Only festival greetings name festivals"
                )
            ]
        return []
    if not rule_in.festivals:
        return [
            FieldError(("festivals",), "care_festivals_required", "Choose at least one festival")
        ]
    return [
        FieldError(
            ("festivals", n), "care_festival_unknown", f"Unknown festival: {code}", {"code": code}
        )
        for n, code in enumerate(rule_in.festivals)
        if code not in FESTIVALS
    ]


def _values(rule_in: CareRuleIn) -> dict[str, Any]:
    """The columns of a rule from its input."""
    data = rule_in.model_dump(exclude={"version"})
    data["kind"] = rule_in.kind.value
    data["channel"] = rule_in.channel.value
    data["festivals"] = json.dumps(sorted(set(rule_in.festivals)))
    data["audience"] = rule_in.audience.model_dump_json()
    return data


def _audited(rule: CareRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(rule, name)
        if name in ("festivals", "audience"):
            value = json.loads(value)
        elif name == "send_time":
            value = value.strftime("%H:%M") if value is not None else None
        out[name] = value
    return out


def create_rule(session: Session, *, rule_in: CareRuleIn, actor: User) -> CareRule:
    """Add a rule, switched off (preview it, then switch it on)."""
    with write_transaction(session):
        errors = validate(session, rule_in)
        if errors:
            raise ValidationFailed(errors)
        now = clock.now()
        rule = CareRule(
            **_values(rule_in), enabled=False, created_at=now, updated_at=now, updated_by=actor.id
        )
        session.add(rule)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="care.rule_created",
            target_type="care_rule",
            target_id=rule.id,
            after=_audited(rule),
        )
    return rule


def update_rule(
    session: Session, *, rule_id: int, rule_in: CareRuleUpdate, actor: User
) -> CareRule:
    """Change a rule (it keeps its on / off state); refused when someone changed it since
    ``rule_in.version`` was read."""
    with write_transaction(session):
        rule = get_rule(session, rule_id)
        if rule.version != rule_in.version:
            raise Conflict("version_conflict", field="version")
        errors = validate(session, rule_in)
        if errors:
            raise ValidationFailed(errors)
        before = _audited(rule)
        for name, value in _values(rule_in).items():
            setattr(rule, name, value)
        rule.updated_at = clock.now()
        rule.updated_by = actor.id
        rule.version += 1
        session.flush()
        after = _audited(rule)
        changed = [k for k in _FIELDS if before[k] != after[k]]
        record(
            session,
            actor=actor_of(actor),
            action="care.rule_changed",
            target_type="care_rule",
            target_id=rule.id,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return rule


def rule_input(rule: CareRule) -> CareRuleIn:
    """A stored rule as input again (to validate it before switching it on)."""
    data = _audited(rule)
    data["send_time"] = rule.send_time
    return CareRuleIn.model_validate(data)


def set_enabled(session: Session, *, rule_id: int, enabled: bool, actor: User) -> CareRule:
    """Switch a rule on (validated again: the quiet hours may have moved) or off."""
    with write_transaction(session):
        rule = get_rule(session, rule_id)
        if rule.enabled == enabled:
            code = "care_rule_enabled" if enabled else "care_rule_disabled"
            raise Conflict(code, field="enabled")
        if enabled:
            errors = validate(session, rule_input(rule))
            if errors:
                raise ValidationFailed(errors)
        rule.enabled = enabled
        rule.updated_at = clock.now()
        rule.updated_by = actor.id
        rule.version += 1
        record(
            session,
            actor=actor_of(actor),
            action="care.rule_enabled" if enabled else "care.rule_disabled",
            target_type="care_rule",
            target_id=rule.id,
            before={"enabled": not enabled},
            after={"enabled": enabled},
        )
    return rule


def list_runs(
    session: Session,
    *,
    rule_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
    with_activity: bool = False,
    limit: int = 200,
) -> list[CareRun]:
    """Runs newest day first (``with_activity``: only days that had eligible customers)."""
    stmt = select(CareRun).order_by(CareRun.run_date.desc(), CareRun.rule_id).limit(limit)
    if rule_id is not None:
        stmt = stmt.where(CareRun.rule_id == rule_id)
    if since is not None:
        stmt = stmt.where(CareRun.run_date >= since)
    if until is not None:
        stmt = stmt.where(CareRun.run_date <= until)
    if with_activity:
        stmt = stmt.where(CareRun.eligible > 0)
    return list(session.scalars(stmt))
