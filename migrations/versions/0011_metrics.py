"""peak memory and energy per inference beside latency, on layer and network measurements

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("layer_measurements", "network_measurements")


# Nullable columns added in place (plain ALTER TABLE, as 0010): rows measured before them keep
# every value they had, and read null for the new metrics.
def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column("memory_method", sa.String(200), nullable=True))
        op.add_column(table, sa.Column("energy_mj", sa.Float(), nullable=True))
        op.add_column(table, sa.Column("energy_method", sa.String(200), nullable=True))
        op.add_column(table, sa.Column("energy_detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        for column in (
            "energy_detail",
            "energy_method",
            "energy_mj",
            "memory_method",
            "peak_memory_bytes",
        ):
            op.drop_column(table, column)
