"""Fitting, importing, storing and loading predictor versions."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_service.devices import service as devices
from latency_service.errors import Conflict, NotFound
from latency_service.measurements import service as measurements
from latency_service.measurements.tables import NetworkMeasurement
from latency_service.metrics.registry import PREDICTORS_LOADED
from latency_service.predictors.artifact import LayerEntry, PredictorArtifact
from latency_service.predictors.compiled import CompiledSpace, MissingLayers, compile_space
from latency_service.predictors.fitting import NetworkSample, fit_predictor
from latency_service.predictors.tables import Predictor
from models import SearchSpace, get_space


class NoPredictor(Conflict):
    code = "no_predictor"


class PredictorIncomplete(Conflict):
    code = "predictor_incomplete"


LIBRARIES = ("hwlat", "numpy", "scikit-learn")


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _network_samples(session: Session, device_id: int) -> dict[SearchSpace, list[NetworkSample]]:
    """Median of medians per (space, architecture): repeats of one network count once."""
    rows = session.execute(
        select(
            NetworkMeasurement.space, NetworkMeasurement.architecture, NetworkMeasurement.median_ms
        ).where(NetworkMeasurement.device_id == device_id)
    ).all()
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for space, arch, median in rows:
        grouped[(space, arch)].append(median)
    out: dict[SearchSpace, list[NetworkSample]] = defaultdict(list)
    for (space, arch), medians in sorted(grouped.items()):
        out[get_space(space)].append(
            NetworkSample(tuple(int(i) for i in arch.split(",")), float(np.median(medians)))
        )
    return dict(out)


def fit_for_device(session: Session, device_id: int) -> Predictor:
    devices.get(session, device_id)
    current = measurements.current_layers(session, device_id)
    if not current:
        raise Conflict(
            f"device {device_id} has no layer measurements to fit on; profile it first "
            "(hwlat agent host, or queue jobs with hwlat jobs create)"
        )
    layers = {
        c.layer_key: LayerEntry(c.median_ms, "measured", c.n_used, c.spread_pct) for c in current
    }
    networks = _network_samples(session, device_id)
    artifact = fit_predictor(layers, networks)
    training = {
        "layers": {k: v.ms for k, v in sorted(layers.items())},
        "networks": {
            s.name: [[list(n.architecture), n.median_ms] for n in ns] for s, ns in networks.items()
        },
    }
    return _store(session, device_id, artifact, "fit", training, _fit_metrics(artifact, networks))


def _fit_metrics(
    artifact: PredictorArtifact, networks: dict[SearchSpace, list[NetworkSample]]
) -> dict[str, Any]:
    metrics: dict[str, Any] = {"n_layers": len(artifact.layers)}
    if artifact.regression is not None:
        metrics["regression_cv_mape_pct"] = artifact.regression.cv_mape_pct
        metrics["regression_n_train"] = artifact.regression.n_train
    metrics["calibration"] = {
        name: {
            "a": c.a,
            "b": c.b,
            "n_networks": c.n_networks,
            "residual_rms_pct": 100 * c.residual_rms_rel,
            "loo_mape_pct": c.loo_mape_pct,
            "uncalibrated_mape_pct": c.uncalibrated_mape_pct,
            "rejected": c.rejected,
        }
        for name, c in artifact.calibration.items()
    }
    metrics["n_networks"] = sum(len(v) for v in networks.values())
    return metrics


def import_artifact(
    session: Session, device_id: int, artifact: PredictorArtifact, source: dict[str, Any]
) -> Predictor:
    devices.get(session, device_id)
    metrics = {"n_layers": len(artifact.layers), "imported": source}
    return _store(session, device_id, artifact, "import", artifact.to_dict(), metrics)


def _store(
    session: Session,
    device_id: int,
    artifact: PredictorArtifact,
    origin: str,
    training: dict[str, Any],
    metrics: dict[str, Any],
) -> Predictor:
    digest = hashlib.sha256(json.dumps(training, sort_keys=True).encode()).hexdigest()
    for _ in range(3):
        latest = session.scalar(
            select(func.max(Predictor.version)).where(Predictor.device_id == device_id)
        )
        predictor = Predictor(
            device_id=device_id,
            version=(latest or 0) + 1,
            origin=origin,
            training_sha256=digest,
            library_versions=library_versions(),
            metrics=metrics,
            artifact=artifact.to_json(),
        )
        session.add(predictor)
        try:
            session.commit()
            return predictor
        except IntegrityError:
            session.rollback()  # a concurrent fit took this version number; take the next
    raise Conflict(f"could not allocate a predictor version for device {device_id}; retry")


def list_versions(session: Session, device_id: int) -> Sequence[Predictor]:
    devices.get(session, device_id)
    return session.scalars(
        select(Predictor).where(Predictor.device_id == device_id).order_by(Predictor.version)
    ).all()


def latest_version(session: Session, device_id: int) -> tuple[int, int] | None:
    """(predictor id, version) of the device's newest predictor: one indexed query."""
    row = session.execute(
        select(Predictor.id, Predictor.version)
        .where(Predictor.device_id == device_id)
        .order_by(Predictor.version.desc())
        .limit(1)
    ).first()
    return (int(row[0]), int(row[1])) if row else None


