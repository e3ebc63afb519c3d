"""The configurable category tree of tickets (delay, damage, loss, ...).

A ticket names a category by its code; routing rules match a category and everything
under it. Categories are deactivated, never deleted, so old tickets keep their meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import record
from guanxi.core.db import write_transaction
from guanxi.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from guanxi.security.models import User
from guanxi.security.service import actor_of
from guanxi.tickets.models import TicketCategory

CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclass(frozen=True)
class CategoryNode:
    """A category with its depth in the tree (for indented lists and selects)."""

    id: int
    code: str
    parent_id: int | None
    name_zh: str
    name_en: str
    skill: str | None
    active: bool
    depth: int

    def name(self, language: str) -> str:
        """The category's name in the reader's language."""
        return self.name_zh if language.startswith("zh") else self.name_en


def tree(session: Session, *, active_only: bool = False) -> list[CategoryNode]:
    """The whole tree, depth first, siblings by position."""
    rows = list(session.scalars(select(TicketCategory)))
    children: dict[int | None, list[TicketCategory]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    out: list[CategoryNode] = []

    def walk(parent: int | None, depth: int) -> None:
        for row in sorted(children.get(parent, []), key=lambda r: (r.position, r.code)):
            if active_only and not row.active:
                continue
            out.append(
                CategoryNode(
                    row.id,
                    row.code,
                    row.parent_id,
                    row.name_zh,
                    row.name_en,
                    row.skill,
                    row.active,
                    depth,
                )
            )
            walk(row.id, depth + 1)

    walk(None, 0)
    return out


def lineage(session: Session, code: str) -> list[TicketCategory]:
    """The category and its ancestors, nearest first (empty for an unknown code)."""
    by_id = {c.id: c for c in session.scalars(select(TicketCategory))}
    node = next((c for c in by_id.values() if c.code == code), None)
    out = []
    while node is not None:
        out.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    return out


def check_code(session: Session, code: str | None, *, field: str = "category") -> None:
    """Refuse a ticket category that is not an active node of the tree."""
    if code is None:
        return
    found = session.scalar(
        select(TicketCategory.id).where(
            TicketCategory.code == code, TicketCategory.active.is_(True)
        )
    )
    if found is None:
        raise ValidationFailed(
            [FieldError((field,), "category_unknown", "No such category", {"code": code})]
        )


def create_category(
    session: Session,
    *,
    code: str,
    name_zh: str,
    name_en: str,
    actor: User,
    parent_code: str | None = None,
    skill: str | None = None,
    position: int = 0,
) -> TicketCategory:
    """Add a node to the tree; audited."""
    if not CODE.match(code):
        raise ValidationFailed(
            [FieldError(("code",), "category_code", "Use lower-case letters, digits, _ and .")]
        )
    with write_transaction(session):
        if session.scalar(select(TicketCategory.id).where(TicketCategory.code == code)):
            raise Conflict("category_exists", field="code", code=code)
        parent_id = None
        if parent_code:
            parent = session.scalar(
                select(TicketCategory).where(TicketCategory.code == parent_code)
            )
            if parent is None:
                raise ValidationFailed(
                    [
                        FieldError(
                            ("parent_code",),
                            "category_unknown",
                            "No such category",
                            {"code": parent_code},
                        )
                    ]
                )
            parent_id = parent.id
        row = TicketCategory(
            code=code,
            parent_id=parent_id,
            name_zh=name_zh,
            name_en=name_en,
            skill=skill or None,
            position=position,
            active=True,
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=actor_of(actor),
            action="category.created",
            target_type="ticket_category",
            target_id=row.id,
            after={"code": code, "parent": parent_code, "skill": row.skill},
        )
    return row


def update_category(
    session: Session,
    *,
    category_id: int,
    actor: User,
    name_zh: str | None = None,
    name_en: str | None = None,
    skill: str | None = None,
    active: bool | None = None,
    position: int | None = None,
) -> TicketCategory:
    """Rename, re-skill, reorder or (de)activate a node; audited with before and after."""
    with write_transaction(session):
        row = session.get(TicketCategory, category_id)
        if row is None:
            raise NotFound("category not found", category_id=category_id)
        before: dict[str, object] = {
            "name_zh": row.name_zh,
            "name_en": row.name_en,
            "skill": row.skill,
        }
        before |= {"active": row.active, "position": row.position}
        if name_zh is not None:
            row.name_zh = name_zh
        if name_en is not None:
            row.name_en = name_en
        if skill is not None:
            row.skill = skill or None
        if active is not None:
            row.active = active
        if position is not None:
            row.position = position
        after: dict[str, object] = {
            "name_zh": row.name_zh,
            "name_en": row.name_en,
            "skill": row.skill,
        }
        after |= {"active": row.active, "position": row.position}
        record(
            session,
            actor=actor_of(actor),
            action="category.updated",
            target_type="ticket_category",
            target_id=row.id,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return row
