"""measurements remember the job they were uploaded for, so that the work of a lease that
never completed can be dropped when the job is leased again

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("layer_measurements", "network_measurements")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
            batch_op.create_index(f"ix_{table}_job_id", ["job_id"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_job_id")
            batch_op.drop_column("job_id")
