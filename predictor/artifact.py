"""A predictor version as plain data: JSON in, JSON out, no pickles.

``layers`` maps layer keys to their measured (or imported) latency; ``positions`` holds
imported per-position tables of a space (a published table may give two layers with the same
key different values, as the seed's does); ``layer_model`` estimates layers never measured
(``regression``, its predecessor, is still read from versions stored before it: schema 1);
``calibration`` maps a space's layer sum to whole-network latency. ``memory`` and ``energy``
(schema 3) predict the metrics beside latency where the device measured them; see
:mod:`predictor.memory_energy` for how, and why their aggregation over layers differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from models.features import FEATURES, feature_matrix
from models.layer_key import BYTES_PER_ELEMENT_FP32, LayerKey, Op
from predictor.layer_model import LayerModel, Similarity
from predictor.residual_gp import ResidualGP

# 2: ``layer_model`` (predictor.layer_model) replaced ``regression`` for new fits.
# 3: ``memory`` and ``energy`` models beside latency (absent from 1 and 2: read as None).
SCHEMA_VERSION: Final = 3
READABLE_SCHEMAS: Final = (1, 2, 3)
Source = Literal["measured", "imported"]


@dataclass(frozen=True, slots=True)
class LayerEntry:
    ms: float
    source: Source = "measured"
    n: int = 1
    spread_pct: float = 0.0


@dataclass(frozen=True, slots=True)
class Regression:
    """Latency = intercept + coef · (features / scale), coefficients non-negative."""

    features: tuple[str, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    n_train: int
    cv_mape_pct: float
    cv_rms_rel: float  # RMS of relative CV errors: the per-layer uncertainty of an estimate

    def predict(self, keys: list[LayerKey]) -> npt.NDArray[np.float64]:
        unknown = [name for name in self.features if name not in FEATURES]
        if unknown:
            raise ValueError(
                f"this regression was fitted on features this version does not compute "
                f"({', '.join(unknown)}); refit the predictor"
            )
        # A version stored before a feature was added lacks its column: it is read with the
        # columns it was fitted on, so stored predictors keep predicting.
        columns = [FEATURES.index(name) for name in self.features]
        x = feature_matrix(keys)[:, columns] / np.asarray(self.scale)
        y: npt.NDArray[np.float64] = x @ np.asarray(self.coef) + self.intercept
        # A linear model can dip below zero far outside its data; a latency cannot.
        return np.maximum(y, 1e-6)


@dataclass(frozen=True, slots=True)
class Calibration:
    """latency = a * (sum of layers [+ fixed parts]) + b."""

    a: float = 1.0
    b: float = 0.0
    # False when b stands for the fixed parts (an imported table with a constant).
    fixed_in_sum: bool = True
    n_networks: int = 0
    residual_rms_rel: float = 0.0
    # Leave-one-out MAPE of this calibration and of none (a = 1, b = 0) on the same networks;
    # a calibration that does not beat none is not used (a, b stay 1, 0).
    loo_mape_pct: float | None = None
    uncalibrated_mape_pct: float | None = None
    rejected: bool = False
    # sha256 of the space spec the networks were measured under (None: fitted before spaces
    # were data, on a built-in spec that has not changed since); a calibration is never used
    # for another spec of the same name.
    space_sha256: str | None = None


class NoMetricModel(LookupError):
    """A metric beside latency this predictor cannot answer: never measured, or not for
    every layer it is asked about."""

    @classmethod
    def never_measured(cls, metric: str, meaning: str) -> NoMetricModel:
        return cls(
            f"this predictor has no {metric} model: the device has no {metric} measurements "
            f"({meaning}); profile layers and networks with `hwlat jobs create --metric {metric}` "
            "and fit again"
        )


def weight_bytes(keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
    """fp32 bytes of each layer's parameters."""
    return np.array([k.params * BYTES_PER_ELEMENT_FP32 for k in keys], dtype=np.float64)


