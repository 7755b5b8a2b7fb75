"""BI views and stored network predictions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

Read-only views for BI tools (Grafana, Superset, Metabase), with the same names and columns on
SQLite and PostgreSQL (the SQL is spelt out here, not imported: a migration keeps building the
schema of its day):

- ``v_layer_latency_current``: one row per (device, layer key): the plain median of the
  accepted per-measurement medians (drift references and attempts the agent's quality gate
  rejected left out), computed the same way on both databases (window functions,
  not ``percentile_cont``, which SQLite lacks). The API's current value
  (``GET /v1/devices/{id}/layers``) also drops modified-z outliers, so the two agree whenever
  a history has no outliers.
- ``v_network_predictions``: every end-to-end network measurement (``accepted`` says whether
  the agent's quality gate kept it), once per predictor version
  that predicted it (``network_predictions``, written when a version is fitted, imported or
  validated), with the signed error; a measurement no version predicted appears once, with
  NULLs.
- ``v_validation_metrics``: one row per validation report and model: the predictor itself
  (``model = 'predictor'``) and each baseline it was compared with.
- ``v_job_queue``: one row per profiling job; ``state`` tells a lease that ran out
  (``lease_expired``) from one that is held.
"""

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAYER_LATENCY_CURRENT: Final = """
CREATE VIEW v_layer_latency_current AS
WITH ranked AS (
    SELECT device_id, layer_key, median_ms, measured_at,
           ROW_NUMBER() OVER (PARTITION BY device_id, layer_key ORDER BY median_ms, id) AS rn,
           COUNT(*) OVER (PARTITION BY device_id, layer_key) AS n
    FROM layer_measurements
    WHERE accepted AND role = 'layer'
)
SELECT r.device_id AS device_id,
       d.name AS device_name,
       r.layer_key AS layer_key,
       r.n AS n_measurements,
       AVG(CASE WHEN r.rn IN ((r.n + 1) / 2, (r.n + 2) / 2) THEN r.median_ms END) AS median_ms,
       MIN(r.median_ms) AS min_ms,
       MAX(r.median_ms) AS max_ms,
       MAX(r.measured_at) AS last_measured_at
FROM ranked r
JOIN devices d ON d.id = r.device_id
GROUP BY r.device_id, d.name, r.layer_key, r.n
"""

NETWORK_PREDICTIONS: Final = """
CREATE VIEW v_network_predictions AS
SELECT m.id AS measurement_id,
       m.device_id AS device_id,
       m.space AS space,
       m.architecture AS architecture,
       m.median_ms AS measured_ms,
       m.measured_at AS measured_at,
       m.accepted AS accepted,
       p.predictor_id AS predictor_id,
       pr.version AS predictor_version,
       p.predicted_ms AS predicted_ms,
       p.uncertainty_ms AS uncertainty_ms,
       100.0 * (p.predicted_ms - m.median_ms) / m.median_ms AS error_pct
FROM network_measurements m
LEFT JOIN network_predictions p
       ON p.device_id = m.device_id AND p.space = m.space AND p.architecture = m.architecture
LEFT JOIN predictors pr ON pr.id = p.predictor_id
"""

METRIC_NAMES: Final = (
    "within_5pct",
    "within_10pct",
    "mape",
    "rmse_ms",
    "kendall_tau",
    "bias_pct",
)

_VALIDATION_METRICS: Final = """
CREATE VIEW v_validation_metrics AS
SELECT v.id AS validation_id, v.device_id AS device_id, v.predictor_version AS predictor_version,
       v.space AS space, 'predictor' AS model, v.n AS n, {predictor_metrics},
       v.created_at AS created_at
FROM validations v
UNION ALL
SELECT v.id, v.device_id, v.predictor_version, v.space, b.key, v.n, {baseline_metrics},
       v.created_at
FROM validations v, json_each(v.baselines) AS b
"""

JOB_QUEUE: Final = """
CREATE VIEW v_job_queue AS
SELECT j.id AS job_id,
       j.kind AS kind,
       CASE WHEN j.status = 'leased' AND j.lease_expires_at < CURRENT_TIMESTAMP
            THEN 'lease_expired' ELSE j.status END AS state,
       COALESCE(j.claimed_device_id, j.device_id) AS device_id,
       j.lease_owner AS agent,
       j.attempts AS attempts,
       j.max_attempts AS max_attempts,
       j.created_at AS created_at,
       j.updated_at AS updated_at,
       j.finished_at AS finished_at,
       j.lease_expires_at AS lease_expires_at,
       j.error AS error
FROM jobs j
"""

NAMES: Final = (
    "v_layer_latency_current",
    "v_network_predictions",
    "v_validation_metrics",
    "v_job_queue",
)


def _json_number(dialect: str, column: str, key: str) -> str:
    if dialect == "postgresql":
        return f"CAST({column} ->> '{key}' AS DOUBLE PRECISION)"
    if dialect == "sqlite":
        return f"CAST(json_extract({column}, '$.{key}') AS REAL)"
    raise ValueError(f"no BI views for the {dialect!r} dialect; use SQLite or PostgreSQL")


def validation_metrics(dialect: str) -> str:
    """The one view whose text differs by dialect: JSON field access is spelt differently."""

    def columns(source: str) -> str:
        return ", ".join(f"{_json_number(dialect, source, k)} AS {k}" for k in METRIC_NAMES)

    return _VALIDATION_METRICS.format(
        predictor_metrics=columns("v.metrics"), baseline_metrics=columns("b.value")
    )


def create_statements(dialect: str) -> list[str]:
    return [LAYER_LATENCY_CURRENT, NETWORK_PREDICTIONS, validation_metrics(dialect), JOB_QUEUE]


def upgrade() -> None:
    op.create_table(
        "network_predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("predictor_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=100), nullable=False),
        sa.Column("architecture", sa.Text(), nullable=False),
        sa.Column("predicted_ms", sa.Float(), nullable=False),
        sa.Column("uncertainty_ms", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_network_predictions_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["predictor_id"],
            ["predictors.id"],
            name=op.f("fk_network_predictions_predictor_id_predictors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_predictions")),
        sa.UniqueConstraint(
            "predictor_id", "space", "architecture", name="uq_network_predictions_predictor_arch"
        ),
    )
    with op.batch_alter_table("network_predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_network_predictions_device_arch",
            ["device_id", "space", "architecture"],
            unique=False,
        )
    for statement in create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for name in reversed(NAMES):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("network_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_network_predictions_device_arch")
    op.drop_table("network_predictions")
