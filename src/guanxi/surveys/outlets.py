"""Outlets (营业网点) and their QR codes.

An outlet's printed QR code holds a reusable link ``/q/o/<code>`` whose code is signed with
the secret key (itsdangerous) and names the template and the outlet: a code cannot be
made up or pointed at another survey, and switching the outlet off voids its printed
codes. Anyone who scans it answers once per submission, anonymously or leaving a phone
number (rate-limited per client address, public.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import segno
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, NotFound
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.surveys.models import SurveyOutlet, SurveyTemplate
from guanxi.surveys.schemas import OutletCreate, OutletRead
from guanxi.surveys.service import live_version_id, template_by_code

_SALT = "guanxi.survey.outlet"


def _links() -> Any:
    from guanxi.selfservice.service import links

    return links()


def outlet_code(outlet: SurveyOutlet, template_code: str, secret_key: str | None = None) -> str:
    """The signed code of an outlet's QR link (names the template and the outlet)."""
    key = secret_key or _links().secret_key
    return str(URLSafeSerializer(key, salt=_SALT).dumps({"t": template_code, "o": outlet.code}))


def outlet_url(outlet: SurveyOutlet, template_code: str) -> str:
    """The absolute QR link of an outlet."""
    base = _links().base_url.rstrip("/")
    return f"{base}/q/o/{outlet_code(outlet, template_code)}"


@dataclass(frozen=True)
class OutletView:
    """What the outlet's answer page needs."""

    id: int
    code: str
    name: str
    region: str | None
    template_id: int
    version_id: int


def open_outlet(session: Session, code: str, secret_key: str | None = None) -> OutletView | None:
    """The outlet a signed code names, if the signature holds and the outlet is active and
    its survey published; None otherwise (tampered, switched off, unknown)."""
    if not code or len(code) > 300:
        return None
    key = secret_key or _links().secret_key
    try:
        payload: Any = URLSafeSerializer(key, salt=_SALT).loads(code)
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    outlet = session.scalar(select(SurveyOutlet).where(SurveyOutlet.code == payload.get("o")))
    if outlet is None or not outlet.active:
        return None
    template = session.get(SurveyTemplate, outlet.template_id)
    if template is None or template.code != payload.get("t") or not template.active:
        return None
    try:
        version_id = live_version_id(session, template)
    except Exception:
        return None
    return OutletView(
        outlet.id, outlet.code, outlet.name, outlet.region, outlet.template_id, version_id
    )


def outlet_read(session: Session, outlet: SurveyOutlet) -> OutletRead:
    """An outlet with its QR link."""
    template = session.get(SurveyTemplate, outlet.template_id)
    code = template.code if template else ""
    return OutletRead(
        id=outlet.id,
        code=outlet.code,
        name=outlet.name,
        region=outlet.region,
        template=code,
        active=outlet.active,
        url=outlet_url(outlet, code),
    )


def list_outlets(session: Session) -> list[SurveyOutlet]:
    """Every outlet by code."""
    return list(session.scalars(select(SurveyOutlet).order_by(SurveyOutlet.code)))


def get_outlet(session: Session, outlet_id: int) -> SurveyOutlet:
    """One outlet, or NotFound."""
    outlet = session.get(SurveyOutlet, outlet_id)
    if outlet is None:
        raise NotFound("outlet not found", outlet_id=outlet_id)
    return outlet


def create_outlet(session: Session, *, outlet_in: OutletCreate, actor: User) -> SurveyOutlet:
    """A new outlet for a published template; audited."""
    with write_transaction(session):
        template = template_by_code(session, outlet_in.template)
        live_version_id(session, template)
        if session.scalar(select(SurveyOutlet.id).where(SurveyOutlet.code == outlet_in.code)):
            raise Conflict("outlet_exists", field="code", code=outlet_in.code)
        outlet = SurveyOutlet(
            code=outlet_in.code,
            name=outlet_in.name,
            region=outlet_in.region or None,
            template_id=template.id,
            active=True,
            created_at=clock.now(),
            created_by=actor.id,
        )
        session.add(outlet)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="survey.outlet_created",
            target_type="survey_outlet",
            target_id=outlet.id,
            after={"code": outlet.code, "template": template.code, "region": outlet.region},
        )
    return outlet


def set_outlet_active(
    session: Session, *, outlet_id: int, active: bool, actor: User
) -> SurveyOutlet:
    """Switch an outlet's QR code on or off (off: its printed codes stop working)."""
    with write_transaction(session):
        outlet = get_outlet(session, outlet_id)
        before = outlet.active
        outlet.active = active
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="survey.outlet_active",
            target_type="survey_outlet",
            target_id=outlet.id,
            before={"active": before},
            after={"active": active},
        )
    return outlet


def qr_svg(url: str, *, scale: int = 6, title: str = "") -> str:
    """The QR code of ``url`` as an SVG document (error correction M: survives a smudge)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(
        buf, kind="svg", scale=scale, border=2, xmldecl=False, title=title or None
    )
    return buf.getvalue().decode()
