"""The lambda controller: dual ascent on ``log R - log target``, with a damping term.

The search minimises ``CE + lambda * log R``. Read as a Lagrangian for the constraint
``log R <= log target``, lambda is the multiplier, and gradient ascent on it,
``lambda_I <- clip(lambda_I + step * e, 0, lambda_max)`` with ``e = log R - log target``,
raises the runtime pressure while the architecture held is slower than the target and relaxes
it once it is faster. The thresholds integrate their gradients too, so pure ascent (an
integrator driving an integrator) swings around the target by whole stages; the proportional
term of ``lambda = max(0, lambda_I + proportional * e)`` damps that, as in a PI controller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.errors import UserInputError


@dataclass
class LambdaController:
    target_ms: float
    step: float = 0.05
    proportional: float = 1.0
    lambda_max: float = 10.0
    integral: float = 0.0
    value: float = 0.0
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_ms) and self.target_ms > 0):
            raise UserInputError(f"target latency {self.target_ms} ms must be a positive number")
        if self.step <= 0 or self.lambda_max <= 0 or self.proportional < 0:
            raise ValueError(
                "the controller's step and lambda_max must be positive, proportional >= 0"
            )

    def update(self, runtime_ms: float) -> float:
        """One step from the latency of the architecture the search holds now; new lambda."""
        if not (math.isfinite(runtime_ms) and runtime_ms > 0):
            raise ValueError(f"runtime {runtime_ms} ms is not a positive latency")
        error = math.log(runtime_ms) - math.log(self.target_ms)
        self.integral = min(self.lambda_max, max(0.0, self.integral + self.step * error))
        self.value = min(self.lambda_max, max(0.0, self.integral + self.proportional * error))
        self.history.append(self.value)
        return self.value
