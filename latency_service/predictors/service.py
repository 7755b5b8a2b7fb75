"""Fitting, importing, storing and loading predictor versions."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_api.schemas.enums import DeviceMetric, ErrorCode
from latency_api.schemas.predictors import FitIn
from latency_service.devices import service as devices
from latency_service.errors import Conflict, NotFound
from latency_service.measurements import drift
from latency_service.measurements import service as measurements
from latency_service.measurements.service import NetworkRow
from latency_service.metrics.registry import PREDICTORS_LOADED
from latency_service.predictors.tables import Predictor
from models import SearchSpace, get_space
from predictor.artifact import LayerEntry, PredictorArtifact
from predictor.compiled import CalibratedOnAnotherSpec, CompiledSpace, MissingLayers, compile_space
from predictor.fitting import NetworkSample, calibrate, fit_predictor
from predictor.memory_energy import fit_energy, fit_memory

log = logging.getLogger(__name__)


class NoPredictor(Conflict):
    code = ErrorCode.no_predictor


class PredictorIncomplete(Conflict):
    code = ErrorCode.predictor_incomplete


LIBRARIES = ("hwlat", "numpy", "scikit-learn")


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _network_samples(
    rows: list[NetworkRow],
    holdout: dict[str, set[tuple[int, ...]]],
    job_factors: dict[int, float] | None = None,
) -> dict[SearchSpace, list[NetworkSample]]:
    """The networks a fit calibrates on: every measured one except those held out."""
    return {
        get_space(space): [
            NetworkSample(arch, value.median_ms)
            for arch, value in by_arch.items()
            if arch not in holdout.get(space, set())
        ]
        for space, by_arch in measurements.network_medians(rows, job_factors).items()
    }


def device_label(device_id: int, name: str) -> str:
    """How a device is named in another's prior: its id and name."""
    return f"#{device_id} {name}"


def other_devices_layers(session: Session, device_id: int) -> dict[str, dict[str, float]]:
    """What every other device measured (label -> layer key -> median ms): the layer model's
    prior over devices. Which of them count, and how much, the fit decides from the layers
    they share with this one."""
    found: dict[str, dict[str, float]] = {}
    for device in devices.list_devices(session):
        if device.id == device_id:
            continue
        current = measurements.current_layers(session, device.id)
        if current:
            found[device_label(device.id, device.name)] = {
                c.layer_key: c.median_ms for c in current
            }
    return found


def _with_drift_correction(
    session: Session,
    device_id: int,
    layers: dict[str, LayerEntry],
    holdout: dict[str, set[tuple[int, ...]]],
) -> tuple[PredictorArtifact, dict[SearchSpace, list[NetworkSample]], dict[str, Any]]:
    """Fit on the calibration networks as measured and, where jobs timed a drift reference,
    as corrected by it; keep the correction only if its leave-one-out error is lower."""
    rows = measurements.network_rows(session, device_id)
    raw = _network_samples(rows, holdout)
    others = other_devices_layers(session, device_id)
    artifact = fit_predictor(layers, raw, others=others)
    factors = drift.job_factors(session, device_id)
    decision: dict[str, Any] = {"applied": False, "jobs_with_reference": len(factors)}
    if not factors or not raw:
        return artifact, raw, decision
    corrected = _network_samples(rows, holdout, factors)
    candidate = calibrate(artifact, corrected)
    raw_loo, corrected_loo = _loo(artifact), _loo(candidate)
    decision |= {"loo_mape_pct_raw": raw_loo, "loo_mape_pct_corrected": corrected_loo}
    if corrected_loo is not None and raw_loo is not None and corrected_loo < raw_loo:
        decision["applied"] = True
        return candidate, corrected, decision
    return artifact, raw, decision


def _loo(artifact: PredictorArtifact) -> float | None:
    """Mean leave-one-out MAPE of the artifact's calibrations, over their networks."""
    pairs: list[tuple[float, int]] = []
    for c in artifact.calibration.values():
        value = c.uncalibrated_mape_pct if c.rejected else c.loo_mape_pct
        if value is not None and c.n_networks > 0:
            pairs.append((value, c.n_networks))
    if not pairs:
        return None
    return sum(v * n for v, n in pairs) / sum(n for _, n in pairs)


def fit_for_device(session: Session, device_id: int, spec: FitIn | None = None) -> Predictor:
    """Fit on the device's current layer values and its measured networks, except the
    networks ``spec`` holds out (for a validation measured in the same passes)."""
    devices.get(session, device_id)
    holdout = {
        space: {tuple(a) for a in archs} for space, archs in (spec or FitIn()).holdout.items()
    }
    current = measurements.current_layers(session, device_id)
    if not current:
        raise Conflict(
            f"device {device_id} has no layer measurements to fit on; profile it first "
            "(hwlat agent host, or queue jobs with hwlat jobs create)"
        )
    layers = {
        c.layer_key: LayerEntry(c.median_ms, "measured", c.n_used, c.spread_pct) for c in current
    }
    try:
        artifact, networks, correction = _with_drift_correction(session, device_id, layers, holdout)
    except (MissingLayers, CalibratedOnAnotherSpec) as error:
        raise PredictorIncomplete(
            f"cannot calibrate device {device_id} on its measured networks: {error}"
        ) from None
    training = {
        "layers": {k: v.ms for k, v in sorted(layers.items())},
        "networks": {
            s.name: [[list(n.architecture), n.median_ms] for n in ns] for s, ns in networks.items()
        },
        "drift_correction": correction["applied"],
    }
    artifact, beside = _with_metrics(session, device_id, artifact, holdout)
    training["beside_latency"] = beside
    metrics = _fit_metrics(artifact, networks) | {"drift_correction": correction}
    return _store(session, device_id, artifact, "fit", training, metrics, keep_training=True)


