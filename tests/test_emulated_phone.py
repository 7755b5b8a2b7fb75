"""The emulated phone itself: benchmark_model's arithmetic and output, and its shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_agents.benchmark_output import parse_benchmark_output
from models.export import export_layer
from tests.emulated_phone.benchmark import Stat, cpp_double, run_benchmark
from tests.emulated_phone.shell import Output, run
from tests.emulated_phone.state import PhoneDir


@pytest.fixture(scope="module")
def model() -> Path:
    return export_layer("mbconv_hw16_i16_o16_k3_e3_s1", "tflite")


def benchmark(model: Path, *flags: str, form: str = "info") -> Output:
    return run_benchmark(
        [f"--graph=/data/local/tmp/{model.name}", "--warmup_min_secs=0", *flags],
        lambda path: model if path.endswith(model.name) else None,
        form,
    )


def test_statistics_lines_follow_tflite_arithmetic() -> None:
    # Population std from an integer variance, percentiles at element n * p / 100 (upper median).
    assert Stat([3, 1, 2]).line(True) == (
        "count=3 first=3 curr=2 min=1 max=3 avg=2 std=0 p5=1 median=2 p95=3"
    )
    assert Stat([10, 20]).line(True) == (
        "count=2 first=10 curr=20 min=10 max=20 avg=15 std=5 p5=10 median=20 p95=20"
    )
    assert Stat([5]).line(True) == "count=1 curr=5 p5=5 median=5 p95=5"
    assert Stat([7, 7, 7]).line(False) == "count=3 curr=7(all same)"
    # Doubles print as C++ streams do: six significant digits.
    assert cpp_double(1240270.0) == "1.24027e+06"
    assert cpp_double(58147.4) == "58147.4"
    assert cpp_double(0.5) == "0.5"
    assert cpp_double(150.0) == "150"


def test_output_parses_to_the_printed_numbers(model: Path) -> None:
    output = benchmark(model, "--num_runs=7", "--warmup_runs=2", "--min_secs=0")
    assert output.code == 0
    text = "".join(output.stderr)
    assert all(line.startswith(("INFO: ", "\n")) for line in output.stderr)
    assert "Running benchmark for at least 7 iterations and at least 0 seconds" in text
    parsed = parse_benchmark_output(text)
    assert parsed.inference is not None
    assert parsed.warmup is not None
    assert parsed.inference.count == 7
    assert parsed.warmup.count == 2
    assert parsed.inference.median_us is not None
    assert parsed.inference.min_us <= parsed.inference.median_us <= parsed.inference.max_us
    assert parsed.first_inference_us == parsed.warmup.first_us


def test_legacy_form_prints_no_percentiles_on_stdout(model: Path) -> None:
    output = benchmark(model, "--num_runs=30", "--min_secs=0", form="legacy")
    assert output.code == 0
    assert output.stderr == []
    text = "".join(output.stdout)
    assert "median=" not in text
    assert "p95=" not in text
    stats = parse_benchmark_output(text).statistics()
    assert stats.count == 30
    # Runs of a tiny model can all round to the same microsecond; the tool then prints
    # "(all same)", which does give the median.
    assert stats.median_is_average == ("(all same)" not in text)


def test_min_secs_keeps_running_past_num_runs(model: Path) -> None:
    output = benchmark(model, "--num_runs=1", "--min_secs=0.05")
    parsed = parse_benchmark_output("".join(output.stderr))
    assert parsed.inference is not None
    assert parsed.inference.count > 1


def test_flag_mistakes_behave_like_the_real_tool(model: Path) -> None:
    warned = benchmark(model, "--num_runs=2", "--min_secs=0", "--use_xnpack=true")
    assert warned.code == 0
    assert "WARNING: Unconsumed cmdline flags: --use_xnpack=true\n" in warned.stderr
    bad = benchmark(model, "--num_runs=many")
    assert bad.code == 1
    assert "ERROR: Benchmarking failed.\n" in bad.stderr
    missing = run_benchmark(["--graph=/data/local/tmp/nope.tflite"], lambda _: None, "info")
    assert missing.code == 1
    assert "ERROR: Could not open '/data/local/tmp/nope.tflite'.\n" in missing.stderr


def test_shell_refuses_what_it_does_not_emulate(phone: PhoneDir) -> None:
    control = phone.control()
    assert run(phone, "getprop ro.product.model", control).stdout == ["Pixel 7\n"]
    assert run(phone, "ls /data/local/tmp; rm -rf /", control).code == 2
    assert run(
        phone, "cat /sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq", control
    ).stdout == ["2850000\n"]
    grep = run(
        phone, "grep -Hs . /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor", control
    )
    assert len(grep.stdout) == 8
    assert grep.code == 0
    assert run(phone, "rm -f /system/bin/sh", control).code == 1