def live_bytes(keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
    """fp32 bytes of the tensors each layer reads and writes: what must be live while it runs."""
    return np.array([k.activation_bytes for k in keys], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class MemoryModel:
    """Peak memory = fixed + per_weight_byte · Σ weights + per_live_byte · max live set.

    Not a sum over layers: a runtime keeps every weight for the whole inference, but an
    activation only while it is live, and its arena reuses the memory of dead ones. So the
    network's peak is its weights plus its largest live set, plus what the runtime holds for
    any model. The three coefficients are fitted on layers measured alone (non-negative least
    relative squares); ``calibration`` maps the formula's network value to measured networks
    per space (``a · x + b``), as latency's does.
    """

    fixed_bytes: float
    per_weight_byte: float
    per_live_byte: float
    n_layers: int
    fit_mape_pct: float  # on the layers it was fitted on
    calibration: dict[str, Calibration] = field(default_factory=dict)

    def formula_bytes(self, networks: Sequence[Sequence[LayerKey]]) -> npt.NDArray[np.float64]:
        """The uncalibrated formula, one value per network (a layer alone is a network)."""
        return np.array(
            [
                self.fixed_bytes
                + self.per_weight_byte * float(weight_bytes(keys).sum())
                + self.per_live_byte * float(live_bytes(keys).max(initial=0.0))
                for keys in networks
            ],
            dtype=np.float64,
        )

    def network_bytes(
        self, networks: Sequence[Sequence[LayerKey]], calibration: Calibration | None = None
    ) -> npt.NDArray[np.float64]:
        raw = self.formula_bytes(networks)
        return raw if calibration is None else calibration.a * raw + calibration.b


@dataclass(frozen=True, slots=True)
class EnergyModel:
    """Energy per inference of a network = Σ of its layers' energies, calibrated per space.

    Energy adds up over layers, as latency does: each layer draws its own. A layer's energy is
    its measured value where it was measured, else a non-negative linear model of its features
    (``regression``, millijoules).
    """

    layers_mj: dict[str, float]
    regression: Regression | None
    calibration: dict[str, Calibration] = field(default_factory=dict)

    def layer_mj(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        # A skipped layer (a skip candidate) runs nothing.
        values = np.array(
            [0.0 if k.op is Op.SKIP else self.layers_mj.get(str(k), np.nan) for k in keys],
            dtype=np.float64,
        )
        missing = np.isnan(values)
        if missing.any():
            if self.regression is None:
                unknown = sorted({str(k) for k, m in zip(keys, missing, strict=True) if m})
                raise NoMetricModel(
                    f"no energy measured for {', '.join(unknown[:5])} and too few layers "
                    "measured to model the rest; measure more layers with `--metric energy`"
                )
            values[missing] = self.regression.predict(
                [k for k, m in zip(keys, missing, strict=True) if m]
            )
        return values

    def network_mj(
        self, networks: Sequence[Sequence[LayerKey]], calibration: Calibration | None = None
    ) -> npt.NDArray[np.float64]:
        sums = np.array([float(self.layer_mj(keys).sum()) for keys in networks])
        return sums if calibration is None else calibration.a * sums + calibration.b


@dataclass(frozen=True)
class PredictorArtifact:
    layers: dict[str, LayerEntry] = field(default_factory=dict)
    positions: dict[str, list[list[float]]] = field(default_factory=dict)
    regression: Regression | None = None
    calibration: dict[str, Calibration] = field(default_factory=dict)
    layer_model: LayerModel | None = None
    memory: MemoryModel | None = None
    energy: EnergyModel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "layers": {k: asdict(v) for k, v in sorted(self.layers.items())},
            "positions": self.positions,
            "regression": asdict(self.regression) if self.regression else None,
            "calibration": {k: asdict(v) for k, v in sorted(self.calibration.items())},
            "layer_model": asdict(self.layer_model) if self.layer_model else None,
            "memory": asdict(self.memory) if self.memory else None,
            "energy": asdict(self.energy) if self.energy else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictorArtifact:
        version = data.get("schema_version")
        if version not in READABLE_SCHEMAS:
            raise ValueError(
                f"predictor artifact schema {version} is not one this version reads "
                f"({', '.join(map(str, READABLE_SCHEMAS))}); refit the predictor"
            )
        regression = data.get("regression")
        layer_model = data.get("layer_model")
        return cls(
            layers={k: LayerEntry(**v) for k, v in data["layers"].items()},
            positions={
                k: [list(map(float, row)) for row in v]
                for k, v in data.get("positions", {}).items()
            },
            regression=_regression(regression) if regression else None,
            calibration=_calibrations(data.get("calibration", {})),
            layer_model=_layer_model(layer_model) if layer_model else None,
            memory=_memory(data["memory"]) if data.get("memory") else None,
            energy=_energy(data["energy"]) if data.get("energy") else None,
        )

    @classmethod
    def from_json(cls, text: str) -> PredictorArtifact:
        return cls.from_dict(json.loads(text))


def _regression(data: dict[str, Any]) -> Regression:
    return Regression(
        features=tuple(data["features"]),
        scale=tuple(float(v) for v in data["scale"]),
        coef=tuple(float(v) for v in data["coef"]),
        intercept=float(data["intercept"]),
        n_train=int(data["n_train"]),
        cv_mape_pct=float(data["cv_mape_pct"]),
        cv_rms_rel=float(data["cv_rms_rel"]),
    )


def _calibrations(data: dict[str, Any]) -> dict[str, Calibration]:
    return {k: Calibration(**v) for k, v in data.items()}


def _memory(data: dict[str, Any]) -> MemoryModel:
    return MemoryModel(
        fixed_bytes=float(data["fixed_bytes"]),
        per_weight_byte=float(data["per_weight_byte"]),
        per_live_byte=float(data["per_live_byte"]),
        n_layers=int(data["n_layers"]),
        fit_mape_pct=float(data["fit_mape_pct"]),
        calibration=_calibrations(data.get("calibration", {})),
    )


def _energy(data: dict[str, Any]) -> EnergyModel:
    regression = data.get("regression")
    return EnergyModel(
        layers_mj={k: float(v) for k, v in data["layers_mj"].items()},
        regression=_regression(regression) if regression else None,
        calibration=_calibrations(data.get("calibration", {})),
    )


def _layer_model(data: dict[str, Any]) -> LayerModel:
    return LayerModel(
        features=tuple(data["features"]),
        scale=tuple(float(v) for v in data["scale"]),
        coef=tuple(float(v) for v in data["coef"]),
        coef_cov=tuple(float(v) for v in data["coef_cov"]),
        noise_rel=float(data["noise_rel"]),
        interval_scale=float(data["interval_scale"]),
        transferred={k: float(v) for k, v in data["transferred"].items()},
        rho=float(data["rho"]),
        similarity=tuple(Similarity(**s) for s in data["similarity"]),
        residual=_residual(data["residual"]) if data.get("residual") else None,
        prior_width=data.get("prior_width"),
        n_train=int(data["n_train"]),
        cv_mape_pct=data["cv_mape_pct"],
        cv_worst_decile_pct=data["cv_worst_decile_pct"],
        cv_coverage90_pct=data["cv_coverage90_pct"],
    )


def _residual(data: dict[str, Any]) -> ResidualGP:
    return ResidualGP(
        centre=tuple(float(v) for v in data["centre"]),
        spread=tuple(float(v) for v in data["spread"]),
        points=tuple(tuple(float(v) for v in row) for row in data["points"]),
        alpha=tuple(float(v) for v in data["alpha"]),
        amplitude=float(data["amplitude"]),
        length_scales=tuple(float(v) for v in data["length_scales"]),
        noise=float(data["noise"]),
    )
