"""Service-desk policy an administrator configures: the priority matrix, SLA policies per
type x priority, the reopen and repeat windows, and what makes a complaint major.

Kept as one validated JSON document (``desk_setting`` key ``policy``); the defaults are the
operating manuals' (REQUIREMENTS.md §4). Reads parse the stored text once per version, so a
queue page or a sweep pays one primary-key lookup.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from guanxi.audit.service import save_setting
from guanxi.core.db import write_transaction
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.tickets.enums import Priority, Severity, TicketChannel, TicketType
from guanxi.tickets.models import DeskSetting

POLICY_KEY = "policy"

Hours = Annotated[float, Field(gt=0, le=24 * 366)]


class SlaPolicy(BaseModel):
    """Targets for tickets of one type and priority: first response and resolution, in
    business hours (the team's working calendar) or around the clock."""

    model_config = ConfigDict(extra="forbid")

    type: TicketType
    priority: Priority
    first_response_hours: Hours
    resolution_hours: Hours
    business_hours: bool = True


class RegulatorPolicy(BaseModel):
    """Referrals by the postal bureau / 12305: legal deadlines in calendar hours."""

    model_config = ConfigDict(extra="forbid")

    first_response_hours: Hours = 24.0
    resolution_hours: Hours = 7 * 24.0


def _default_matrix() -> dict[TicketType, dict[Severity, Priority]]:
    """Complaints and claims rank above inquiries; severity lifts every type."""
    u, h, n, lo = Priority.urgent, Priority.high, Priority.normal, Priority.low
    c, ma, mi = Severity.critical, Severity.major, Severity.minor
    return {
        TicketType.complaint: {c: u, ma: h, mi: n},
        TicketType.claim: {c: u, ma: h, mi: n},
        TicketType.service_request: {c: u, ma: h, mi: n},
        TicketType.inquiry: {c: u, ma: h, mi: lo},
    }


# First response within 2 hours for complaints and claims, 4 for the rest; complex cases
# resolved within 24 hours, service issues within 72 (REQUIREMENTS.md §4).
_RESOLUTION = {Priority.urgent: 8.0, Priority.high: 24.0, Priority.normal: 48.0, Priority.low: 72.0}


def _default_policies() -> list[SlaPolicy]:
    out = []
    for type_ in TicketType:
        first = 2.0 if type_ in (TicketType.complaint, TicketType.claim) else 4.0
        for priority in Priority:
            out.append(
                SlaPolicy(
                    type=type_,
                    priority=priority,
                    first_response_hours=min(first, 1.0) if priority is Priority.urgent else first,
                    resolution_hours=_RESOLUTION[priority],
                )
            )
    return out


class DeskPolicy(BaseModel):
    """The whole configurable policy of the service desk."""

    model_config = ConfigDict(extra="forbid")

    # A closed ticket may be reopened ("not satisfied") this many days after closing.
    reopen_days: Annotated[int, Field(ge=0, le=365)] = 7
    # A complaint about the same customer or waybill within this many days is a repeat.
    repeat_days: Annotated[int, Field(ge=0, le=365)] = 30
    # A complaint with at least this much money at stake (fen) is major.
    major_amount_fen: Annotated[int, Field(ge=0)] = 100_000
    # Priority by type and severity; regulator referrals are always urgent.
    priority_matrix: dict[TicketType, dict[Severity, Priority]] = Field(
        default_factory=_default_matrix
    )
    sla: list[SlaPolicy] = Field(default_factory=_default_policies)
    regulator: RegulatorPolicy = Field(default_factory=RegulatorPolicy)
    # Lookup of ``sla`` by (type, priority), built on first use (the sweep asks per ticket).
    _by_key: dict[tuple[str, str], SlaPolicy] = PrivateAttr(default_factory=dict)
    _by_key_of: object = PrivateAttr(default=None)

    @field_validator("priority_matrix")
    @classmethod
    def _matrix_complete(
        cls, value: dict[TicketType, dict[Severity, Priority]]
    ) -> dict[TicketType, dict[Severity, Priority]]:
        """Every type x severity has a priority."""
        missing = [
            f"{t.value}/{s.value}"
            for t in TicketType
            for s in Severity
            if s not in value.get(t, {})
        ]
        if missing:
            raise PydanticCustomError(
                "desk_matrix_incomplete",
                "Every type and severity needs a priority; missing: {missing}",
                {"missing": ", ".join(missing)},
            )
        return value

    @field_validator("sla")
    @classmethod
    def _sla_complete(cls, value: list[SlaPolicy]) -> list[SlaPolicy]:
        """Every type x priority has exactly one policy."""
        keys = [(p.type, p.priority) for p in value]
        twice = sorted({f"{t.value}/{p.value}" for t, p in keys if keys.count((t, p)) > 1})
        missing = [
            f"{t.value}/{p.value}" for t in TicketType for p in Priority if (t, p) not in keys
        ]
        if twice or missing:
            raise PydanticCustomError(
                "desk_sla_incomplete",
                "Every type and priority needs one target; missing: {missing}; twice: {twice}",
                {"missing": ", ".join(missing) or "-", "twice": ", ".join(twice) or "-"},
            )
        return value

    def priority(self, type_: TicketType, severity: Severity, channel: TicketChannel) -> Priority:
        """The priority a new ticket gets."""
        if channel is TicketChannel.regulator:
            return Priority.urgent
        return self.priority_matrix[type_][severity]

    def policy_for(self, type_: str, priority: str) -> SlaPolicy:
        """The SLA policy of one type and priority."""
        # Rebuilt when ``sla`` is another list (model_copy(update=...) keeps private state).
        if self._by_key_of is not self.sla:
            self._by_key = {(p.type.value, p.priority.value): p for p in self.sla}
            self._by_key_of = self.sla
        return self._by_key[(type_, priority)]


@lru_cache(maxsize=8)
def _parse(text: str) -> DeskPolicy:
    return DeskPolicy.model_validate_json(text)


DEFAULT_POLICY = DeskPolicy()


def load_policy(session: Session) -> DeskPolicy:
    """The policy in force (the defaults until an administrator saves one)."""
    row = session.get(DeskSetting, POLICY_KEY)
    return DEFAULT_POLICY if row is None else _parse(row.value)


def save_policy(session: Session, *, policy: DeskPolicy, actor: User) -> DeskPolicy:
    """Replace the policy; audited with what changed. New values apply to tickets from their
    next change (and to the sweep's next look at them)."""
    text = policy.model_dump_json()
    with write_transaction(session):
        save_setting(
            session,
            model=DeskSetting,
            key=POLICY_KEY,
            text=text,
            actor=actor_of(actor),
            user_id=actor.id,
            action="desk.policy_saved",
        )
    return _parse(text)
