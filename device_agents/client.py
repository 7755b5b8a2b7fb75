"""HTTP client of the latency service, as the agents and the CLI use it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

RETRY_STATUS = frozenset({502, 503, 504})


class ServiceError(RuntimeError):
    """The service answered with an error; ``code`` and ``detail`` are its own words."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class JobLease:
    id: int
    lease_token: str

    def as_ref(self) -> dict[str, Any]:
        return {"id": self.id, "lease_token": self.lease_token}


class ServiceClient:
    """Thin, typed-enough wrapper over the REST API with bounded retries.

    Uploads carry an Idempotency-Key chosen once per batch, so a retry after a lost answer
    cannot store a batch twice.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._retries = retries
        self._backoff_s = backoff_s

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
            else:
                if response.status_code not in RETRY_STATUS or attempt == self._retries:
                    break
            time.sleep(self._backoff_s * 2**attempt)
        if response.status_code >= 400:
            try:
                body = response.json()
                code, detail = str(body["error"]), str(body["detail"])
            except (ValueError, KeyError, TypeError):
                code, detail = "http_error", response.text[:500]
            raise ServiceError(response.status_code, code, detail)
        return response

    # -- devices ----------------------------------------------------------------------------

    def register_device(self, spec: dict[str, Any]) -> int:
        return int(self.request("POST", "/v1/devices", json=spec).json()["id"])

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.request("GET", "/healthz").json()
        return body

    # -- measurements -----------------------------------------------------------------------

    def upload(
        self,
        kind: str,
        device_id: int,
        measurements: Sequence[dict[str, Any]],
        *,
        job: JobLease | None = None,
        batch_size: int = 500,
    ) -> list[int]:
        """Upload ``layers`` or ``networks`` measurements in batches; the stored ids."""
        if kind not in ("layers", "networks"):
            raise ValueError(f"kind must be 'layers' or 'networks', not {kind!r}")
        ids: list[int] = []
        for start in range(0, len(measurements), batch_size):
            body: dict[str, Any] = {
                "device_id": device_id,
                "measurements": list(measurements[start : start + batch_size]),
            }
            if job is not None:
                body["job"] = job.as_ref()
            key = f"{uuid.uuid4()}"
            response = self.request(
                "POST", f"/v1/measurements/{kind}", json=body, headers={"Idempotency-Key": key}
            )
            ids += response.json()["ids"]
        return ids

    def iter_measurements(self, kind: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every stored ``layers`` or ``networks`` measurement matching ``filters``, page by
        page along the service's cursor."""
        params: dict[str, Any] = {**filters, "limit": 1000}
        while True:
            page = self.request("GET", f"/v1/measurements/{kind}", params=params).json()
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self.request("POST", "/v1/jobs", json=spec).json()
        return body

    def list_jobs(self, **params: Any) -> list[dict[str, Any]]:
        query = {k: v for k, v in params.items() if v is not None}
        items: list[dict[str, Any]] = self.request("GET", "/v1/jobs", params=query).json()["items"]
        return items

    def get_job(self, job_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.request("GET", f"/v1/jobs/{job_id}").json()
        return body

    def claim(self, device_id: int, agent: str, lease_s: float) -> dict[str, Any] | None:
        response = self.request(
            "POST",
            "/v1/jobs/claim",
            json={"device_id": device_id, "agent": agent, "lease_seconds": lease_s},
        )
        if response.status_code == 204:
            return None
        body: dict[str, Any] = response.json()
        return body

    def heartbeat(self, lease: JobLease, lease_s: float) -> None:
        self.request(
            "POST",
            f"/v1/jobs/{lease.id}/heartbeat",
            json={"lease_token": lease.lease_token, "lease_seconds": lease_s},
        )

    def complete(self, lease: JobLease, result: dict[str, Any]) -> None:
        self.request(
            "POST",
            f"/v1/jobs/{lease.id}/complete",
            json={"lease_token": lease.lease_token, "result": result},
        )

    def fail(self, lease: JobLease, reason: str, retry: bool = True) -> None:
        self.request(
            "POST",
            f"/v1/jobs/{lease.id}/fail",
            json={"lease_token": lease.lease_token, "reason": reason[:10_000], "retry": retry},
        )
