"""Faults injected into real processes (scenarios in scripts/fault_scenarios.py, which the
reliability report runs too): nothing lost, nothing stored twice, 503s during an outage and
recovery without a restart.

Phones that vanish or hang mid-job are covered by tests/test_android_faults.py, and answers lost
on the way back by tests/test_client.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import fault_scenarios

pytestmark = pytest.mark.heavy


def test_service_sigkilled_mid_ingest_stores_every_measurement_exactly_once(
    tmp_path: Path,
) -> None:
    result = fault_scenarios.kill_service_mid_ingest(tmp_path, agents=4, batches=12, kills=2)
    assert result["agent_failures"] == []
    assert len(result["kills"]) == 2
    # The kills hit uploads in flight or found the service down: the clients had to retry.
    lost = {k: n for k, n in result["client_outcomes"].items() if not k.isdigit()}
    assert sum(lost.values()) > 0, result["client_outcomes"]
    assert result["sent"] == 4 * 12 * 50
    assert (result["stored"], result["missing"], result["duplicated"], result["unexpected"]) == (
        result["sent"],
        0,
        0,
        0,
    )


def test_agent_sigkilled_mid_job_is_taken_over_after_its_lease(tmp_path: Path) -> None:
    # 12 layers: at least 3 s of measuring, twice the time to the kill.
    result = fault_scenarios.kill_agent_mid_job(tmp_path, lease_s=3.0, n_layers=12)
    assert result["status_at_kill"] == "leased"
    assert result["second_agent_exit"] == 0, result["second_agent_output"]
    assert (result["final_status"], result["attempts"]) == ("done", 2)
    assert result["rows"] == result["distinct_layers"] == result["layers_in_job"] == 12
    assert result["result_stored"] == 12
    assert (result["duplicated"], result["missing"]) == (0, 0)


def test_postgres_connections_killed_answer_503_then_recover(tmp_path: Path) -> None:
    result = fault_scenarios.postgres_connections_killed(tmp_path, seconds=3.0)
    assert result["backends_terminated"] > 10
    assert result["bad_error_shapes"] == []
    # Only 503s: no 500, no dropped connection.
    assert {o.split()[-1] for o in result["outcomes"]} <= {"200", "201", "503"}, result
    after = result["after_kills_stopped"]
    assert after
    assert {o.split()[-1] for o in after} <= {"200", "201"}, after
    assert result["service_pid_unchanged"]


def test_postgres_restarted_answers_503_then_recovers_without_a_service_restart(
    tmp_path: Path,
) -> None:
    result = fault_scenarios.postgres_restarted(tmp_path, outage_s=2.0)
    during = result["during_outage"]
    assert during
    assert {o.split()[-1] for o in during} == {"503"}, during
    assert {o.split()[0] for o in during} == {"read", "write", "health"}
    assert result["bad_error_shapes"] == []
    assert result["recovered_within_s"] is not None
    assert result["recovered_within_s"] < 10
    after = result["after_restart"]
    assert after
    assert {o.split()[-1] for o in after} <= {"200", "201"}, after
    assert result["service_pid_unchanged"]
