"""The outbox's open-due-at expression index (statistics for the dispatcher's claim)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

The claim asks for unfinished rows that are due. PostgreSQL estimated that from status and
due_at separately and, at 1 M clients, expected 800 k rows where there were a handful: it
scanned the whole outbox on every claim (1.2 s). An index on the expression "due_at of an
unfinished row, else NULL" gives the planner statistics for exactly that question (and an
index to answer it). See `triage.store.models.OPEN_DUE_AT_SQL`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Kept here as written on the day (a later change to the model needs a migration of its own).
OPEN_DUE_AT_SQL = "(CASE WHEN status IN ('pending', 'sending') THEN due_at END)"


def upgrade() -> None:
    op.create_index("ix_outbox_open_due_at", "outbox", [sa.text(OPEN_DUE_AT_SQL)], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Statistics for the new expression now, not at the next autovacuum.
        op.execute("ANALYZE outbox")


def downgrade() -> None:
    op.drop_index("ix_outbox_open_due_at", table_name="outbox")
