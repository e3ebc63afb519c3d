"""The rules of sales opportunities: who sees and changes which, entering and editing them,
moving them between stages (with history), claiming leads from the pool, assigning and
reopening (managers), and logging contacts against them.

Visibility (enforced in every query here): a salesperson sees their own opportunities and
the unowned ones (the pool of leads, which they may claim); a sales manager also sees those
of the members of the teams they manage; an administrator sees all. Changing follows the
same lines, except that an unowned lead is claimed before a salesperson works it.

A user with a row-level scope (security/scope.py) sees, of those, only the opportunities
of customers in their regions, and the leads without a customer that they own: such a
lead has no region, and a scope lists what is allowed, never what is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

import guanxi.sales.messages  # noqa: F401 - registers the error texts
from guanxi.audit.sealing import seal_about_customer
from guanxi.audit.service import record
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from guanxi.customers.models import Customer
from guanxi.customers.service import in_scope as customer_in_scope
from guanxi.customers.service import region_clause
from guanxi.interactions.models import Interaction
from guanxi.interactions.schemas import InteractionCreate
from guanxi.sales.enums import CLOSED_STAGES, DEFAULT_PROBABILITY, Stage
from guanxi.sales.models import LostReason, Opportunity, SalesTeam, SalesTeamMember, StageChange
from guanxi.sales.schemas import (
    Assign,
    ContactRead,
    OpportunityCreate,
    OpportunityRead,
    OpportunityUpdate,
    Reopen,
    StageMove,
)
from guanxi.security.crypto import cipher
from guanxi.security.masking import mask_email, mask_phone
from guanxi.security.models import User
from guanxi.security.permissions import Permission, Role
from guanxi.security.scope import scope_of
from guanxi.security.service import actor_of, has_permission

# Audited fields of an opportunity.
_FIELDS = (
    "title",
    "customer_id",
    "stage",
    "owner_id",
    "expected_revenue",
    "probability",
    "expected_close",
    "next_step",
    "next_step_due",
    "lost_reason",
)

# --------------------------------------------------------------------------- visibility


def is_admin(user: User) -> bool:
    """Administrators see and change every opportunity."""
    return user.is_active and user.role == Role.admin.value


def is_manager(user: User) -> bool:
    """Sales managers see their teams' opportunities, assign and reopen."""
    return has_permission(user, Permission.sales_manage)


def team_member_ids(session: Session, manager_id: int) -> set[int]:
    """The members of the teams ``manager_id`` manages."""
    return set(
        session.scalars(
            select(SalesTeamMember.user_id)
            .join(SalesTeam, SalesTeam.id == SalesTeamMember.team_id)
            .where(SalesTeam.manager_id == manager_id)
        )
    )


def owners_in_reach(session: Session, viewer: User) -> set[int] | None:
    """The owners whose opportunities ``viewer`` sees and changes (None: everyone's)."""
    if is_admin(viewer):
        return None
    owners = {viewer.id}
    if is_manager(viewer):
        owners |= team_member_ids(session, viewer.id)
    return owners


def visible_clause(owners: set[int] | None) -> ColumnElement[bool] | None:
    """The filter of the opportunities visible with ``owners`` in reach (unowned ones are
    everybody's to see)."""
    if owners is None:
        return None
    return or_(Opportunity.owner_id.is_(None), Opportunity.owner_id.in_(sorted(owners)))


def scope_clause(viewer: User) -> ColumnElement[bool] | None:
    """The opportunities inside ``viewer``'s row-level scope, as a condition on
    ``Opportunity`` (None: unscoped): those of customers in the scope's regions, and the
    leads without a customer that the viewer owns."""
    scope = scope_of(viewer)
    if scope is None:
        return None
    parts: list[ColumnElement[bool]] = [
        and_(Opportunity.customer_id.is_(None), Opportunity.owner_id == viewer.id)
    ]
    if scope.regions:
        parts.append(Opportunity.customer_id.in_(select(Customer.id).where(region_clause(scope))))
    return or_(*parts)


def in_scope(session: Session, viewer: User, opportunity: Opportunity) -> bool:
    """The rule of :func:`scope_clause` for one loaded opportunity."""
    if scope_of(viewer) is None:
        return True
    if opportunity.customer_id is None:
        return opportunity.owner_id == viewer.id
    return customer_in_reach(session, opportunity.customer_id, viewer)


