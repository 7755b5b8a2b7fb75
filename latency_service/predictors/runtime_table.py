"""A compiled predictor as the wire's runtime table: what the API answers and the dashboard
charts, built in one place."""

from __future__ import annotations

from latency_api.schemas.predictors import (
    RuntimeTable,
    TableCalibration,
    TableCandidate,
    TableLayer,
)
from predictor.compiled import CompiledSpace


def runtime_table(compiled: CompiledSpace) -> RuntimeTable:
    """Searchable layer x candidate latencies of ``compiled``'s space, with its calibration."""
    space, cal = compiled.space, compiled.calibration
    layers = [
        TableLayer(
            position=position,
            candidates=[
                TableCandidate(
                    index=c,
                    candidate=slot.candidates[c].label,
                    layer_key=str(slot.key(c)),
                    ms=float(compiled.table_ms[position, c]),
                    estimated=bool(compiled.estimated[position, c]),
                )
                for c in range(len(slot.candidates))
            ],
        )
        for position, slot in enumerate(space.layers)
    ]
    return RuntimeTable(
        space=space.name,
        predictor_version=compiled.version,
        layers=layers,
        # Only a sum that includes the fixed parts needs them; otherwise b stands for them.
        fixed_ms=compiled.fixed_ms if cal.fixed_in_sum else None,
        calibration=TableCalibration(a=cal.a, b=cal.b, fixed_in_sum=cal.fixed_in_sum),
    )