def _with_metrics(
    session: Session,
    device_id: int,
    artifact: PredictorArtifact,
    holdout: dict[str, set[tuple[int, ...]]],
) -> tuple[PredictorArtifact, dict[str, Any]]:
    """The artifact with a model of each metric beside latency the device has measured, and
    what each was fitted on (for the version's training record)."""
    values = measurements.current_metrics(session, device_id)
    networks = {
        metric: {
            get_space(space): [
                (arch, value)
                for arch, value in by_arch.items()
                if arch not in holdout.get(space, set())
            ]
            for space, by_arch in by_space.items()
        }
        for metric, by_space in values.networks.items()
    }
    memory = fit_memory(values.layers[DeviceMetric.memory], networks[DeviceMetric.memory])
    energy = fit_energy(values.layers[DeviceMetric.energy], networks[DeviceMetric.energy])
    used = {
        str(metric): {
            "layers": len(values.layers[metric]),
            # The calibration's networks, which a validation of this version must leave out.
            "networks": {s.name: [list(a) for a, _ in v] for s, v in networks[metric].items()},
        }
        for metric in DeviceMetric
    }
    return replace(artifact, memory=memory, energy=energy), used


def fit_after_job(session: Session, device_id: int, job_id: int) -> Predictor | None:
    """The fit a ``fit_after`` job asks for once it is done; None (logged) when the device
    cannot be fitted yet: the job's measurements are stored either way."""
    try:
        predictor = fit_for_device(session, device_id)
    except Conflict as error:
        session.rollback()
        log.warning("job %d done; device %d not fitted yet: %s", job_id, device_id, error)
        return None
    log.info("job %d done; device %d fitted as version %d", job_id, device_id, predictor.version)
    return predictor


def _fit_metrics(
    artifact: PredictorArtifact, networks: dict[SearchSpace, list[NetworkSample]]
) -> dict[str, Any]:
    metrics: dict[str, Any] = {"n_layers": len(artifact.layers)}
    model = artifact.layer_model
    if model is not None:
        metrics["layer_model"] = {
            "n_train": model.n_train,
            "cv_mape_pct": model.cv_mape_pct,
            "cv_worst_decile_pct": model.cv_worst_decile_pct,
            "cv_coverage90_pct": model.cv_coverage90_pct,
            "noise_pct": 100 * model.noise_rel,
            "rho": model.rho,
            "prior_width": model.prior_width,
            "residual_gp": model.residual is not None,
            "similar_devices": [asdict(s) for s in model.similarity],
        }
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
    *,
    keep_training: bool = False,
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
            training=training if keep_training else None,
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


def get_version(session: Session, device_id: int, version: int | None) -> Predictor:
    """A version of the device's predictor; the newest when ``version`` is None."""
    devices.get(session, device_id)
    query = select(Predictor).where(Predictor.device_id == device_id)
    if version is None:
        found = session.scalar(query.order_by(Predictor.version.desc()).limit(1))
        if found is None:
            raise NoPredictor(
                f"device {device_id} has no predictor yet; fit one with POST "
                f"/v1/devices/{device_id}/predictors or `hwlat fit --device {device_id}`"
            )
        return found
    found = session.scalar(query.where(Predictor.version == version))
    if found is None:
        raise NotFound(
            f"device {device_id} has no predictor version {version}; list them with GET "
            f"/v1/devices/{device_id}/predictors"
        )
    return found


def compile_version(predictor: Predictor, space: SearchSpace) -> CompiledSpace:
    """One stored version compiled for ``space`` (not cached: for occasional use)."""
    try:
        return compile_space(
            PredictorArtifact.from_json(predictor.artifact), space, predictor.version
        )
    except (MissingLayers, CalibratedOnAnotherSpec) as error:
        raise PredictorIncomplete(
            f"predictor v{predictor.version} of device {predictor.device_id} cannot cover "
            f"{space.name}: {error}"
        ) from None


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

    def _remembered_latest(self, device_id: int) -> tuple[int, int] | None:
        """The newest version while the last reading of it is fresh; None otherwise."""
        cached = self._latest.get(device_id)
        if cached is not None and cached[0] is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    def _latest_version(self, session: Session, device_id: int) -> tuple[int, int] | None:
        """The newest version, asked of the database at most every ``version_ttl_s``."""
        remembered = self._remembered_latest(device_id)
        if remembered is not None:
            return remembered
        latest = latest_version(session, device_id)
        self._latest[device_id] = (latest, time.monotonic() + self._version_ttl_s)
        return latest

    def answers_from_memory(self, device_id: int, space: str | None) -> bool:
        """Whether a predict needs neither the database nor a compilation: the device's newest
        version, its artifact and (for ``space``) its compiled table are in memory, so the
        answer may be computed on the event loop."""
        latest = self._remembered_latest(device_id)
        if latest is None:
            return False
        artifact = self._artifacts.get(device_id)
        if artifact is None or artifact[0] != latest[1]:
            return False
        compiled = self._compiled.get((device_id, space)) if space is not None else None
        return space is None or (compiled is not None and compiled.version == latest[1])

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
        except (MissingLayers, CalibratedOnAnotherSpec) as error:
            raise PredictorIncomplete(
                f"predictor v{version_number} of device {device_id} cannot cover {space.name}: "
                f"{error}"
            ) from None
        with self._lock:
            self._compiled[key] = compiled
            PREDICTORS_LOADED.set(len(self._compiled))
        return compiled
