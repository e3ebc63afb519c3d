"""retention policies and purge runs

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-26 10:30:00

The retention policy per data category (``retention_policy``), seeded with the defaults
documented in docs/privacy.md, and the purge runs with their report per category
(``retention_run``, ``retention_report``). The defaults are written out here (not
imported) so this revision stays what it was when later code changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import guanxi.core.types

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULTS = {
    "archived_customers": 1095,
    "ticket_attachments": 1095,
    "call_recordings": 365,
    "outbox_contents": 180,
    "import_files": 7,
    "sessions_tokens": 30,
    "login_failures": 7,
    "survey_links": 90,
    "dedupe_pairs": 365,
    "analytics_runs": 730,
}


def upgrade() -> None:
    """Create the retention tables and seed the default policies."""
    policy = op.create_table(
        "retention_policy",
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["app_user.id"],
            name=op.f("fk_retention_policy_updated_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("category", name=op.f("pk_retention_policy")),
    )
    op.create_table(
        "retention_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_run")),
    )
    op.create_index(
        op.f("ix_retention_run_started_at"), "retention_run", ["started_at"], unique=False
    )
    op.create_table(
        "retention_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.Column("cutoff", guanxi.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("oldest_kept", guanxi.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["retention_run.id"],
            name=op.f("fk_retention_report_run_id_retention_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_report")),
        sa.UniqueConstraint("run_id", "category", name="uq_retention_report_run"),
    )
    seeded = datetime(2026, 11, 26, tzinfo=UTC)
    op.bulk_insert(
        policy,
        [
            {"category": c, "keep_days": d, "enabled": True, "updated_at": seeded}
            for c, d in DEFAULTS.items()
        ],
    )


def downgrade() -> None:
    """Drop the retention tables."""
    op.drop_table("retention_report")
    op.drop_index(op.f("ix_retention_run_started_at"), table_name="retention_run")
    op.drop_table("retention_run")
    op.drop_table("retention_policy")
