"""search spaces as data: registered specs, and the spec hash of every network measurement and
validation

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Rows stored before spaces were data all belong to the three built-in spaces, whose specs did
not change: they are backfilled with those specs' hashes (spelt out here, as of this day: a
migration keeps building the schema of its day), so they stay valid.
"""

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUILTIN_SHA256: Final = {
    "spnas-mobilenetv2-224": "7805f9764bd855bcb8a042e744eda3ede68bf93502e0c9d63641ad402ef4bad4",
    "spnas-se-mobilenetv2-224": "4a8568895f9869c46a1dafcdda1e988a73835d555fd5271136d8b45185fb7b55",
    "tiny-64": "625a6bf7e36db8f87fa1854b900d5cf78e3069e6f758d7f94b51110529b80dab",
}
TABLES: Final = ("network_measurements", "validations")


def upgrade() -> None:
    op.create_table(
        "search_spaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_spaces")),
        sa.UniqueConstraint("name", name=op.f("uq_search_spaces_name")),
    )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("space_sha256", sa.String(length=64), nullable=True))
        rows = sa.table(table, sa.column("space", sa.String), sa.column("space_sha256", sa.String))
        for name, digest in BUILTIN_SHA256.items():
            op.execute(rows.update().where(rows.c.space == name).values(space_sha256=digest))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("space_sha256")
    op.drop_table("search_spaces")