class CompiledCache:
    """Compiled predictors of this worker process, by (device, space, version).

    The newest version is read from the database at most once a second per device, so a new
    fit is in use within a second, without a restart; compiling happens once per version.
    """

    def __init__(self, version_ttl_s: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[tuple[int, str], CompiledSpace] = {}
        self._artifacts: dict[int, tuple[int, PredictorArtifact]] = {}
        self._latest: dict[int, tuple[tuple[int, int] | None, float]] = {}
        self._version_ttl_s = version_ttl_s

    def _latest_version(self, session: Session, device_id: int) -> tuple[int, int] | None:
        """The newest version, asked of the database at most every ``version_ttl_s``."""
        cached = self._latest.get(device_id)
        now = time.monotonic()
        if cached is not None and cached[0] is not None and cached[1] > now:
            return cached[0]
        latest = latest_version(session, device_id)
        self._latest[device_id] = (latest, now + self._version_ttl_s)
        return latest

    def forget(self, device_id: int) -> None:
        """Drop the remembered newest version (this worker just stored a new one)."""
        self._latest.pop(device_id, None)

    def artifact(self, session: Session, device_id: int) -> tuple[int, PredictorArtifact]:
        latest = self._latest_version(session, device_id)
        if latest is None:
            devices.get(session, device_id)
            raise NoPredictor(
                f"device {device_id} has no predictor yet; fit one with POST "
                f"/v1/devices/{device_id}/predictors or `hwlat fit --device {device_id}`"
            )
        predictor_id, version_number = latest
        cached = self._artifacts.get(device_id)
        if cached is not None and cached[0] == version_number:
            return cached
        text = session.scalar(select(Predictor.artifact).where(Predictor.id == predictor_id))
        if text is None:
            raise NotFound(f"predictor {predictor_id} vanished; retry")
        entry = (version_number, PredictorArtifact.from_json(text))
        with self._lock:
            self._artifacts[device_id] = entry
        return entry

    def compiled(self, session: Session, device_id: int, space: SearchSpace) -> CompiledSpace:
        version_number, artifact = self.artifact(session, device_id)
        key = (device_id, space.name)
        found = self._compiled.get(key)
        if found is not None and found.version == version_number:
            return found
        try:
            compiled = compile_space(artifact, space, version_number)
        except MissingLayers as error:
            raise PredictorIncomplete(
                f"predictor v{version_number} of device {device_id} cannot cover {space.name}: "
                f"{error}"
            ) from None
        with self._lock:
            self._compiled[key] = compiled
            PREDICTORS_LOADED.set(len(self._compiled))
        return compiled
