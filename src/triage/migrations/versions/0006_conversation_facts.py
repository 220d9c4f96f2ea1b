"""The recipient's facts stored with each turn (conversation.facts)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

The outbox judged every row against facts it recomputed from the conversation state with the
engine's classifiers. The engine now stores the facts with the state, and the outbox reads
them. Conversations saved before this revision have no facts until the app fills them in at
start (`triage.app`); until then the gate holds their rows (unknown recipient: fail closed).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("facts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("facts")
