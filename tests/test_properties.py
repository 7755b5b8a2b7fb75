"""Hypothesis properties: benchmark_model's output parser only ever returns consistent
statistics or raises its own error; the robust aggregate; predict = a·Σ+b on random
architectures, and the flat gather equal to the two-index gather it replaced."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from device_agents.benchmark_output import BenchmarkOutputError, parse_benchmark_output
from latency_service.measurements.aggregate import robust_aggregate
from models import get_space
from predictor.artifact import Calibration, LayerEntry, PredictorArtifact
from predictor.compiled import compile_space

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)

# -- the benchmark_model output parser ---------------------------------------------------------

times_us = st.one_of(
    st.floats(min_value=-10.0, max_value=1e7),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
    st.integers(min_value=-5, max_value=10**7),
)


def _number(value: float | int) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@st.composite
def statistics_lines(draw: st.DrawFn) -> str:
    """A statistics line as some build prints it, with values that may well be inconsistent."""
    fields = {
        "count": draw(st.integers(min_value=-1, max_value=500)),
        "first": draw(times_us),
        "curr": draw(times_us),
        "min": draw(times_us),
        "max": draw(times_us),
        "avg": draw(times_us),
        "std": draw(times_us),
    }
    if draw(st.booleans()):
        fields |= {"p5": draw(times_us), "median": draw(times_us), "p95": draw(times_us)}
    names = draw(st.permutations(list(fields)))
    keep = draw(st.integers(min_value=1, max_value=len(names)))
    return " ".join(f"{n}={_number(fields[n])}" for n in names[:keep])


@st.composite
def benchmark_outputs(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "INFO: "]))
    runs = draw(st.integers(min_value=1, max_value=200))
    lines = [
        "Running benchmark for at least 1 iterations and at least 0.5 seconds",
        f"count=1 curr={draw(st.integers(1, 10**6))}",
        f"Running benchmark for at least {runs} iterations and at least 1 seconds",
        draw(statistics_lines()),
    ]
    if draw(st.booleans()):
        lines.append(
            f"Inference timings in us: Init: {draw(times_us)}, First inference: "
            f"{draw(times_us)}, Warmup (avg): {draw(times_us)}, Inference (avg): "
            f"{draw(times_us)}"
        )
    lines += draw(st.lists(st.text(max_size=40), max_size=3))
    text = "\n".join(prefix + line for line in draw(st.permutations(lines)))
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    return text if draw(st.booleans()) else text[:cut]


def _assert_consistent(text: str) -> None:
    try:
        parsed = parse_benchmark_output(text)
        stats = parsed.statistics()
    except BenchmarkOutputError:
        return  # its own error, with a message: the only way it may fail
    values = [stats.median_ms, stats.mean_ms, stats.min_ms, stats.max_ms]
    assert all(math.isfinite(v) and v > 0 for v in values), stats
    assert math.isfinite(stats.std_ms)
    assert stats.std_ms >= 0
    assert stats.count >= 1
    assert stats.min_ms <= stats.median_ms <= stats.max_ms, stats
    assert stats.min_ms <= stats.mean_ms <= stats.max_ms, stats


@SETTINGS
@given(benchmark_outputs())
def test_the_parser_returns_consistent_statistics_or_its_own_error(text: str) -> None:
    _assert_consistent(text)


@SETTINGS
@given(st.text(max_size=400))
def test_the_parser_survives_any_text(text: str) -> None:
    _assert_consistent(text)


# -- the robust aggregate of a layer's history ---------------------------------------------------

histories = st.lists(
    st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=60,
)


@SETTINGS
@given(histories)
def test_the_aggregate_is_a_median_of_inliers_within_the_history(values: list[float]) -> None:
    median, mad, outliers = robust_aggregate(values)
    assert min(values) <= median <= max(values)
    assert mad >= 0
    assert len(set(outliers)) == len(outliers) < len(values)  # never all outliers
    assert all(0 <= i < len(values) for i in outliers)
    inliers = [v for i, v in enumerate(values) if i not in outliers]
    assert median == pytest.approx(float(np.median(inliers)), rel=1e-12)


@SETTINGS
@given(histories, st.randoms(use_true_random=False))
def test_the_aggregate_ignores_order(values: list[float], rng: object) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    median, mad, outliers = robust_aggregate(values)
    again = robust_aggregate(shuffled)
    assert again[0] == pytest.approx(median, rel=1e-12)
    assert again[1] == pytest.approx(mad, rel=1e-12)
    assert len(again[2]) == len(outliers)


@SETTINGS
@given(histories, st.floats(min_value=0.01, max_value=100))
def test_the_aggregate_scales_with_its_unit(values: list[float], scale: float) -> None:
    median, _, outliers = robust_aggregate(values)
    scaled = robust_aggregate([v * scale for v in values])
    assert scaled[0] == pytest.approx(median * scale, rel=1e-9)
    # Flags can move only for values sitting on the threshold after rounding.
    assume(len(scaled[2]) == len(outliers))
    assert scaled[2] == outliers


# -- predict = a·Σ + b ---------------------------------------------------------------------------

TINY = get_space("tiny-64")
KEYS = [str(k) for k in TINY.variants()]


@st.composite
def predictors(draw: st.DrawFn) -> PredictorArtifact:
    ms = st.floats(min_value=1e-3, max_value=100, allow_nan=False)
    layers = {k: LayerEntry(draw(ms), n=3, spread_pct=draw(st.floats(0, 20))) for k in KEYS}
    calibration = Calibration(
        a=draw(st.floats(min_value=0.5, max_value=2.0)),
        b=draw(st.floats(min_value=-1.0, max_value=5.0)),
        residual_rms_rel=draw(st.floats(min_value=0, max_value=0.1)),
    )
    return PredictorArtifact(layers=layers, calibration={TINY.name: calibration})


architectures = st.lists(
    st.tuples(*(st.integers(0, n - 1) for n in TINY.candidate_counts)), min_size=1, max_size=50
)


@SETTINGS
@given(predictors(), architectures)
def test_predict_is_a_times_the_sum_of_the_layers_plus_b(
    artifact: PredictorArtifact, archs: list[tuple[int, ...]]
) -> None:
    compiled = compile_space(artifact, TINY, version=1)
    latency, uncertainty = compiled.predict(np.asarray(archs, dtype=np.int64))
    cal = artifact.calibration[TINY.name]
    for arch, got, sd in zip(archs, latency, uncertainty, strict=True):
        layers = [k for k in TINY.network(list(arch)) if k.op.value != "skip"]
        total = sum(artifact.layers[str(k)].ms for k in layers)
        assert got == pytest.approx(cal.a * total + cal.b, rel=1e-9, abs=1e-12)
        assert sd >= 0


@SETTINGS
@given(predictors(), architectures)
def test_the_flat_gather_equals_the_two_index_gather(
    artifact: PredictorArtifact, archs: list[tuple[int, ...]]
) -> None:
    # Equal up to the order of the additions (the row sums are a BLAS product).
    compiled = compile_space(artifact, TINY, version=1)
    rows = np.asarray(archs, dtype=np.int64)
    positions = np.arange(TINY.num_layers)
    cal = compiled.calibration
    two_index = cal.a * (compiled.table_ms[positions, rows].sum(axis=1) + compiled.fixed_ms) + cal.b
    variance = compiled.var[positions, rows].sum(axis=1) + compiled.fixed_var
    latency, uncertainty = compiled.predict(rows)
    np.testing.assert_allclose(latency, two_index, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        uncertainty,
        np.sqrt(cal.a**2 * variance + (two_index * cal.residual_rms_rel) ** 2),
        rtol=1e-12,
        atol=1e-12,
    )
    assert np.array_equal(compiled.estimated_positions(rows), compiled.estimated[positions, rows])
