"""account security (lockout, second factor, sessions, token scopes)

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-26 10:30:00

``app_user`` gains the lockout counters, the password's change time and the (encrypted)
TOTP secret with the last accepted time step; ``user_token`` gains last-seen, the masked
client address and agent, and a name and scopes for API tokens. New tables:
``recovery_code`` (hashed one-use second-factor codes) and ``login_failure`` (failed
sign-ins per hashed client address).

Administrators must now have a second factor: their sessions and tokens from before the
upgrade end, so each one meets the enrolment at the next sign-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DT = guanxi.core.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("locked_until", _DT, nullable=True))
        batch_op.add_column(sa.Column("lockouts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("password_changed_at", _DT, nullable=True))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", _DT, nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))

    with op.batch_alter_table("user_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", _DT, nullable=True))
        batch_op.add_column(sa.Column("client_address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("scopes", sa.String(length=2000), nullable=True))

    op.create_table(
        "recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _DT, nullable=False),
        sa.Column("used_at", _DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_recovery_code_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_code")),
    )
    with op.batch_alter_table("recovery_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_code_user_id"), ["user_id"], unique=False)

    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sa.String(length=32), nullable=False),
        sa.Column("at", _DT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.create_index("ix_login_failure_address_at", ["address_hash", "at"], unique=False)

    token = sa.table("user_token", sa.column("user_id", sa.Integer()), sa.column("revoked_at", _DT))
    user = sa.table("app_user", sa.column("id", sa.Integer()), sa.column("role", sa.String()))
    op.execute(
        token.update()
        .where(
            token.c.revoked_at.is_(None),
            token.c.user_id.in_(sa.select(user.c.id).where(user.c.role == "admin")),
        )
        .values(revoked_at=datetime.now(UTC))
    )


def downgrade() -> None:
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failure_address_at")
    op.drop_table("login_failure")
    with op.batch_alter_table("recovery_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_code_user_id"))
    op.drop_table("recovery_code")
    with op.batch_alter_table("user_token", schema=None) as batch_op:
        for name in ("scopes", "name", "user_agent", "client_address", "last_seen_at"):
            batch_op.drop_column(name)
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        for name in (
            "totp_last_step",
            "totp_enabled_at",
            "totp_secret",
            "password_changed_at",
            "lockouts",
            "locked_until",
            "failed_logins",
        ):
            batch_op.drop_column(name)
