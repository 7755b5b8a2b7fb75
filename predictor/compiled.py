"""A predictor compiled for one search space: flat arrays a batch of architectures gathers from.

Every layer of a network is a *position* of the space (``models.search_space.Position``): its
key is a function of a few decisions, its parents, and the space lists the key for each
combination of their choices. Compiling looks every such key up once. Predicting a batch is then
one gather per position and a sum, with no per-architecture Python.

A position with no parents (the stem and head of a space of fixed shapes) is the same in every
architecture: it is summed once into ``fixed_ms``. The others are *columns*: column ``j`` reads
``flat[offset_j + Σ_p archs[:, parent_p] * stride_p]``. In a space of fixed shapes every column
is one searchable layer whose only parent is its own decision, so the index is ``archs +
offsets``, the fast path hwlat has always had, and ``table_ms`` is the (layer, candidate) table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from models.layer_key import LayerKey, Op
from models.search_space import InvalidArchitecture, Position, SearchSpace
from predictor.artifact import Calibration, PredictorArtifact
from predictor.calibration import calibrated_ms, calibrated_uncertainty_ms


class MissingLayers(LookupError):
    """Layers the predictor has neither measured nor can estimate."""

    def __init__(self, keys: list[str]) -> None:
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        super().__init__(
            f"no measurement and no layer model for {len(keys)} layer(s): {shown}; profile "
            "them, or measure at least 8 layers (or one, once another device is known) so that "
            "a layer model can be fitted"
        )
        self.keys = keys


class CalibratedOnAnotherSpec(LookupError):
    """The predictor's calibration of a space was fitted under another spec of that name."""

    def __init__(self, name: str, fitted: str, current: str) -> None:
        super().__init__(
            f"its calibration of {name} was fitted on networks of another spec (sha256 "
            f"{fitted[:12]}, the space is now {current[:12]}); measure networks of this spec "
            "and fit again"
        )


@dataclass(frozen=True)
class LayerLookup:
    """Latency, variance and origin of individual layer keys under one artifact."""

    ms: npt.NDArray[np.float64]
    var: npt.NDArray[np.float64]
    estimated: npt.NDArray[np.bool_]


def lookup(artifact: PredictorArtifact, keys: list[LayerKey]) -> LayerLookup:
    """Measured value where there is one, the layer model's estimate elsewhere; skip is 0."""
    ms = np.zeros(len(keys))
    var = np.zeros(len(keys))
    estimated = np.zeros(len(keys), dtype=bool)
    missing: list[int] = []
    for i, key in enumerate(keys):
        if key.op is Op.SKIP:
            continue  # an identity costs nothing by definition, not by omission
        entry = artifact.layers.get(str(key))
        if entry is None:
            missing.append(i)
            continue
        ms[i] = entry.ms
        var[i] = (entry.ms * entry.spread_pct / 100) ** 2
    if missing:
        unmeasured = [keys[i] for i in missing]
        if artifact.layer_model is not None:
            ms[missing] = artifact.layer_model.predict(unmeasured)
            var[missing] = artifact.layer_model.variance_ms2(unmeasured)
        elif artifact.regression is not None:  # a version stored before layer models
            guesses = artifact.regression.predict(unmeasured)
            ms[missing] = guesses
            var[missing] = (guesses * artifact.regression.cv_rms_rel) ** 2
        else:
            raise MissingLayers([str(k) for k in unmeasured])
        estimated[missing] = True
    return LayerLookup(ms, var, estimated)


