"""``hwlat validate``: measure fresh networks end to end, then have the service score the
predictor on them. The figures are computed by the service (POST /v1/devices/{id}/validations);
this side only queues the measurements and waits for them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from latency_api import HwlatClient, JobFailed
from latency_api.schemas.enums import DeviceMetric, JobStatus
from latency_api.schemas.jobs import JobIn, JobOut, JobTiming, split_payloads
from latency_api.schemas.validations import ValidationIn, ValidationOut
from models import SearchSpace
from predictor.metrics import Metric

# Networks per job. A job's passes visit all of its networks in turn, so the bigger the job,
# the further apart in time one network's passes lie. These hosts change speed by ~10% for tens
# of seconds at a time; a job short enough to sit inside one such shift is biased as a whole,
# and its passes agree with each other while being wrong (seen here with 25 networks a job:
# one job ran 9% slow from start to end, and 19 of 200 validation networks were >10% off).
# 250 networks of ~10 ms make a pass of about a minute; a lost lease costs one job.
JOB_CHUNK = 250


def queue_networks(
    client: HwlatClient,
    device_id: int,
    space: SearchSpace,
    archs: Sequence[Sequence[int]],
    timing: JobTiming,
    metrics: Sequence[DeviceMetric] = (),
) -> list[int]:
    """Jobs measuring ``archs`` end to end on the device (and ``metrics`` beside latency);
    their ids."""
    payloads = split_payloads(
        space=space.name, architectures=archs, chunk=JOB_CHUNK, metrics=metrics
    )
    return [
        client.create_job(JobIn(device_id=device_id, payload=p, timing=timing)).id for p in payloads
    ]


def wait_for_jobs(client: HwlatClient, job_ids: list[int], timeout_s: float) -> list[JobOut]:
    """The jobs once done; :class:`JobFailed` naming a failed one."""
    jobs = client.wait_for_jobs(job_ids, timeout_s)
    failed = [j for j in jobs if j.status == JobStatus.failed]
    if failed:
        raise JobFailed(
            f"{len(failed)} measuring job(s) failed, e.g. job {failed[0].id}: {failed[0].error}"
        )
    return jobs


def validate(
    client: HwlatClient,
    device_id: int,
    space: SearchSpace,
    *,
    n: int,
    seed: int,
    timing: JobTiming,
    run_agent: Callable[[], None] | None = None,
    timeout_s: float = 3600.0,
) -> ValidationOut:
    """Measure ``n`` fresh random architectures; the service's validation report on them."""
    started = time.monotonic()
    version = client.get_predictor(device_id).version  # fails early without a predictor
    archs = [[int(c) for c in a] for a in space.sample(n, seed)]
    job_ids = queue_networks(client, device_id, space, archs, timing)
    if run_agent is not None:
        run_agent()
    wait_for_jobs(client, job_ids, timeout_s)
    details: dict[str, Any] = {
        "seed": seed,
        "timing": timing.model_dump(mode="json", exclude_none=True),
        "measuring_seconds": time.monotonic() - started,
    }
    return client.validate(
        device_id,
        ValidationIn(
            space=space.name,
            predictor_version=version,
            architectures=list({tuple(a): a for a in archs}.values()),
            details=details,
        ),
    )


def format_report(report: ValidationOut) -> str:
    """A table people can read: the predictor, then every baseline on the same networks."""
    header = f"{'predictor':<28}{'±5%':>8}{'±10%':>8}{'MAPE%':>8}{'RMSE ms':>9}{'τ':>7}"
    lines = [header, "-" * len(header)]
    rows = [(f"hwlat v{report.predictor_version}", report.metrics)]
    rows += list(report.baselines.items())
    for name, m in rows:
        tau = m[Metric.KENDALL_TAU]
        lines.append(
            f"{name:<28}{100 * m[Metric.WITHIN_5PCT]:>7.1f}%{100 * m[Metric.WITHIN_10PCT]:>7.1f}%"
            f"{m[Metric.MAPE]:>8.2f}{m[Metric.RMSE_MS]:>9.3f}"
            f"{'-' if tau is None else f'{tau:.3f}':>7}"
        )
    return "\n".join(lines)
