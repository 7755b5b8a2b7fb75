"""Recording what a predictor version predicts for the networks a device has measured."""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from latency_service.measurements.tables import NetworkMeasurement
from latency_service.predictions.tables import NetworkPrediction
from latency_service.predictors.tables import Predictor
from models import InvalidArchitecture, UnknownSearchSpace, get_space, parse_architecture
from predictor.artifact import PredictorArtifact
from predictor.compiled import (
    CalibratedOnAnotherSpec,
    CompiledSpace,
    MissingLayers,
    compile_space,
)

logger = logging.getLogger(__name__)


def record(session: Session, predictor: Predictor, space: str | None = None) -> int:
    """Store this version's prediction for every measured network it has none for yet.

    Spaces the version cannot cover (no layer model for a missing layer) get no rows: an
    absent prediction is visible in SQL, a made-up one would not be. Commits; returns how many
    rows were added.
    """
    already = select(NetworkPrediction.id).where(
        NetworkPrediction.predictor_id == predictor.id,
        NetworkPrediction.space == NetworkMeasurement.space,
        NetworkPrediction.architecture == NetworkMeasurement.architecture,
    )
    query = (
        select(NetworkMeasurement.space, NetworkMeasurement.architecture)
        .where(NetworkMeasurement.device_id == predictor.device_id, ~already.exists())
        .distinct()
    )
    if space is not None:
        query = query.where(NetworkMeasurement.space == space)
    by_space: dict[str, list[str]] = defaultdict(list)
    for space_name, architecture in session.execute(query):
        by_space[space_name].append(architecture)
    if not by_space:
        return 0
    artifact = PredictorArtifact.from_json(predictor.artifact)
    rows = []
    for space_name, architectures in sorted(by_space.items()):
        try:
            search_space = get_space(space_name)
            compiled = compile_space(artifact, search_space, predictor.version)
        except (UnknownSearchSpace, MissingLayers, CalibratedOnAnotherSpec):
            continue  # this version does not cover the space (or the space is unknown here)
        architectures = _admitted(compiled, architectures)
        archs = np.asarray([parse_architecture(a) for a in architectures], dtype=np.int64).reshape(
            len(architectures), search_space.num_layers
        )
        latency, uncertainty = compiled.predict(archs)
        rows += [
            {
                "predictor_id": predictor.id,
                "device_id": predictor.device_id,
                "space": space_name,
                "architecture": architecture,
                "predicted_ms": float(ms),
                "uncertainty_ms": float(sd),
            }
            for architecture, ms, sd in zip(architectures, latency, uncertainty, strict=True)
        ]
    if rows:
        session.execute(insert(NetworkPrediction), rows)
    session.commit()
    return len(rows)


def _admitted(compiled: CompiledSpace, architectures: list[str]) -> list[str]:
    """The stored architectures the space admits; one it no longer admits is left out alone,
    and logged, instead of costing the space's other predictions."""

    def check(rows: list[str]) -> None:
        compiled.check(np.asarray([parse_architecture(a) for a in rows], dtype=np.int64))

    try:
        check(architectures)
        return architectures
    except (InvalidArchitecture, ValueError):
        pass  # find which, one by one: rare, so the common case stays one check
    admitted = []
    for architecture in architectures:
        try:
            check([architecture])
        except (InvalidArchitecture, ValueError) as error:
            logger.warning("no prediction for %s: %s", architecture, error)
            continue
        admitted.append(architecture)
    return admitted


def record_for_version(session: Session, device_id: int, version: int, space: str) -> int:
    """:func:`record` for a device's version number; 0 when that version does not exist."""
    predictor = session.scalar(
        select(Predictor).where(Predictor.device_id == device_id, Predictor.version == version)
    )
    return 0 if predictor is None else record(session, predictor, space)