@dataclass(frozen=True)
class CompiledSpace:
    version: int
    space: SearchSpace
    columns: tuple[Position, ...]  # the positions gathered per architecture, in network order
    column_positions: npt.NDArray[np.int64]  # each column's index in space.positions
    offsets: npt.NDArray[np.int64]  # (J,) where each column's grid starts in the flat arrays
    parents: npt.NDArray[np.int64]  # (J, P) decisions each column reads; padded with 0
    strides: npt.NDArray[np.int64]  # (J, P) row-major strides of the grid; 0 on padding
    flat_ms: npt.NDArray[np.float64]
    flat_var: npt.NDArray[np.float64]
    flat_estimated: npt.NDArray[np.bool_]
    fixed_ms: float
    fixed_var: float
    calibration: Calibration

    # -- the fast path of a space of fixed shapes -------------------------------------------

    @cached_property
    def direct(self) -> bool:
        """Column j reads only decision j, with stride 1: the index is ``archs + offsets``."""
        j = len(self.columns)
        return (
            j == self.space.num_layers
            and self.parents.shape[1] == 1
            and bool(np.all(self.parents[:, 0] == np.arange(j)))
            and bool(np.all(self.strides[:, 0] == 1))
        )

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.space.candidate_counts, dtype=np.int64)

    @cached_property
    def table_ms(self) -> npt.NDArray[np.float64]:
        """(layer, candidate) latencies of a space of fixed shapes; NaN past a layer's last
        candidate. An elastic space has no such table (``ElasticSpace``)."""
        return self._table(self.flat_ms, np.nan)

    @cached_property
    def estimated(self) -> npt.NDArray[np.bool_]:
        table: npt.NDArray[np.bool_] = self._table(self.flat_estimated, False)
        return table

    @cached_property
    def var(self) -> npt.NDArray[np.float64]:
        return self._table(self.flat_var, 0.0)

    def _table(self, flat: npt.NDArray[Any], pad: float | bool) -> npt.NDArray[Any]:
        slots = self.space.layers  # raises ElasticSpace for an elastic space
        width = max(len(slot.candidates) for slot in slots)
        table = np.full((len(slots), width), pad, dtype=flat.dtype)
        for layer, slot in enumerate(slots):
            n = len(slot.candidates)
            table[layer, :n] = flat[self.offsets[layer] : self.offsets[layer] + n]
        return table

    # -- any space ----------------------------------------------------------------------------

    def check(self, archs: npt.NDArray[np.int64]) -> None:
        """Raise naming the first bad (row, position); a gather must never read padding."""
        if archs.ndim != 2 or archs.shape[1] != self.space.num_layers:
            raise InvalidArchitecture(
                f"architectures must be rows of {self.space.num_layers} candidate indices "
                f"for {self.space.name}; got shape {archs.shape}"
            )
        bad = (archs < 0) | (archs >= self.counts)
        if bad.any():
            row, position = (int(v) for v in np.argwhere(bad)[0])
            raise InvalidArchitecture(
                f"architecture {row}, position {position}: candidate {int(archs[row, position])} "
                f"out of range 0..{int(self.counts[position]) - 1}",
                position,
            )

    def index(self, archs: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """(N, J) indices into the flat arrays: which key each column has in each row."""
        if self.direct:
            direct: npt.NDArray[np.int64] = archs + self.offsets
            return direct
        # One BLAS product: archs (N, D) @ W (D, J), W holding each column's stride at its
        # parents' rows. Every index is an integer far below 2**53, so float64 is exact; five
        # gathers of a column per parent took 5.7 ms for 10,000 OFA MobileNetV3 rows, this 1.
        product = archs.astype(np.float64) @ self._stride_matrix
        index: npt.NDArray[np.int64] = product.astype(np.int64) + self.offsets
        return index

    @cached_property
    def _stride_matrix(self) -> npt.NDArray[np.float64]:
        matrix = np.zeros((self.space.num_layers, len(self.columns)))
        for p in range(self.parents.shape[1]):
            np.add.at(
                matrix, (self.parents[:, p], np.arange(len(self.columns))), self.strides[:, p]
            )
        return matrix

    def keys(self, archs: npt.NDArray[np.int64]) -> list[list[LayerKey]]:
        """The columns' layer keys of each architecture (for reports; not the fast path)."""
        local = self.index(archs) - self.offsets
        return [
            [column.keys[i] for column, i in zip(self.columns, row, strict=True)]
            for row in local.tolist()
        ]

    def layer_sums(self, archs: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Σ over the columns (+ fixed parts when they are in the sum)."""
        total: npt.NDArray[np.float64] = self.flat_ms.take(self.index(archs)).sum(axis=1)
        return total + (self.fixed_ms if self.calibration.fixed_in_sum else 0.0)

    @cached_property
    def _ms_and_var(self) -> npt.NDArray[np.complex128]:
        """The flat table with each variance as the imaginary part: one gather fetches both
        (measured here: 84 ms for 10^6 architectures against 134 ms for two)."""
        both: npt.NDArray[np.complex128] = self.flat_ms + 1j * self.flat_var
        return both

    @cached_property
    def _has_variance(self) -> bool:
        return bool(np.any(self.flat_var))  # an imported table has none

    def predict(
        self, archs: npt.NDArray[np.int64], index: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(latency_ms, uncertainty_ms) per architecture; ``archs`` must be checked first
        (``index``: ``self.index(archs)``, when the caller has it already)."""
        cal = self.calibration
        index = self.index(archs) if index is None else index
        # Row sums as a product with a vector of ones: BLAS beats .sum(axis=1) by about a
        # quarter on (10^6, 20).
        ones = np.ones(index.shape[1])
        if self._has_variance:
            both = self._ms_and_var.take(index) @ ones.astype(np.complex128)
            sums, var = both.real, both.imag
        else:
            sums, var = self.flat_ms.take(index) @ ones, np.zeros(len(index))
        latency = calibrated_ms(cal, sums, self.fixed_ms)
        return latency, calibrated_uncertainty_ms(cal, latency, var, self.fixed_var)

    def estimated_positions(self, archs: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """(N, J): which column of each architecture the regression estimated."""
        chosen: npt.NDArray[np.bool_] = self.flat_estimated.take(self.index(archs))
        return chosen

    @cached_property
    def flat_keys(self) -> tuple[LayerKey, ...]:
        """The layer key of every entry of the flat arrays."""
        return tuple(k for column in self.columns for k in column.keys)


def compile_space(artifact: PredictorArtifact, space: SearchSpace, version: int) -> CompiledSpace:
    imported = artifact.positions.get(space.name)
    calibration = artifact.calibration.get(space.name, Calibration())
    if calibration.space_sha256 not in (None, space.digest):
        raise CalibratedOnAnotherSpec(space.name, str(calibration.space_sha256), space.digest)
    columns = tuple(p for p in space.positions if p.parents)
    constant = [p for p in space.positions if not p.parents]
    if imported is not None:
        # A published per-position table (the seed's): its fixed parts are in b, not in a sum.
        ms, var, estimated = _imported(imported, space)
    else:
        # One lookup for every key of the space, each distinct key once.
        distinct = list(dict.fromkeys(k for p in columns for k in p.keys))
        found = lookup(artifact, distinct)
        at = {key: i for i, key in enumerate(distinct)}
        order = np.asarray([at[k] for p in columns for k in p.keys], dtype=np.int64)
        ms, var, estimated = found.ms[order], found.var[order], found.estimated[order]
    sizes = [len(p.keys) for p in columns]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    depth = max((len(p.parents) for p in columns), default=1)
    parents = np.zeros((len(columns), depth), dtype=np.int64)
    strides = np.zeros((len(columns), depth), dtype=np.int64)
    counts = space.candidate_counts
    for j, position in enumerate(columns):
        stride = 1
        # Row-major: the last parent varies fastest.
        for p in reversed(range(len(position.parents))):
            parents[j, p] = position.parents[p]
            strides[j, p] = stride
            stride *= counts[position.parents[p]]
    fixed_ms, fixed_var = 0.0, 0.0
    if calibration.fixed_in_sum and constant:
        fixed = lookup(artifact, [p.keys[0] for p in constant])
        fixed_ms, fixed_var = float(fixed.ms.sum()), float(fixed.var.sum())
    index_of = {p.name: i for i, p in enumerate(space.positions)}
    return CompiledSpace(
        version=version,
        space=space,
        columns=columns,
        column_positions=np.asarray([index_of[p.name] for p in columns], dtype=np.int64),
        offsets=offsets,
        parents=parents,
        strides=strides,
        flat_ms=np.asarray(ms, dtype=np.float64),
        flat_var=np.asarray(var, dtype=np.float64),
        flat_estimated=np.asarray(estimated, dtype=bool),
        fixed_ms=fixed_ms,
        fixed_var=fixed_var,
        calibration=calibration,
    )


def _imported(
    rows: list[list[float]], space: SearchSpace
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    ms: list[float] = []
    for layer, slot in enumerate(space.layers):
        for candidate in range(len(slot.candidates)):
            if slot.candidates[candidate].op is Op.SKIP:
                ms.append(0.0)
                continue
            try:
                ms.append(rows[layer][candidate])
            except IndexError:
                raise MissingLayers([str(slot.key(candidate))]) from None
    values = np.asarray(ms, dtype=np.float64)
    return values, np.zeros_like(values), np.zeros(len(values), dtype=bool)