def viewer_clause(session: Session, viewer: User) -> ColumnElement[bool] | None:
    """Everything ``viewer`` may see, as one condition (None: every opportunity): the
    owners in reach (:func:`visible_clause`) and the row-level scope (:func:`scope_clause`).
    Lists, the board, the forecast and the stage figures all read through it."""
    parts = [
        c
        for c in (visible_clause(owners_in_reach(session, viewer)), scope_clause(viewer))
        if c is not None
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else and_(*parts)


def _visible(stmt: Select[Any], session: Session, viewer: User) -> Select[Any]:
    clause = viewer_clause(session, viewer)
    return stmt if clause is None else stmt.where(clause)


def customer_in_reach(session: Session, customer_id: int, actor: User) -> bool:
    """Whether an opportunity may be for this customer: it exists and is inside
    ``actor``'s row-level scope (one outside it is refused as if missing)."""
    customer = session.get(Customer, customer_id)
    return customer is not None and customer_in_scope(actor, customer)


def can_change(session: Session, viewer: User, opportunity: Opportunity) -> bool:
    """Whether ``viewer`` may edit or move ``opportunity``: their own or (managers) their
    team's or an unowned one; administrators any."""
    owners = owners_in_reach(session, viewer)
    if owners is None:
        return True
    if opportunity.owner_id is None:
        return is_manager(viewer)
    return opportunity.owner_id in owners


def changeable_ids(
    session: Session, viewer: User, opportunities: Iterable[Opportunity]
) -> set[int]:
    """Which of ``opportunities`` ``viewer`` may move or edit (one lookup of the team, not
    one per card)."""
    owners = owners_in_reach(session, viewer)
    manager = is_manager(viewer)
    return {
        o.id
        for o in opportunities
        if owners is None or (o.owner_id in owners if o.owner_id is not None else manager)
    }


def get_opportunity(session: Session, *, opportunity_id: int, viewer: User) -> Opportunity:
    """One opportunity; 404 when missing or not visible to ``viewer``."""
    found: Opportunity | None = session.scalar(
        _visible(select(Opportunity).where(Opportunity.id == opportunity_id), session, viewer)
    )
    if found is None:
        raise NotFound("opportunity_unknown", opportunity_id=opportunity_id)
    return found


def _changeable(session: Session, opportunity_id: int, actor: User) -> Opportunity:
    opportunity = get_opportunity(session, opportunity_id=opportunity_id, viewer=actor)
    if not can_change(session, actor, opportunity):
        raise PermissionDenied("opportunity_not_yours", field="owner_id")
    return opportunity


def list_opportunities(
    session: Session,
    *,
    viewer: User,
    stages: Sequence[Stage] = (),
    owner_id: int | None = None,
    unowned: bool = False,
    customer_id: int | None = None,
    limit: int = 500,
) -> list[Opportunity]:
    """The opportunities ``viewer`` may see, newest first, filtered."""
    stmt = _visible(select(Opportunity), session, viewer)
    if stages:
        stmt = stmt.where(Opportunity.stage.in_([s.value for s in stages]))
    if unowned:
        stmt = stmt.where(Opportunity.owner_id.is_(None))
    elif owner_id is not None:
        stmt = stmt.where(Opportunity.owner_id == owner_id)
    if customer_id is not None:
        stmt = stmt.where(Opportunity.customer_id == customer_id)
    stmt = stmt.order_by(Opportunity.updated_at.desc(), Opportunity.id.desc()).limit(limit)
    return list(session.scalars(stmt))


# --------------------------------------------------------------------------- reading


def probability_of(opportunity: Opportunity) -> int:
    """The chance of winning in percent: certain when closed, else the owner's figure or
    the stage's default."""
    stage = Stage(opportunity.stage)
    if stage in CLOSED_STAGES or opportunity.probability is None:
        return DEFAULT_PROBABILITY[stage]
    return opportunity.probability


def weighted(opportunity: Opportunity) -> int:
    """Expected revenue times the chance of winning, in fen (rounded half up)."""
    return (opportunity.expected_revenue * probability_of(opportunity) + 50) // 100


def _decrypt(field: str, stored: str | None) -> str | None:
    return cipher().decrypt(field, stored) if stored else None


def contact_of(opportunity: Opportunity) -> ContactRead | None:
    """A web lead's contact, phone and e-mail masked (None when there is none)."""
    if opportunity.contact_name_enc is None and opportunity.contact_phone_enc is None:
        return None
    phone = _decrypt("lead_phone", opportunity.contact_phone_enc)
    email = _decrypt("lead_email", opportunity.contact_email_enc)
    return ContactRead(
        name=_decrypt("lead_name", opportunity.contact_name_enc),
        company=_decrypt("lead_company", opportunity.contact_company_enc),
        phone=mask_phone(phone) if phone else None,
        email=mask_email(email) if email else None,
    )


def names_of(
    session: Session, opportunities: Iterable[Opportunity]
) -> tuple[dict[int, str], dict[int, str]]:
    """(customer names, owner names) of many opportunities, in two queries."""
    opps = list(opportunities)
    customer_ids = sorted({o.customer_id for o in opps if o.customer_id is not None})
    owner_ids = sorted({o.owner_id for o in opps if o.owner_id is not None})
    customers: dict[int, str] = {}
    owners: dict[int, str] = {}
    if customer_ids:
        customers = {
            cid: name
            for cid, name in session.execute(
                select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids))
            )
        }
    if owner_ids:
        owners = {
            uid: name
            for uid, name in session.execute(
                select(User.id, User.display_name).where(User.id.in_(owner_ids))
            )
        }
    return customers, owners


