"""Indexes for scale: processed updates by client (evidence export, retention purge)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`evidence.collect` and the retention purge select a client's processed updates; without an
index on `processed_update.client_id` each of them read the whole table (BENCHMARKS.md, H9).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_update", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processed_update_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("processed_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_update_client_id"))
