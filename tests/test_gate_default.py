"""One default for the quality gate: on for every agent, in process or not, unless --no-gate."""

from __future__ import annotations

import inspect

import pytest
from typer.testing import CliRunner

from device_agents.quality import DEFAULT_GATE, gate_for
from hwlat.cli import app
from hwlat.pipeline import host_agent_runner


def test_the_in_process_agent_gates_unless_told_not_to() -> None:
    assert inspect.signature(host_agent_runner).parameters["gate"].default is DEFAULT_GATE
    assert gate_for(True) is DEFAULT_GATE
    assert gate_for(False) is None


@pytest.mark.parametrize(
    "command",
    [
        ["agent", "host"],
        ["agent", "android"],
        ["demo"],
        ["validate"],
        ["search", "spnas"],
        ["search", "pareto"],
    ],
)
def test_every_measuring_command_has_the_one_gate_flag(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--gate" in result.output
    assert "--no-gate" in result.output
