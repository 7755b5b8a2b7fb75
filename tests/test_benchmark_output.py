"""The benchmark_model parser against the seven real forms, garbage and truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_agents.benchmark_output import (
    DELTA_METHODS,
    PEAK_METHOD,
    BenchmarkOutputError,
    parse_benchmark_output,
)

SAMPLES_PATH = Path(__file__).resolve().parent / "data" / "benchmark_model_outputs.txt"


def load_samples() -> dict[int, str]:
    """Form number -> its text, split on the '##### form N' separators."""
    forms: dict[int, list[str]] = {}
    current: int | None = None
    for line in SAMPLES_PATH.read_text().splitlines():
        if line.startswith("##### form"):
            current = int(line.split()[2].rstrip(":"))
            forms[current] = []
        elif current is not None:
            forms[current].append(line)
    return {n: "\n".join(lines) + "\n" for n, lines in forms.items()}


SAMPLES = load_samples()


def test_all_seven_forms_are_present() -> None:
    assert sorted(SAMPLES) == [1, 2, 3, 4, 5, 6, 7]


def test_form1_older_build_scientific_notation() -> None:
    out = parse_benchmark_output(SAMPLES[1])
    assert out.inference is not None
    assert out.warmup is not None
    assert out.inference.count == 50
    assert out.inference.avg_us == pytest.approx(2.95034e6)
    assert out.inference.min_us == 2727568
    assert out.inference.median_us is None
    assert out.warmup.count == 1
    assert out.warmup.avg_us == 3512391
    stats = out.statistics()
    assert stats.median_is_average
    assert stats.median_ms == pytest.approx(2950.34)
    assert stats.min_ms == pytest.approx(2727.568)
    assert out.init_us == 17187
    assert out.memory_overall_mb == pytest.approx(46.0859)


def test_form2_info_prefix_and_percentiles() -> None:
    out = parse_benchmark_output(SAMPLES[2])
    assert out.inference is not None
    assert out.inference.median_us == 1239807
    assert out.inference.p95_us == 1247415
    stats = out.statistics()
    assert not stats.median_is_average
    assert stats.median_ms == pytest.approx(1239.807)
    assert stats.std_ms == pytest.approx(2.565)
    assert out.memory_init_mb == pytest.approx(6.36328)


def test_form3_noisy_tail_keeps_median_apart_from_mean() -> None:
    stats = parse_benchmark_output(SAMPLES[3]).statistics()
    assert stats.count == 1000
    assert stats.median_ms == pytest.approx(51.891)
    assert stats.mean_ms == pytest.approx(63.7432)
    assert stats.max_ms == pytest.approx(686.105)


def test_form4_integer_averages_and_peak_memory() -> None:
    out = parse_benchmark_output(SAMPLES[4])
    assert out.warmup is None
    stats = out.statistics()
    assert stats.count == 50
    assert stats.mean_ms == pytest.approx(249.684)
    assert out.memory_overall_mb == pytest.approx(138.809)
    assert out.first_inference_us == 360262


def test_form5_logcat_summary_only_is_read_but_has_no_run_statistics() -> None:
    out = parse_benchmark_output(SAMPLES[5])
    assert out.inference is None
    assert out.inference_avg_us == 145528
    with pytest.raises(BenchmarkOutputError, match="only the averages"):
        out.statistics()


def test_form6_identical_runs() -> None:
    stats = parse_benchmark_output(SAMPLES[6]).statistics()
    assert stats.count == 50
    assert stats.min_ms == stats.max_ms == stats.median_ms == stats.mean_ms == 80.0
    assert stats.std_ms == 0.0


def test_logcat_with_timestamps() -> None:
    text = "\n".join(
        f"11-25 06:00:00.123  4242  4242 I tflite  : {line}"
        for line in SAMPLES[2].splitlines()
        if line
    )
    assert parse_benchmark_output(text).statistics().median_ms == pytest.approx(1239.807)


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "Segmentation fault\n", "error: device offline\n", "count=\n", "INFO: hello\n"],
)
def test_garbage_is_an_error_not_a_number(text: str) -> None:
    with pytest.raises(BenchmarkOutputError):
        parse_benchmark_output(text).statistics()


@pytest.mark.parametrize("form", [1, 2, 3])
def test_output_cut_after_the_timed_phase_header_is_an_error(form: int) -> None:
    text = SAMPLES[form]
    cut = (
        text[: text.rindex("Running benchmark for at least")]
        + "Running benchmark for at least 50 iterations\n"
    )
    with pytest.raises(BenchmarkOutputError, match="cut short"):
        parse_benchmark_output(cut)


@pytest.mark.parametrize("form", [1, 2, 4])
def test_output_cut_inside_the_statistics_line_is_an_error(form: int) -> None:
    text = SAMPLES[form]
    start = text.rindex("count=50")
    cut = text[: start + len("count=50 first=1249964 curr=12")]
    with pytest.raises(BenchmarkOutputError):
        parse_benchmark_output(cut)


def test_inconsistent_statistics_are_rejected() -> None:
    with pytest.raises(BenchmarkOutputError, match="outside"):
        parse_benchmark_output("count=50 first=10 curr=10 min=10 max=20 avg=30 std=1\n")
    with pytest.raises(BenchmarkOutputError, match="not a positive"):
        parse_benchmark_output("count=50 first=10 curr=10 min=0 max=20 avg=10 std=1\n")
    with pytest.raises(BenchmarkOutputError, match="disagrees"):
        parse_benchmark_output(
            "count=50 first=10 curr=10 min=10 max=20 avg=15 std=1\n"
            "Inference timings in us: Init: 1, First inference: 10, Warmup (avg): 10, "
            "Inference (avg): 99\n"
        )


def test_fewer_runs_than_asked_is_rejected() -> None:
    text = (
        "Running benchmark for at least 50 iterations and at least 1 seconds\n"
        "count=20 first=10 curr=10 min=10 max=20 avg=15 std=1\n"
    )
    with pytest.raises(BenchmarkOutputError, match="count=20"):
        parse_benchmark_output(text)


# -- memory: every form real builds print ------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("form", "overall_mb", "line"),
    [
        (1, 46.0859, "Memory footprint delta from the start of the tool"),
        (2, 109.832, "Memory footprint delta from the start of the tool"),
        (3, 55.4961, "Memory footprint delta from the start of the tool"),
        (4, 138.809, "Peak memory footprint"),
    ],
)
def test_without_polling_the_overall_footprint_delta_is_stored(
    form: int, overall_mb: float, line: str
) -> None:
    out = parse_benchmark_output(SAMPLES[form])
    assert out.peak_memory_mb is None
    assert out.memory_line == line
    peak_bytes, method = out.peak_memory()
    assert peak_bytes == round(overall_mb * MIB)
    assert method == DELTA_METHODS[line]
    assert ("older build" in method) == (form == 4)


def test_form7_periodic_monitoring_peak_wins_over_the_delta() -> None:
    out = parse_benchmark_output(SAMPLES[7])
    assert out.memory_overall_mb == pytest.approx(31.9492)
    assert out.peak_memory_mb == pytest.approx(38.6328)
    assert out.peak_memory() == (round(38.6328 * MIB), PEAK_METHOD)
    # The resident-set lines after it ("- VmRSS : 38 MB") are not statistics or memory lines.
    assert out.statistics().count == 48
    assert out.inferences == 24 + 48


def test_memory_methods_fit_the_stored_column() -> None:
    assert all(len(m) <= 200 for m in (PEAK_METHOD, *DELTA_METHODS.values()))


def test_no_memory_line_and_broken_peak_lines_are_errors() -> None:
    with pytest.raises(BenchmarkOutputError, match="no memory line"):
        parse_benchmark_output(SAMPLES[6]).peak_memory()
    head = SAMPLES[7][: SAMPLES[7].index("INFO: Overall peak")]
    with pytest.raises(BenchmarkOutputError, match="truncated peak memory"):
        parse_benchmark_output(head + "INFO: Overall peak memory footprint (MB) via peri\n")
    with pytest.raises(BenchmarkOutputError, match="a peak memory of -1"):
        parse_benchmark_output(
            head + "INFO: Overall peak memory footprint (MB) via periodic monitoring: -1\n"
        )
