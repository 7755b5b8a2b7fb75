"""jobs may ask for a predictor fit when they complete (active sampling's rounds)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not batch mode: SQLite adds (and, since 3.35, drops) a column in place,
# where batch mode would rebuild ``jobs`` under the views 0008 made of it.


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("fit_after", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("jobs", "fit_after")
