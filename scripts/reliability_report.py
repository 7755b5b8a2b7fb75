"""Write docs/reliability.md from the JSON the reliability runs wrote (the last step of make bench).

    .venv/bin/python -m scripts.reliability_report

Quotes only what a run wrote, with its command and date: docs/bench/faults.json
(scripts/bench_faults.py), fuzz.json (scripts/fuzz_api.py), access.json
(scripts/access_matrix.py), predict.json (scripts/bench_predict.py), ingest.json and
concurrent_ingest.json (scripts/bench_ingest.py), and for comparison the figures from before
this work in docs/bench/previous/. A section whose JSON is missing says how to make it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.bench_report import BENCH, load_json, load_result, run_line

PAGE = Path("docs/reliability.md")


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "none"


def faults_section(data: dict[str, Any]) -> list[str]:
    r = data["results"]
    lines = [run_line(data), ""]
    ingest = r.get("service_sigkilled_mid_ingest")
    if ingest:
        kills = "; ".join(
            f"{k['stored_at_kill']} stored at the kill, back after {k['down_s']} s"
            for k in ingest["kills"]
        )
        lines += [
            f"**Service SIGKILLed mid-ingest.** {ingest['agents']} agents (HwlatClient, default "
            f"retries, one Idempotency-Key per batch) each upload {ingest['batches_per_agent']} "
            f"batches of {ingest['batch_size']} to `hwlat serve --workers "
            f"{ingest['service_workers']}` on PostgreSQL; the whole service is SIGKILLed "
            f"{len(ingest['kills'])} times and restarted on the same port ({kills}).",
            "",
            "| sent | stored | missing | stored twice | never sent | agents that gave up |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {ingest['sent']} | {ingest['stored']} | {ingest['missing']} | "
            f"{ingest['duplicated']} | {ingest['unexpected']} | {len(ingest['agent_failures'])} |",
            "",
            f"What the agents' HTTP transports saw: {_outcomes(ingest['client_outcomes'])} "
            "(ReadError / RemoteProtocolError: a request in flight when the service died; "
            "ConnectError: the service was down).",
            "",
        ]
    agent = r.get("agent_sigkilled_mid_job")
    if agent:
        lines += [
            f"**Agent SIGKILLed mid-job.** A real `hwlat agent host` on `tiny-64` (lease "
            f"{agent['lease_s']} s) is SIGKILLed while it holds the job (state at the kill: "
            f"{agent['status_at_kill']}); once the lease ran out a second agent process took "
            f"the job over: final state **{agent['final_status']}** after {agent['attempts']} "
            f"attempts, {agent['rows']} rows for {agent['layers_in_job']} layers "
            f"({agent['duplicated']} stored twice, {agent['missing']} missing).",
            "",
        ]
    killed = r.get("postgres_connections_killed")
    if killed:
        lines += [
            f"**PostgreSQL connections killed.** For {killed['seconds']} s every backend of the "
            "service's own database was terminated (`pg_terminate_backend` ... `WHERE datname "
            f"= <its database>`, {killed['backends_terminated']} in all) while reads, writes "
            "and health checks ran. Answers: "
            f"{_outcomes(killed['outcomes'])}. After the kills stopped: "
            f"{_outcomes(killed['after_kills_stopped'])}. Error bodies not in the contract's "
            f"shape: {len(killed['bad_error_shapes'])}. Service restarted: "
            f"{'no' if killed['service_pid_unchanged'] else 'yes'}.",
            "",
        ]
    restarted = r.get("postgres_restarted")
    if restarted:
        lines += [
            f"**PostgreSQL restarted.** A private cluster (initdb in a temporary directory, "
            f"its own port) is stopped for {restarted['outage_s']} s and started again under "
            f"the same traffic. During the outage: {_outcomes(restarted['during_outage'])}. "
            f"Every kind of request answered 200/201 again "
            f"{restarted['recovered_within_s']} s after the database was back; afterwards: "
            f"{_outcomes(restarted['after_restart'])}. Error bodies not in the contract's shape: "
            f"{len(restarted['bad_error_shapes'])}. Service restarted: "
            f"{'no' if restarted['service_pid_unchanged'] else 'yes'}.",
            "",
        ]
    lines += [
        "**Lost answers** (the request reached the service, the answer was dropped) for claim, "
        "heartbeat, upload (one batch of several), complete and fail: "
        "`tests/test_client.py::test_lost_answers_to_safe_calls_are_repeated_and_change_nothing` "
        "and `::test_a_lost_answer_to_fail_or_to_one_batch_of_many_leaves_nothing_stuck_or_twice`"
        ". **Phones that vanish or hang** mid-job (bounded adb waits, the job given back and "
        "retried): `tests/test_android_faults.py`. An agent that uploaded and died before "
        "completing: `tests/test_jobs.py::"
        "test_work_of_a_lease_that_never_completed_is_stored_once`.",
    ]
    return lines


def fuzz_section(data: dict[str, Any]) -> list[str]:
    found = data.get("failure_kinds") or {}
    lines = [
        f"Command: `{data['run']}`, run {data['date']} (schemathesis "
        f"{data.get('schemathesis_version', '?')}): `{data['command']}`.",
        "",
        "| operations in the schema | tested | cases | cases failing | unique failures | "
        "server tracebacks | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {data['operations_in_schema']} | {data['operations']} | {data['cases']} | "
        f"{data.get('cases_with_failures', '?')} | {data['failures']} | "
        f"{data['server_tracebacks']} | {data['seconds']} |",
    ]
    if found:
        lines += ["", "Failures found:"]
        lines += [f"- {kind}: {', '.join(ops)}" for kind, ops in sorted(found.items())]
    lines += [
        "",
        "Bugs Schemathesis found while this was built, each fixed with a test: ids, counts and "
        "candidate indices beyond 32 bits reached the database and came back as 500s "
        "(`tests/test_predictors_api.py::test_numbers_beyond_the_stores_range_are_422_not_500`); "
        "a fit whose measured networks need layers that were neither measured nor estimable "
        "was a 500 (`::test_fit_with_networks_whose_layers_are_unknown_is_409_not_500`); a NUL "
        "character in an agent's name was a 500 on PostgreSQL "
        "(`tests/test_jobs.py::test_text_the_database_cannot_store_is_422_not_500`); 400 "
        "answers for unreadable bodies and the error shape of 422s were not in the schema. "
        "Hypothesis properties: `tests/test_properties.py` (the benchmark_model parser, the "
        "robust aggregate, predict = a·Σ+b and the flat gather).",
    ]
    return lines


def access_section(data: dict[str, Any]) -> list[str]:
    callers = data["callers"]
    lines = [
        run_line(data),
        "",
        "Every route of the OpenAPI schema, called with ids that exist nowhere (an allowed "
        "call ends in a 404 or 422 and changes nothing). The expected table is "
        "`NEEDS` in `tests/test_access.py`.",
        "",
        "| route | " + " | ".join(callers) + " |",
        "|---|" + "---:|" * len(callers),
    ]
    for route, row in data["answers"].items():
        lines.append(f"| `{route}` | " + " | ".join(str(row[c]) for c in callers) + " |")
    lines += [
        "",
        "Also checked (`tests/test_access.py`): tokens stored as SHA-256 hashes only; no token "
        "in the service log at debug level after a run with a token in use and five guesses; "
        "failed authentication throttled per client address (429 with Retry-After, "
        "`HWLAT_AUTH_FAILURE_LIMIT` per `HWLAT_AUTH_FAILURE_WINDOW_S`); bodies over "
        "`HWLAT_MAX_BODY_BYTES` refused with a 413 before they are read; CORS headers only for "
        "`HWLAT_CORS_ORIGINS`; settings read from the environment only.",
    ]
    return lines


def _previous(name: str) -> dict[str, Any] | None:
    return load_json(BENCH / "previous" / f"{name}.json")


def load_section(data: dict[str, Any]) -> list[str]:
    ip, http = data["in_process"], data["http"]
    load = http["load"]
    before = _previous("predict")
    rows = [
        ("in process, architectures/s", f"{ip['archs_per_s']:,.0f}", "≥ 10,000,000"),
        ("10,000 architectures in one request, ms", f"{http['batch_10000_ms_median']:.1f}", "≤ 20"),
        (
            "single-architecture load, requests/s (first sent to last answered)",
            f"{load['achieved_rps']:,.0f}",
            "≥ 1,000",
        ),
        ("errors", f"{sum(load['errors'].values())}", "0"),
        ("p50 / p99, ms", f"{load['p50_ms']:.2f} / {load['p99_ms']:.2f}", "p99 ≤ 5"),
    ]
    if len(http.get("load_runs") or []) > 1:
        p99s = ", ".join(f"{r['p99_ms']:.1f}" for r in http["load_runs"])
        rows.append(("p99 of each load run (median run above), ms", p99s, ""))
    old: list[str] = ["" for _ in rows]
    if before:
        bl = before["http"]["load"]
        old = [
            f"{before['in_process']['archs_per_s']:,.0f}",
            f"{before['http']['batch_10000_ms_median']:.1f}",
            f"{bl['achieved_rps']:,.0f}",
            f"{sum(bl['errors'].values())}",
            f"{bl['p50_ms']:.2f} / {bl['p99_ms']:.2f}",
        ]
    lines = [
        run_line(data),
        "",
        f"`hwlat serve --workers {load['service_workers']}` on "
        f"{http.get('backend', 'sqlite')}; the load generator (`scripts/loadgen.py`) is its "
        "own process and sends single-architecture requests open-loop at a fixed rate, "
        "latency counted from each request's scheduled time. The previous figures "
        f"({before['date'] if before else 'none kept'}; 1 worker, SQLite, 500 requests/s) are "
        "from `docs/bench/previous/predict.json`.",
        "",
        "| measure | previous | this run | aim |",
        "|---|---:|---:|---:|",
    ]
    old += [""] * (len(rows) - len(old))  # rows the previous run did not have
    for (what, now, aim), then in zip(rows, old, strict=True):
        lines.append(f"| {what} | {then} | {now} | {aim} |")
    loads = [f"{x:.1f}" for x in data["environment"]["load_average_1_5_15min"]]
    lines += [
        "",
        f"Machine: {data['environment']['cpus']} CPUs; load average (1, 5, 15 min) at the start "
        f"of this run {' / '.join(loads)}"
        + (
            ", of the previous run "
            + " / ".join(f"{x:.1f}" for x in before["environment"]["load_average_1_5_15min"])
            if before
            else ""
        )
        + " (2 or more means the service shared its cores with other work).",
    ]
    return lines


def ingest_section(data: dict[str, Any]) -> list[str]:
    lines = [
        run_line(data),
        "",
        "| backend | agents | workers | batch | sent | stored | lost | measurements/s | "
        "median / p99 request, ms | aim |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["results"]:
        lines.append(
            f"| {r['backend']} | {r['agents']} | {r['service_workers']} | {r['batch_size']} | "
            f"{r['sent']} | {r['stored']} | {r['lost']} | {r['measurements_per_s']:,.0f} | "
            f"{r['median_request_ms']} / {r['p99_request_ms']} | ≥ 20,000/s, 0 lost |"
        )
    before = _previous("ingest")
    single = load_result("ingest")
    if before or single:
        lines += ["", "One client, sequential batches (`python -m scripts.bench_ingest`):", ""]
        lines += [
            "| backend | batch | previous measurements/s | this run |",
            "|---|---:|---:|---:|",
        ]
        now = {(r["backend"], r["batch_size"]): r for r in (single or {}).get("results", [])}
        then = {(r["backend"], r["batch_size"]): r for r in (before or {}).get("results", [])}
        for key in sorted(set(now) | set(then)):
            old = f"{then[key]['median_measurements_per_s']:,.0f}" if key in then else ""
            new = f"{now[key]['median_measurements_per_s']:,.0f}" if key in now else ""
            lines.append(f"| {key[0]} | {key[1]} | {old} | {new} |")
    return lines


SECTIONS: list[tuple[str, str, str, Callable[[dict[str, Any]], list[str]]]] = [
    ("Faults", "faults", "python -m scripts.bench_faults", faults_section),
    ("Fuzzing the API", "fuzz", "python -m scripts.fuzz_api", fuzz_section),
    ("Who may do what", "access", "python -m scripts.access_matrix", access_section),
    ("Predict under load", "predict", "python -m scripts.bench_predict", load_section),
    (
        "Ingest from many agents",
        "concurrent_ingest",
        "python -m scripts.bench_ingest --agents 20 --workers 2 --backends postgresql "
        "--batch-sizes 1000",
        ingest_section,
    ),
]


def main() -> None:
    lines = [
        "# Reliability",
        "",
        "Written by `make bench` (`scripts/reliability_report.py`) from the JSON files in "
        "`docs/bench/`; every figure comes from the run named above it. The same scenarios run "
        "in `make test` with fewer examples and assertions instead of figures "
        "(`tests/test_faults.py`, `tests/test_fuzz_api.py`, `tests/test_access.py`). Speed "
        "figures come from a 2-core VM that shares its host: the load average at the start of "
        "each run is given with it, and tail latencies move with the host's bursts.",
    ]
    for title, name, command, render in SECTIONS:
        lines += ["", f"## {title}", ""]
        data = load_result(name)
        lines += render(data) if data else [f"Not run yet: `{command}`."]
    PAGE.write_text("\n".join(lines) + "\n")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
