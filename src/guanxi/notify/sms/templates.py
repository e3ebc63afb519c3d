"""The SMS template registry: our template codes, each provider's approved template id,
the signature, and the text in Chinese and English.

Chinese carriers deliver only texts from templates the provider has approved, under an
approved signature (签名). Other domains name our codes (``survey_invite``, ``care_birthday``
...); an administrator enters the provider's template id once it is approved. The codes
below are built in (their texts are the defaults); a saved row overrides them.

Parameters of the built-in templates (what callers pass in ``Outbound.params``):

==================  ==========  ==============================================
code                category    parameters
==================  ==========  ==============================================
survey_invite       service     days, link
survey_reminder     service     until, link
care_greeting       marketing   name, company, festival
care_birthday       marketing   name, company, coupon_name, coupon_code
care_winback        marketing   name, company, coupon_name, coupon_code
care_thanks         service     name, company
loyalty_tier        service     name, tier
coupon_issued       marketing   name, coupon_name, coupon_code, expires
==================  ==========  ==============================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.notify import messages as _messages  # noqa: F401 - registers error texts
from guanxi.notify.models import SmsTemplate
from guanxi.security.models import User
from guanxi.security.service import actor_of

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class TemplateView:
    """One template as the senders and the admin page see it (built-in or saved)."""

    code: str
    name: str
    category: str
    text_zh: str
    text_en: str
    param_order: tuple[str, ...]
    sign: str = ""
    aliyun_template: str | None = None
    tencent_template: str | None = None
    active: bool = True
    builtin: bool = True
    stored: bool = False

    def provider_template(self, provider: str) -> str | None:
        """The template id a gateway sends: the provider's id, or our code locally."""
        if provider == "aliyun":
            return self.aliyun_template
        if provider == "tencent":
            return self.tencent_template
        return self.code

    def render(self, language: str, params: dict[str, str]) -> str:
        """The text in ``language`` with ``{param}`` placeholders filled (missing: empty)."""
        text = self.text_en if language == "en" else self.text_zh
        return _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), "")), text)


def _builtin(code: str, name: str, category: str, zh: str, en: str) -> TemplateView:
    return TemplateView(
        code=code,
        name=name,
        category=category,
        text_zh=zh,
        text_en=en,
        param_order=tuple(dict.fromkeys(_PLACEHOLDER.findall(zh))),
    )


BUILTIN: dict[str, TemplateView] = {
    t.code: t
    for t in (
        _builtin(
            "survey_invite",
            N_("Survey invitation"),
            "service",
            "您好，感谢您选择我们的服务，请花1分钟评价本次服务（{days}天内有效）：{link}",
            "Hello, thank you for choosing us. Please rate our service within {days} days: {link}",
        ),
        _builtin(
            "survey_reminder",
            N_("Survey reminder"),
            "service",
            "您好，您的服务评价还未完成，链接有效至{until}：{link}",
            "Hello, your service rating is still open until {until}: {link}",
        ),
        _builtin(
            "care_greeting",
            N_("Festival greeting"),
            "marketing",
            "{name}您好，{company}祝您{festival}快乐，阖家幸福！",
            "Dear {name}, {company} wishes you a happy {festival}!",
        ),
        _builtin(
            "care_birthday",
            N_("Birthday greeting"),
            "marketing",
            "{name}，{company}祝您生日快乐！送上{coupon_name}，券码{coupon_code}。",
            "Happy birthday, {name}! {company} sends you {coupon_name}, code {coupon_code}.",
        ),
        _builtin(
            "care_winback",
            N_("We miss you"),
            "marketing",
            "{name}您好，好久不见！{company}为您准备了{coupon_name}，券码{coupon_code}，"
            "期待再次为您服务。",
            "Dear {name}, we miss you! {company} has {coupon_name} for you, code {coupon_code}.",
        ),
        _builtin(
            "care_thanks",
            N_("Thanks after a complaint"),
            "service",
            "{name}您好，感谢您的理解与支持，您反映的问题已处理完毕，{company}会持续改进服务。",
            "Dear {name}, thank you for your patience. The issue you raised has been resolved; "
            "{company} keeps improving.",
        ),
        _builtin(
            "loyalty_tier",
            N_("Membership tier changed"),
            "service",
            "{name}您好，您的会员等级已变更为{tier}。",
            "Dear {name}, your membership tier is now {tier}.",
        ),
        _builtin(
            "coupon_issued",
            N_("Coupon issued"),
            "marketing",
            "{name}您好，您获得{coupon_name}，券码{coupon_code}，有效期至{expires}。",
            "Dear {name}, you received {coupon_name}, code {coupon_code}, valid until {expires}.",
        ),
    )
}


