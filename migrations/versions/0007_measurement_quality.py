"""measurement quality: every attempt stored with the gate's verdict and evidence, its pass and
its job (the job_id column of 0006 becomes a foreign key); drift references; validations keep
their noise floor

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("layer_measurements", "network_measurements")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            # Measurements stored before the gate existed were all used: they stay accepted.
            batch_op.add_column(
                sa.Column("accepted", sa.Boolean(), nullable=False, server_default=sa.true())
            )
            batch_op.add_column(sa.Column("rejection", sa.Text(), nullable=True))
            batch_op.add_column(sa.Column("quality", sa.JSON(), nullable=True))
            batch_op.add_column(
                sa.Column("attempt", sa.Integer(), nullable=False, server_default="1")
            )
            batch_op.add_column(sa.Column("pass_index", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_job_id_jobs"), "jobs", ["job_id"], ["id"]
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("accepted", server_default=None)
            batch_op.alter_column("attempt", server_default=None)
    with op.batch_alter_table("layer_measurements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="layer")
        )
    with op.batch_alter_table("layer_measurements", schema=None) as batch_op:
        batch_op.alter_column("role", server_default=None)
    with op.batch_alter_table("validations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("noise_floor", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("validations", schema=None) as batch_op:
        batch_op.drop_column("noise_floor")
    with op.batch_alter_table("layer_measurements", schema=None) as batch_op:
        batch_op.drop_column("role")
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"fk_{table}_job_id_jobs"), type_="foreignkey")
            for column in ("pass_index", "attempt", "quality", "rejection", "accepted"):
                batch_op.drop_column(column)
