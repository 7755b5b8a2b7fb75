"""one wire contract: median_is_average, typed job payload and timing, idempotent claims and
completions, predictor training data, server-computed validations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 02:30:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(value: Any) -> Any:
    # SQLite hands JSON columns back as text through a plain select.
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    for table in ("layer_measurements", "network_measurements"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "median_is_average", sa.Boolean(), nullable=False, server_default=sa.false()
                )
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("median_is_average", server_default=None)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("settings", new_column_name="timing")
        batch_op.alter_column("selector", existing_type=sa.JSON(), nullable=True)
        batch_op.add_column(sa.Column("claim_request_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("released_lease_token", sa.String(length=64), nullable=True))
    # Payloads carry their kind now (a discriminated union); an empty selector is no selector.
    bind = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("payload", sa.JSON()),
        sa.column("selector", sa.JSON()),
    )
    for job_id, kind, payload, selector in bind.execute(
        sa.select(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.selector)
    ).all():
        bind.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(
                payload={**_json(payload), "kind": kind},
                selector=_json(selector) or sa.null(),
            )
        )

    with op.batch_alter_table("predictors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("training", sa.JSON(), nullable=True))

    # Reports stored by clients before the service computed them: tie each to its predictor
    # version; one whose version does not exist cannot be kept.
    with op.batch_alter_table("validations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("predictor_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("points", sa.JSON(), nullable=True))
    bind.execute(
        sa.text(
            "UPDATE validations SET predictor_id = (SELECT p.id FROM predictors p "
            "WHERE p.device_id = validations.device_id "
            "AND p.version = validations.predictor_version)"
        )
    )
    bind.execute(sa.text("DELETE FROM validations WHERE predictor_id IS NULL"))
    validations = sa.table("validations", sa.column("points", sa.JSON()))
    bind.execute(validations.update().values(points=[]))
    with op.batch_alter_table("validations", schema=None) as batch_op:
        batch_op.alter_column("predictor_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("points", existing_type=sa.JSON(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_validations_predictor_id_predictors"),
            "predictors",
            ["predictor_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_validations_predictor_id"), ["predictor_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("validations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validations_predictor_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_validations_predictor_id_predictors"), type_="foreignkey"
        )
        batch_op.drop_column("points")
        batch_op.drop_column("predictor_id")
    with op.batch_alter_table("predictors", schema=None) as batch_op:
        batch_op.drop_column("training")
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE jobs SET selector = '{}' WHERE selector IS NULL"))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("released_lease_token")
        batch_op.drop_column("claim_request_id")
        batch_op.alter_column("selector", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("timing", new_column_name="settings")
    for table in ("layer_measurements", "network_measurements"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("median_is_average")
