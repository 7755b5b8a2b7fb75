"""A predictor version in the caller's process: fetched once, then predicting with no requests.

``HwlatClient.local_predictor(device_id)`` builds one; it answers what ``POST /v1/predict``
answers for the same version, from the same compiled arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from models import SearchSpace, get_space
from predictor.artifact import PredictorArtifact
from predictor.compiled import CompiledSpace, compile_space


class ArtifactAnswer(Protocol):
    """What ``GET /v1/devices/{id}/predictors/{version}`` answers (``PredictorArtifactOut``)."""

    @property
    def device_id(self) -> int: ...

    @property
    def version(self) -> int: ...

    @property
    def artifact(self) -> dict[str, Any]: ...


@dataclass
class LocalPredictor:
    device_id: int
    version: int
    artifact: PredictorArtifact
    _compiled: dict[str, CompiledSpace] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_wire(cls, answer: ArtifactAnswer) -> LocalPredictor:
        return cls(
            device_id=answer.device_id,
            version=answer.version,
            artifact=PredictorArtifact.from_dict(answer.artifact),
        )

    def compiled(self, space: SearchSpace | str) -> CompiledSpace:
        """The (layer, candidate) arrays of ``space``, compiled on first use."""
        resolved = get_space(space) if isinstance(space, str) else space
        found = self._compiled.get(resolved.name)
        if found is None:
            found = self._compiled[resolved.name] = compile_space(
                self.artifact, resolved, self.version
            )
        return found

    def predict(
        self, space: SearchSpace | str, architectures: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(latency_ms, uncertainty_ms) per architecture; raises naming a bad index."""
        compiled = self.compiled(space)
        archs = np.asarray(architectures, dtype=np.int64)
        if archs.ndim == 1:
            archs = archs.reshape(1, -1)
        compiled.check(archs)
        return compiled.predict(archs)