def _view(row: SmsTemplate) -> TemplateView:
    return TemplateView(
        code=row.code,
        name=row.name,
        category=row.category,
        text_zh=row.text_zh,
        text_en=row.text_en,
        param_order=tuple(json.loads(row.param_order or "[]")),
        sign=row.sign,
        aliyun_template=row.aliyun_template,
        tencent_template=row.tencent_template,
        active=row.active,
        builtin=row.code in BUILTIN,
        stored=True,
    )


def get_template(session: Session, code: str) -> TemplateView | None:
    """The template of ``code`` (saved, else built in), or None if there is none."""
    row = session.scalar(select(SmsTemplate).where(SmsTemplate.code == code))
    if row is not None:
        return _view(row)
    return BUILTIN.get(code)


def list_templates(session: Session) -> list[TemplateView]:
    """Every template, built-in and saved, by code."""
    views = dict(BUILTIN)
    for row in session.scalars(select(SmsTemplate)):
        views[row.code] = _view(row)
    return [views[code] for code in sorted(views)]


def _check(values: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    zh = set(_PLACEHOLDER.findall(values["text_zh"]))
    en = set(_PLACEHOLDER.findall(values["text_en"]))
    order = list(values["param_order"])
    if en != zh:
        errors.append(
            FieldError(
                ("text_en",),
                "sms_params_differ",
                "The English text must use the same placeholders as the Chinese",
            )
        )
    if order and set(order) != zh:
        errors.append(
            FieldError(
                ("param_order",),
                "sms_param_order",
                "List each placeholder of the text once, in the provider template's order",
            )
        )
    return errors


def save_template(
    session: Session, *, code: str, values: dict[str, Any], actor: User | Actor
) -> TemplateView:
    """Create or change the template of ``code`` (``values``: the fields of
    :class:`TemplateView` an administrator edits); audited with what changed."""
    errors = _check(values)
    if errors:
        raise ValidationFailed(errors)
    order = list(values["param_order"]) or list(
        dict.fromkeys(_PLACEHOLDER.findall(values["text_zh"]))
    )
    who = actor if isinstance(actor, Actor) else actor_of(actor)
    with write_transaction(session):
        row = session.scalar(select(SmsTemplate).where(SmsTemplate.code == code))
        before = _audit_view(_view(row)) if row is not None else None
        if row is None:
            row = SmsTemplate(code=code)
            session.add(row)
        row.name = values["name"]
        row.category = values["category"]
        row.sign = values.get("sign") or ""
        row.aliyun_template = values.get("aliyun_template") or None
        row.tencent_template = values.get("tencent_template") or None
        row.text_zh = values["text_zh"]
        row.text_en = values["text_en"]
        row.param_order = json.dumps(order)
        row.active = bool(values.get("active", True))
        row.updated_at = clock.now()
        session.flush()
        after = _audit_view(_view(row))
        changed = [k for k in after if before is None or before[k] != after[k]]
        record(
            session,
            actor=who,
            action="notify.sms_template_saved",
            target_type="sms_template",
            target_id=code,
            before={k: before[k] for k in changed} if before else None,
            after={k: after[k] for k in changed},
        )
        return _view(row)


def _audit_view(view: TemplateView) -> dict[str, Any]:
    data = {
        "name": view.name,
        "category": view.category,
        "sign": view.sign,
        "aliyun_template": view.aliyun_template,
        "tencent_template": view.tencent_template,
        "text_zh": view.text_zh,
        "text_en": view.text_en,
        "param_order": list(view.param_order),
        "active": view.active,
    }
    return data