def to_read(
    opportunity: Opportunity,
    customers: dict[int, str] | None = None,
    owners: dict[int, str] | None = None,
) -> OpportunityRead:
    """The API shape of an opportunity (contact masked)."""
    o = opportunity
    return OpportunityRead(
        id=o.id,
        customer_id=o.customer_id,
        customer_name=(customers or {}).get(o.customer_id) if o.customer_id else None,
        title=o.title,
        stage=o.stage,
        owner_id=o.owner_id,
        owner_name=(owners or {}).get(o.owner_id) if o.owner_id else None,
        expected_revenue=o.expected_revenue,
        probability=probability_of(o),
        probability_set=o.probability is not None,
        weighted_revenue=weighted(o),
        expected_close=o.expected_close,
        next_step=o.next_step,
        next_step_due=o.next_step_due,
        source=o.source,
        campaign_id=o.campaign_id,
        lost_reason=o.lost_reason,
        notes=o.notes,
        contact=contact_of(o),
        created_at=o.created_at,
        updated_at=o.updated_at,
        closed_at=o.closed_at,
        version=o.version,
    )


def reads(session: Session, opportunities: Sequence[Opportunity]) -> list[OpportunityRead]:
    """Many opportunities in the API shape, names looked up once."""
    customers, owners = names_of(session, opportunities)
    return [to_read(o, customers, owners) for o in opportunities]


def history(session: Session, *, opportunity_id: int, viewer: User) -> list[StageChange]:
    """The stage moves of an opportunity, oldest first."""
    get_opportunity(session, opportunity_id=opportunity_id, viewer=viewer)
    return list(
        session.scalars(
            select(StageChange)
            .where(StageChange.opportunity_id == opportunity_id)
            .order_by(StageChange.changed_at, StageChange.id)
        )
    )


def _audited(opportunity: Opportunity) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(opportunity, name)
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


# Free texts of an opportunity that can speak about the customer: sealed in the audit log
# under the customer's key (crypto-shredded on anonymisation, audit/sealing.py).
_TEXTS = ("title", "next_step")


