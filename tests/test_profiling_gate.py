"""The profiling loop under the quality gate: which windows it takes again, and when it stops.

The device here is scripted (each window's evidence is set in advance): what is under test is
the loop's bookkeeping, which no real machine can be made to reproduce on demand. The real
paths (LiteRT on the host, the emulated phone) are in test_host_agent and test_android_agent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from device_agents.profiling import Measured, Result, profile, remeasured
from device_agents.quality import Evidence, Gate
from device_agents.runners import Timing
from device_agents.statistics import TimingStatistics
from latency_api.schemas.devices import DeviceIn
from models import LayerKey, SearchSpace, parse

SMALL = parse("mbconv_hw14_i16_o16_k3_e3_s1")
BIG = parse("mbconv_hw112_i16_o24_k5_e6_s2")


class ScriptedDevice:
    """Answers every window with its key's next probe ratio (1.0 once the script runs out)."""

    tool_version = "scripted"

    def __init__(self, probe_ratios: dict[LayerKey, list[float]]) -> None:
        self.script = {k: list(v) for k, v in probe_ratios.items()}
        self.windows: dict[LayerKey, int] = defaultdict(int)

    def describe(self) -> DeviceIn:
        raise NotImplementedError("not registered in these tests")

    def measure_layer(self, key: LayerKey, timing: Timing) -> Measured:
        self.windows[key] += 1
        ratios = self.script.get(key) or [1.0]
        ratio = ratios.pop(0) if len(ratios) > 1 else ratios[0]
        stats = TimingStatistics.from_samples_ms([0.1 * ratio] * timing.num_runs)
        return Measured(statistics=stats, evidence=Evidence(probe_ratio=ratio))

    def measure_network(self, space: SearchSpace, arch: Sequence[int], timing: Timing) -> Measured:
        raise NotImplementedError("layers only here")


def run(device: ScriptedDevice, gate: Gate | None, repeats: int = 3) -> list[Result]:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    return profile(
        device,
        layers=[SMALL, BIG],
        timing=Timing(warmup_runs=0, num_runs=5, repeats=repeats),
        gate=gate,
        show_progress=False,
        sleep=sleep,
        clock=lambda: clock[0],
    )


def test_a_model_whose_every_window_was_rejected_is_measured_until_one_is_accepted() -> None:
    # BIG's first five windows (three passes and both retries) show a slowed probe.
    device = ScriptedDevice({BIG: [1.3, 1.3, 1.3, 1.3, 1.3, 1.0]})
    results = run(device, Gate(probe_limit=1.12))
    big = [r for r in results if r.target == BIG]
    assert [r.verdict.accepted for r in big] == [False] * 5 + [True]
    assert device.windows[SMALL] == 3
    assert remeasured(results) == 3  # two retries and one rescue, all counted


def test_the_rescue_is_bounded_and_leaves_the_model_unmeasured_when_it_never_settles() -> None:
    device = ScriptedDevice({BIG: [1.3]})  # always slowed
    results = run(device, Gate(probe_limit=1.12, rescue_attempts=2, max_retry_share=5))
    big = [r for r in results if r.target == BIG]
    assert len(big) == 3 + 2 + 2  # passes, retries, rescues
    assert not any(r.verdict.accepted for r in big)
    assert all(r.verdict.reason and "speed probe 1.30x" in r.verdict.reason for r in big)
    # The job's share bounds it too: half of its 6 windows, 3 extra in all.
    device = ScriptedDevice({BIG: [1.3]})
    results = run(device, Gate(probe_limit=1.12, max_retry_share=0.5))
    assert remeasured(results) == 3


def test_without_a_gate_nothing_is_measured_twice() -> None:
    device = ScriptedDevice({BIG: [1.3]})
    results = run(device, None)
    assert len(results) == 6
    assert remeasured(results) == 0
