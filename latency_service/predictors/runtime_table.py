"""A compiled predictor as the wire's runtime table: what the API answers and the dashboard
charts, built in one place."""

from __future__ import annotations

import itertools

from latency_api.schemas.predictors import (
    RuntimeTable,
    TableCalibration,
    TableCandidate,
    TableLayer,
)
from predictor.compiled import CompiledSpace


def runtime_table(compiled: CompiledSpace) -> RuntimeTable:
    """Searchable layer x candidate latencies of ``compiled``'s space, with its calibration;
    an elastic space's layers list a latency per combination of their parents' choices."""
    space, cal = compiled.space, compiled.calibration
    if not space.fixed_shape:
        return _elastic(compiled)
    layers = [
        TableLayer(
            position=position,
            name=column.name,
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
        for position, (slot, column) in enumerate(zip(space.layers, compiled.columns, strict=True))
    ]
    return RuntimeTable(
        space=space.name,
        predictor_version=compiled.version,
        layers=layers,
        # Only a sum that includes the fixed parts needs them; otherwise b stands for them.
        fixed_ms=compiled.fixed_ms if cal.fixed_in_sum else None,
        calibration=TableCalibration(a=cal.a, b=cal.b, fixed_in_sum=cal.fixed_in_sum),
    )


def _elastic(compiled: CompiledSpace) -> RuntimeTable:
    space, cal = compiled.space, compiled.calibration
    decisions = space.decisions
    layers = []
    for j, column in enumerate(compiled.columns):
        axes = [decisions[p].choices for p in column.parents]
        offset = int(compiled.offsets[j])
        layers.append(
            TableLayer(
                position=j,
                name=column.name,
                parents=list(column.parents),
                candidates=[
                    TableCandidate(
                        index=i,
                        candidate="/".join(labels),
                        layer_key=str(key),
                        ms=float(compiled.flat_ms[offset + i]),
                        estimated=bool(compiled.flat_estimated[offset + i]),
                    )
                    for i, (key, labels) in enumerate(
                        zip(column.keys, itertools.product(*axes), strict=True)
                    )
                ],
            )
        )
    return RuntimeTable(
        space=space.name,
        predictor_version=compiled.version,
        layers=layers,
        fixed_ms=compiled.fixed_ms if cal.fixed_in_sum else None,
        calibration=TableCalibration(a=cal.a, b=cal.b, fixed_in_sum=cal.fixed_in_sum),
        decision_counts=list(space.candidate_counts),
    )