def _sealed(session: Session, opportunity: Opportunity, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (from :func:`_audited`) as the audit entry keeps them."""
    return {
        k: seal_about_customer(session, opportunity.customer_id, v) if k in _TEXTS else v
        for k, v in values.items()
    }


# --------------------------------------------------------------------------- writing


def sales_managers(session: Session) -> list[int]:
    """Who hears of new leads: the managers of the sales teams; without teams, the active
    users of the manager role."""
    managers = sorted(
        {
            uid
            for uid in session.scalars(
                select(SalesTeam.manager_id)
                .join(User, User.id == SalesTeam.manager_id)
                .where(User.is_active.is_(True))
            )
            if uid is not None
        }
    )
    if managers:
        return managers
    return list(
        session.scalars(
            select(User.id)
            .where(User.is_active.is_(True), User.role == Role.manager.value)
            .order_by(User.id)
        )
    )


def check_assignee(session: Session, owner_id: int, actor: User, loc: str = "owner_id") -> None:
    """An owner must be an active user of the pipeline: the actor themself, a member of a
    team they manage, or (administrators) anyone."""
    user = session.get(User, owner_id)
    ok = user is not None and has_permission(user, Permission.sales_pipeline)
    if ok and not is_admin(actor) and owner_id != actor.id:
        ok = is_manager(actor) and owner_id in team_member_ids(session, actor.id)
    if not ok:
        raise ValidationFailed(
            [FieldError((loc,), "sales_owner_unknown", "Choose a salesperson of your team")]
        )


def _check_fields(
    session: Session, fields: OpportunityCreate | OpportunityUpdate, errors: list[FieldError]
) -> None:
    if fields.next_step_due is not None and not fields.next_step:
        errors.append(
            FieldError(
                ("next_step",), "next_step_due_without_step", "Write the next step for its due date"
            )
        )


def add_stage_change(
    session: Session,
    opportunity: Opportunity,
    from_stage: str | None,
    user_id: int | None,
    reason: str | None = None,
) -> None:
    """Write the history row of a move (or of the opportunity's first stage)."""
    session.add(
        StageChange(
            opportunity_id=opportunity.id,
            from_stage=from_stage,
            to_stage=opportunity.stage,
            user_id=user_id,
            changed_at=clock.now(),
            reason=reason,
        )
    )


def create_opportunity(
    session: Session, *, opportunity_in: OpportunityCreate, actor: User
) -> Opportunity:
    """Enter an opportunity by hand; owned by the person entering it unless a manager gives
    it to a member or leaves it unowned (in the pool)."""
    with write_transaction(session):
        errors: list[FieldError] = []
        stage = opportunity_in.stage
        if stage in CLOSED_STAGES:
            errors.append(
                FieldError(("stage",), "opportunity_closed_stage", "A new opportunity starts open")
            )
        if opportunity_in.customer_id is not None and not customer_in_reach(
            session, opportunity_in.customer_id, actor
        ):
            errors.append(
                FieldError(("customer_id",), "sales_customer_unknown", "No such customer")
            )
        _check_fields(session, opportunity_in, errors)
        if errors:
            raise ValidationFailed(errors)
        owner_id: int | None = actor.id
        if opportunity_in.unowned:
            if not is_manager(actor):
                raise ValidationFailed(
                    [FieldError(("owner_id",), "sales_owner_unknown", "Choose a salesperson")]
                )
            owner_id = None
        elif opportunity_in.owner_id is not None:
            check_assignee(session, opportunity_in.owner_id, actor)
            owner_id = opportunity_in.owner_id
        now = clock.now()
        opportunity = Opportunity(
            customer_id=opportunity_in.customer_id,
            title=opportunity_in.title,
            stage=stage.value,
            owner_id=owner_id,
            expected_revenue=opportunity_in.expected_revenue,
            probability=opportunity_in.probability,
            expected_close=opportunity_in.expected_close,
            next_step=opportunity_in.next_step or None,
            next_step_due=opportunity_in.next_step_due,
            notes=opportunity_in.notes or None,
            source=opportunity_in.source.value,
            campaign_id=opportunity_in.campaign_id,
            created_by=actor.id,
            created_at=now,
            updated_at=now,
            version=1,
        )
        session.add(opportunity)
        session.flush()
        add_stage_change(session, opportunity, None, actor.id)
        record(
            session,
            actor=actor_of(actor),
            action="sales.opportunity_created",
            target_type="opportunity",
            target_id=opportunity.id,
            after=_sealed(session, opportunity, _audited(opportunity)),
        )
    return opportunity


def _bump(session: Session, opportunity: Opportunity, actor: User | None) -> None:
    """Stamp a change and flush it; a concurrent writer's change wins the race and this
    one is refused (the version column guards every UPDATE)."""
    opportunity.updated_at = clock.now()
    opportunity.version = opportunity.version + 1
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("opportunity_version_conflict", field="version") from exc


def _check_version(opportunity: Opportunity, version: int) -> None:
    if opportunity.version != version:
        raise Conflict("opportunity_version_conflict", field="version")


def _record_change(
    session: Session, actor: User, action: str, opportunity: Opportunity, before: dict[str, Any]
) -> None:
    after = _audited(opportunity)
    changed = [k for k in _FIELDS if before[k] != after[k]]
    record(
        session,
        actor=actor_of(actor),
        action=action,
        target_type="opportunity",
        target_id=opportunity.id,
        before=_sealed(session, opportunity, {k: before[k] for k in changed}),
        after=_sealed(session, opportunity, {k: after[k] for k in changed}),
    )


def update_opportunity(
    session: Session, *, opportunity_id: int, opportunity_in: OpportunityUpdate, actor: User
) -> Opportunity:
    """Change the editable fields (title, amounts, dates, next step); refused when closed
    or when someone changed it since ``opportunity_in.version`` was read."""
    with write_transaction(session):
        opportunity = _changeable(session, opportunity_id, actor)
        _check_version(opportunity, opportunity_in.version)
        if Stage(opportunity.stage) in CLOSED_STAGES:
            raise Conflict("opportunity_closed", field="stage")
        errors: list[FieldError] = []
        _check_fields(session, opportunity_in, errors)
        if errors:
            raise ValidationFailed(errors)
        before = _audited(opportunity)
        opportunity.title = opportunity_in.title
        opportunity.expected_revenue = opportunity_in.expected_revenue
        opportunity.probability = opportunity_in.probability
        opportunity.expected_close = opportunity_in.expected_close
        opportunity.next_step = opportunity_in.next_step or None
        opportunity.next_step_due = opportunity_in.next_step_due
        opportunity.notes = opportunity_in.notes or None
        _bump(session, opportunity, actor)
        _record_change(session, actor, "sales.opportunity_changed", opportunity, before)
    return opportunity


def active_lost_reasons(session: Session) -> list[LostReason]:
    """The reasons a salesperson may choose from, in the list's order."""
    return list(
        session.scalars(
            select(LostReason)
            .where(LostReason.active.is_(True))
            .order_by(LostReason.position, LostReason.code)
        )
    )


def move_stage(
    session: Session, *, opportunity_id: int, move: StageMove, actor: User
) -> Opportunity:
    """Move an open opportunity to another stage (closing it as won, or as lost with a
    reason from the list); refused when someone changed it since ``move.version``."""
    with write_transaction(session):
        opportunity = _changeable(session, opportunity_id, actor)
        _check_version(opportunity, move.version)
        current = Stage(opportunity.stage)
        if current in CLOSED_STAGES:
            raise Conflict("opportunity_closed", field="stage")
        if move.stage is not Stage.lost and move.lost_reason:
            raise ValidationFailed(
                [
                    FieldError(
                        ("lost_reason",), "lost_reason_only_lost", "Only a lost one has a reason"
                    )
                ]
            )
        if move.stage is Stage.lost:
            if not move.lost_reason:
                raise ValidationFailed(
                    [FieldError(("lost_reason",), "lost_reason_required", "Choose a reason")]
                )
            codes = {r.code for r in active_lost_reasons(session)}
            if move.lost_reason not in codes:
                raise ValidationFailed(
                    [
                        FieldError(
                            ("lost_reason",),
                            "lost_reason_unknown",
                            "Not a reason in the list",
                            {"value": move.lost_reason},
                        )
                    ]
                )
        if move.stage is current:
            return opportunity
        before = _audited(opportunity)
        opportunity.stage = move.stage.value
        if move.stage in CLOSED_STAGES:
            opportunity.closed_at = clock.now()
            opportunity.lost_reason = move.lost_reason if move.stage is Stage.lost else None
        _bump(session, opportunity, actor)
        reason = move.lost_reason if move.stage is Stage.lost else None
        if move.note:
            reason = f"{reason}: {move.note}" if reason else move.note
        add_stage_change(session, opportunity, current.value, actor.id, reason)
        _record_change(session, actor, "sales.stage_changed", opportunity, before)
    return opportunity


def claim(session: Session, *, opportunity_id: int, actor: User) -> Opportunity:
    """Take an unowned open opportunity from the pool of leads; the first claim wins."""
    with write_transaction(session):
        opportunity = get_opportunity(session, opportunity_id=opportunity_id, viewer=actor)
        if opportunity.owner_id is not None:
            raise Conflict("opportunity_owned", field="owner_id")
        if Stage(opportunity.stage) in CLOSED_STAGES:
            raise Conflict("opportunity_closed", field="stage")
        before = _audited(opportunity)
        opportunity.owner_id = actor.id
        _bump(session, opportunity, actor)
        _record_change(session, actor, "sales.lead_claimed", opportunity, before)
    return opportunity


def assign(session: Session, *, opportunity_id: int, assign_in: Assign, actor: User) -> Opportunity:
    """A manager gives an opportunity of their reach to a member (or back to the pool)."""
    with write_transaction(session):
        opportunity = _changeable(session, opportunity_id, actor)
        if not is_manager(actor):
            raise PermissionDenied("opportunity_not_yours", field="owner_id")
        _check_version(opportunity, assign_in.version)
        if assign_in.owner_id is not None:
            check_assignee(session, assign_in.owner_id, actor)
        before = _audited(opportunity)
        opportunity.owner_id = assign_in.owner_id
        _bump(session, opportunity, actor)
        _record_change(session, actor, "sales.opportunity_assigned", opportunity, before)
    return opportunity


def reopen(session: Session, *, opportunity_id: int, reopen_in: Reopen, actor: User) -> Opportunity:
    """A manager reopens a won or lost opportunity, back to the stage it was closed from
    (audited with the manager's reason)."""
    with write_transaction(session):
        opportunity = _changeable(session, opportunity_id, actor)
        if not is_manager(actor):
            raise PermissionDenied("opportunity_not_yours", field="stage")
        _check_version(opportunity, reopen_in.version)
        current = Stage(opportunity.stage)
        if current not in CLOSED_STAGES:
            raise Conflict("opportunity_open", field="stage")
        closed_from = session.scalar(
            select(StageChange.from_stage)
            .where(
                StageChange.opportunity_id == opportunity.id,
                StageChange.to_stage == current.value,
            )
            .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
            .limit(1)
        )
        before = _audited(opportunity)
        opportunity.stage = closed_from or Stage.negotiation.value
        opportunity.closed_at = None
        opportunity.lost_reason = None
        _bump(session, opportunity, actor)
        add_stage_change(session, opportunity, current.value, actor.id, reopen_in.reason)
        before["reason"] = None
        _record_change(session, actor, "sales.opportunity_reopened", opportunity, before)
    return opportunity


# --------------------------------------------------------------------------- activities


def interactions_of(
    session: Session, *, opportunity_id: int, viewer: User, limit: int = 50
) -> list[Interaction]:
    """The contact log of the opportunity's customer, newest first (empty for a lead
    without a customer)."""
    from guanxi.interactions.service import of_customer_for_sales

    opportunity = get_opportunity(session, opportunity_id=opportunity_id, viewer=viewer)
    if opportunity.customer_id is None:
        return []
    return of_customer_for_sales(session, customer_id=opportunity.customer_id, limit=limit)


def log_contact(
    session: Session, *, opportunity_id: int, interaction_in: InteractionCreate, actor: User
) -> Interaction:
    """Log a contact against the opportunity in the customer's contact log (the owner or
    their manager; the customer must be the opportunity's)."""
    from guanxi.interactions.service import log_interaction

    opportunity = get_opportunity(session, opportunity_id=opportunity_id, viewer=actor)
    if not can_change(session, actor, opportunity):
        raise PermissionDenied("opportunity_not_yours", field="owner_id")
    if opportunity.customer_id is None:
        raise ValidationFailed(
            [FieldError(("customer_id",), "sales_customer_unknown", "Convert the lead first")]
        )
    data = interaction_in.model_copy(
        update={"customer_id": opportunity.customer_id, "opportunity_id": opportunity.id}
    )
    return log_interaction(session, interaction_in=data, actor=actor)


def assignable_users(session: Session, viewer: User) -> list[User]:
    """Whom ``viewer`` may give an opportunity to: themself and the members of the teams
    they manage; administrators, everyone who works the pipeline."""
    owners = owners_in_reach(session, viewer)
    stmt = select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.id)
    if owners is not None:
        stmt = stmt.where(User.id.in_(sorted(owners)))
    return [u for u in session.scalars(stmt) if has_permission(u, Permission.sales_pipeline)]
