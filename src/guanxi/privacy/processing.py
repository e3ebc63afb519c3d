"""The record of processing activities (个人信息处理活动记录; PIPL art. 54-56 style), built
from what the system itself declares: the purposes per field (:mod:`guanxi.privacy.fields`),
the retention policies (:mod:`guanxi.privacy.retention`), the recipients the configuration
names (the SMS gateway, the SMTP server, the webhook endpoints) and the consent purposes.

Exported as JSON, CSV (one line per field) or shown as the page /privacy/processing; every
export is audited (``privacy.processing_exported``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from guanxi.audit.service import Actor, record
from guanxi.config import Settings
from guanxi.core import clock, i18n
from guanxi.core.db import write_transaction
from guanxi.core.i18n import N_
from guanxi.customers.consent import LABELS as CONSENT_LABELS
from guanxi.customers.consent import OPT_IN
from guanxi.customers.consent import Purpose as ConsentPurpose
from guanxi.privacy.fields import FIELDS, LABELS, LIFETIME_RULES, Purpose
from guanxi.privacy.retention import KEPT, list_policies

FORMATS = ("json", "csv")

# The measures of PIPL art. 51 this system takes, for the record.
MEASURES = [
    N_("Identifiers (phones, e-mail, ID numbers, credit codes) encrypted at rest (AES-GCM)"),
    N_("Masked display on every page and printed waybill unless the role may reveal"),
    N_("Role-based access with least privilege; every reveal and export audited"),
    N_("Append-only, hash-chained audit log"),
    N_("Retention periods per data category enforced by a daily purge"),
]

# Which purposes each kind of recipient serves.
_SMS_PURPOSES = (Purpose.delivery, Purpose.service, Purpose.surveys, Purpose.marketing)
_MAIL_PURPOSES = (Purpose.service, Purpose.surveys, Purpose.marketing, Purpose.staff)


@dataclass(frozen=True)
class Recipient:
    """Someone outside Guanxi who receives personal information."""

    kind: str  # sms, smtp, webhook
    name: str
    purposes: list[str]
    data: str
    # False: inside mainland China; None: depends on where the configured host is.
    cross_border: bool | None


def recipients(session: Session, settings: Settings) -> list[Recipient]:
    """The recipients the configuration names: the SMS gateway (when a provider is
    configured), the SMTP server (when a host is set) and the active webhook endpoints."""
    from guanxi.notify.webhooks import list_endpoints

    found: list[Recipient] = []
    if settings.sms_provider in ("aliyun", "tencent"):
        name = {
            "aliyun": "Alibaba Cloud SMS (阿里云短信)",
            "tencent": "Tencent Cloud SMS (腾讯云短信)",
        }
        found.append(
            Recipient(
                "sms",
                name[settings.sms_provider],
                [p.value for p in _SMS_PURPOSES],
                "phone number, template parameters",
                False,  # mainland endpoints of both providers
            )
        )
    if settings.smtp_host:
        found.append(
            Recipient(
                "smtp",
                settings.smtp_host,
                [p.value for p in _MAIL_PURPOSES],
                "e-mail address, message",
                None,
            )
        )
    for endpoint in list_endpoints(session):
        if endpoint.active:
            found.append(
                Recipient(
                    "webhook",
                    f"{endpoint.name} ({urlsplit(endpoint.url).hostname or ''})",
                    [Purpose.relationship.value],
                    "events: " + ", ".join(endpoint.events),
                    None,
                )
            )
    return found


def build_record(
    session: Session, *, settings: Settings, lang: str, now: datetime | None = None
) -> dict[str, Any]:
    """The record of processing as plain data, its labels in ``lang``."""

    def t(text: str) -> str:
        return i18n.gettext(lang, text)

    policies = {p.category: p for p in list_policies(session)}

    def retention(rule: str) -> dict[str, Any]:
        if rule in policies:
            p = policies[rule]
            return {
                "rule": rule,
                "label": t(p.label),
                "keep_days": p.keep_days,
                "counts_from": t(p.counts_from),
                "enabled": p.enabled,
            }
        return {"rule": rule, "label": t(LIFETIME_RULES[rule]), "keep_days": None}

    fields = [
        {
            "table": f.table,
            "column": f.column,
            "category": f.category.value,
            "category_label": t(LABELS[f.category.value]),
            "sensitive": f.sensitive,
            "purposes": [p.value for p in f.purposes],
            "basis": f.basis.value,
            "basis_label": t(LABELS[f.basis.value]),
            "retention": retention(f.retention),
        }
        for f in FIELDS
    ]
    found = recipients(session, settings)
    activities = []
    for purpose in Purpose:
        mine = [f for f in FIELDS if purpose in f.purposes]
        if not mine:
            continue
        activities.append(
            {
                "purpose": purpose.value,
                "label": t(LABELS[purpose.value]),
                "bases": sorted({f.basis.value for f in mine}),
                "categories": sorted({f.category.value for f in mine}),
                "sensitive_fields": [f"{f.table}.{f.column}" for f in mine if f.sensitive],
                "fields": [f"{f.table}.{f.column}" for f in mine],
                "retention": sorted({f.retention for f in mine}),
                "recipients": [r.name for r in found if purpose.value in r.purposes],
            }
        )
    cross = [r.cross_border for r in found]
    return {
        "generated_at": (now or clock.now()).isoformat(),
        "system": "Guanxi",
        "responsible_role": t("Privacy officer"),
        "activities": activities,
        "fields": fields,
        "retention": [
            {
                "category": p.category,
                "label": t(p.label),
                "keep_days": p.keep_days,
                "counts_from": t(p.counts_from),
                "legal": t(p.legal),
                "enabled": p.enabled,
            }
            for p in policies.values()
        ]
        + [
            {"category": key, "label": t(label), "keep_days": None, "legal": t(why)}
            for key, (label, why) in KEPT.items()
        ],
        "recipients": [asdict(r) for r in found],
        # "no" only when every recipient is known to be inside mainland China.
        "cross_border": "no" if all(c is False for c in cross) else "to_confirm",
        "consent_purposes": [
            {
                "purpose": p.value,
                "label": t(CONSENT_LABELS[p.value]),
                "opt_in": p in OPT_IN,
            }
            for p in ConsentPurpose
        ],
        "measures": [t(m) for m in MEASURES],
    }


CSV_HEADER = [
    "table",
    "column",
    "category",
    "sensitive",
    "purposes",
    "legal_basis",
    "retention_rule",
    "keep_days",
    "recipients",
]


def record_csv(data: dict[str, Any]) -> str:
    """The record as CSV: one line per declared field."""
    by_purpose = {a["purpose"]: a["recipients"] for a in data["activities"]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for f in data["fields"]:
        names = sorted({n for p in f["purposes"] for n in by_purpose.get(p, [])})
        writer.writerow(
            [
                f["table"],
                f["column"],
                f["category"],
                "yes" if f["sensitive"] else "no",
                " ".join(f["purposes"]),
                f["basis"],
                f["retention"]["rule"],
                "" if f["retention"]["keep_days"] is None else f["retention"]["keep_days"],
                "; ".join(names),
            ]
        )
    return out.getvalue()


_RENDER: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "json": (lambda data: json.dumps(data, ensure_ascii=False, indent=2), "application/json"),
    "csv": (record_csv, "text/csv; charset=utf-8"),
}


def export_record(
    session: Session, *, fmt: str, settings: Settings, lang: str, actor: Actor
) -> tuple[str, str, str]:
    """The record of processing in ``fmt`` (json or csv): (content, media type, file
    name). Audited as ``privacy.processing_exported``."""
    now = clock.now()
    data = build_record(session, settings=settings, lang=lang, now=now)
    render, media_type = _RENDER[fmt]
    content = render(data)
    with write_transaction(session):
        record(
            session,
            actor=actor,
            action="privacy.processing_exported",
            target_type="processing_record",
            target_id=fmt,
            after={"format": fmt, "fields": len(data["fields"])},
        )
    return content, media_type, f"record-of-processing-{now:%Y%m%d}.{fmt}"
