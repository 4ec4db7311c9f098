"""a lawyer's cases: counted by status and listed by due date from indexes

The lawyer desk counts a lawyer's cases per status and lists them by due date,
20 at a time. With only an index on ``lawyer_id`` both read every case the lawyer
ever had (thousands after a few years): (lawyer_id, status) answers the counts from
the index alone, (lawyer_id, due_at) gives a page in order. The first also serves
what the single-column index served.

Revision ID: 3c1f7a2d9e04
Revises: 792099b0bdea
Create Date: 2026-11-29 03:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c1f7a2d9e04"
down_revision: str | None = "792099b0bdea"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("legal_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_legal_requests_lawyer_id")
        batch_op.create_index("ix_legal_requests_lawyer_status", ["lawyer_id", "status"])
        batch_op.create_index("ix_legal_requests_lawyer_due", ["lawyer_id", "due_at"])


def downgrade() -> None:
    with op.batch_alter_table("legal_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_legal_requests_lawyer_due")
        batch_op.drop_index("ix_legal_requests_lawyer_status")
        batch_op.create_index("ix_legal_requests_lawyer_id", ["lawyer_id"])
