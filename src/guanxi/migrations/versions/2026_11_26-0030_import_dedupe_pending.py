"""import jobs remember a pending duplicate check

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-26 13:30:00

``import_job.dedupe_pending``: set when a customer import finishes with new customers,
cleared only once the duplicate check after it has finished, so a check killed midway is
run by the next run of the import (or any import) instead of being lost.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dedupe_pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_column("dedupe_pending")
