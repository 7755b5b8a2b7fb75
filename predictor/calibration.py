"""The calibration ``latency = a · Σ + b``, its fixed parts and its uncertainty, written once.

A calibration maps a network's layer sum to its end-to-end latency. When ``fixed_in_sum`` is
true the space's fixed parts (stem, head) join the sum: ``a · (Σ + fixed_ms) + b``; when false
(an imported table with a constant) ``b`` already stands for them: ``a · Σ + b``.

Pure Python, no NumPy import: the client (``latency_api``, which must load without NumPy)
computes with it as the service does. Only arithmetic is used, so every function takes a float
or, elementwise, a NumPy array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# A float, or an array of them (one value per network); the answer has the same type.
Values = TypeVar("Values", float, "npt.NDArray[np.float64]")


class Linear(Protocol):
    """``a``, ``b`` and where the fixed parts are: the artifact's ``Calibration`` and the
    wire's ``TableCalibration`` both are one."""

    @property
    def a(self) -> float: ...

    @property
    def b(self) -> float: ...

    @property
    def fixed_in_sum(self) -> bool: ...


class Fitted(Linear, Protocol):
    """A calibration fitted on measured networks, with its relative residual (RMS)."""

    @property
    def residual_rms_rel(self) -> float: ...


def fixed_part(calibration: Linear, fixed: float | None) -> float:
    """``fixed`` (the fixed parts' latency or variance) where the sum holds it, else 0: with
    ``fixed_in_sum`` false, ``b`` stands for the fixed parts and they must not count twice."""
    return fixed if calibration.fixed_in_sum and fixed is not None else 0.0


def calibrated_ms(calibration: Linear, layer_sum: Values, fixed_ms: float | None = None) -> Values:
    """The calibrated latency of networks whose layers sum to ``layer_sum``.

    ``fixed_ms`` is the fixed parts' latency when ``layer_sum`` leaves them out (a table of
    searchable layers); leave it out when the sum already holds every layer of the network.
    """
    return calibration.a * (layer_sum + fixed_part(calibration, fixed_ms)) + calibration.b


def calibrated_offset_ms(calibration: Linear, fixed_ms: float | None = None) -> float:
    """What the calibration adds to ``a · Σ``: ``a · fixed_ms + b``, or ``b``."""
    return calibrated_ms(calibration, 0.0, fixed_ms)


def calibrated_uncertainty_ms(
    calibration: Fitted, latency: Values, layer_var: Values, fixed_var: float | None = None
) -> Values:
    """One standard deviation of a calibrated latency, in ms.

    The layers' variances (ms², summed like their latencies) scale by ``a²``; the calibration's
    own relative residual adds in quadrature.
    """
    variance = calibration.a**2 * (layer_var + fixed_part(calibration, fixed_var))
    spread = variance + (latency * calibration.residual_rms_rel) ** 2
    root: Values = spread**0.5
    return root
