"""Who may do what: every route of the OpenAPI schema with no token, a revoked token and each
scope, against one table; request size limits, CORS, throttled guessing, secrets at rest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hwlat.service_process import ServiceProcess, bearer, hwlat_env
from latency_api.schemas.enums import Scope
from latency_service.app import create_app
from latency_service.auth.service import create_token, revoke
from latency_service.auth.tables import ApiToken
from latency_service.auth.throttle import FailedAuthThrottle
from latency_service.deps import get_read_session, get_session
from latency_service.errors import TooManyAttempts
from latency_service.settings import Settings
from scripts import access_matrix
from tests.fixtures.factories import LAYER_KEYS, Headers, layer_measurement
from tests.fixtures.services import register_device

PUBLIC = None

# The one table: the least scope each route needs (PUBLIC: none). A route missing here fails
# test_every_route_is_in_the_table, so a new route cannot go unchecked.
NEEDS: dict[tuple[str, str], Scope | None] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/v1/tokens"): Scope.admin,
    ("POST", "/v1/tokens"): Scope.admin,
    ("DELETE", "/v1/tokens/{token_id}"): Scope.admin,
    ("POST", "/v1/devices"): Scope.ingest,
    ("GET", "/v1/devices"): Scope.read,
    ("GET", "/v1/devices/{device_id}"): Scope.read,
    ("POST", "/v1/spaces"): Scope.admin,
    ("GET", "/v1/spaces"): Scope.read,
    ("GET", "/v1/spaces/{name}"): Scope.read,
    ("POST", "/v1/measurements/layers"): Scope.ingest,
    ("GET", "/v1/measurements/layers"): Scope.read,
    ("POST", "/v1/measurements/networks"): Scope.ingest,
    ("GET", "/v1/measurements/networks"): Scope.read,
    ("GET", "/v1/measurements/layers/export"): Scope.read,
    ("GET", "/v1/measurements/networks/export"): Scope.read,
    ("GET", "/v1/devices/{device_id}/layers"): Scope.read,
    ("POST", "/v1/jobs"): Scope.admin,
    ("GET", "/v1/jobs"): Scope.read,
    ("POST", "/v1/jobs/claim"): Scope.ingest,
    ("GET", "/v1/jobs/{job_id}"): Scope.read,
    ("POST", "/v1/jobs/{job_id}/heartbeat"): Scope.ingest,
    ("POST", "/v1/jobs/{job_id}/complete"): Scope.ingest,
    ("POST", "/v1/jobs/{job_id}/fail"): Scope.ingest,
    ("POST", "/v1/devices/{device_id}/predictors"): Scope.admin,
    ("GET", "/v1/devices/{device_id}/predictors"): Scope.read,
    ("POST", "/v1/devices/{device_id}/plans"): Scope.admin,
    ("GET", "/v1/devices/{device_id}/predictors/{version}"): Scope.read,
    ("POST", "/v1/predict"): Scope.read,
    ("GET", "/v1/devices/{device_id}/runtime-table"): Scope.read,
    ("GET", "/v1/devices/{device_id}/channel-cost"): Scope.read,
    ("POST", "/v1/devices/{device_id}/runtime-table"): Scope.admin,
    ("POST", "/v1/devices/{device_id}/validations"): Scope.admin,
    ("GET", "/v1/devices/{device_id}/validations"): Scope.read,
    ("POST", "/v1/devices/{device_id}/validations/metrics"): Scope.read,
    ("GET", "/v1/devices/{device_id}/drift"): Scope.read,
    # Open to Prometheus unless HWLAT_METRICS_REQUIRE_TOKEN is set (tests/test_metrics.py).
    ("GET", "/metrics"): PUBLIC,
    # The data behind the dashboard's charts: the header or the sign-in cookie, read scope.
    ("GET", "/dashboard/data/devices"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/runtime-table"): Scope.read,
    ("GET", "/dashboard/data/compare"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/accuracy"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/validations/{validation_id}/points"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/layers"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/metrics"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/coverage"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/similar-devices"): Scope.read,
    ("GET", "/dashboard/data/devices/{device_id}/history"): Scope.read,
    ("GET", "/dashboard/data/jobs/states"): Scope.read,
    ("GET", "/dashboard/data/jobs/agents"): Scope.read,
    ("GET", "/dashboard/data/jobs"): Scope.read,
}
CALLERS = access_matrix.CALLERS


def expected_status(caller: str, needs: Scope | None) -> str:
    """'allowed', or the status that must refuse the caller."""
    if needs is PUBLIC:
        return "allowed"
    if caller in ("no token", "revoked"):
        return "401"
    return "allowed" if Scope(caller).includes(needs) else "403"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The walk fails authentication dozens of times from one address on purpose.
    return Settings(data_dir=tmp_path, max_batch_items=50, auth_failure_limit=10_000)


def operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]


def test_every_route_is_in_the_table(client: TestClient) -> None:
    in_schema = set(operations(client.get("/openapi.json").json()))
    assert in_schema == set(NEEDS), (
        f"routes without an entry: {sorted(in_schema - set(NEEDS))}; "
        f"entries without a route: {sorted(set(NEEDS) - in_schema)}"
    )


def test_every_route_answers_every_caller_as_the_table_says(
    client: TestClient, session: Session, tokens: dict[str, Headers]
) -> None:
    # The same walk scripts/access_matrix.py records for docs/reliability.md, here on both
    # databases and with the refusals' bodies checked too.
    doomed, secret = create_token(session, name="doomed", scope=Scope.admin)
    revoke(session, doomed.id)
    headers: dict[str, Headers] = {
        "no token": {},
        "revoked": bearer(secret),
        **{scope: tokens[scope] for scope in ("read", "ingest", "admin")},
    }
    answers = access_matrix.walk_with(client, headers)
    assert set(answers) == {f"{m} {p}" for m, p in NEEDS}
    for (method, path), needs in NEEDS.items():
        for caller in CALLERS:
            response = answers[f"{method} {path}"][caller]
            status = response.status_code
            want = expected_status(caller, needs)
            where = f"{method} {path} as {caller}: {status} {response.text[:200]}"
            if want == "allowed":
                assert status not in (401, 403, 429), where
                assert status < 500, where
            else:
                assert status == int(want), where
                body = response.json()
                assert set(body) == {"error", "detail"}, where
                assert body["error"] == ("not_authenticated" if want == "401" else "forbidden")


def test_the_recorded_walk_covers_every_route(tmp_path: Path) -> None:
    answers = access_matrix.walk(tmp_path)
    assert set(answers) == {f"{m} {p}" for m, p in NEEDS}
    assert all(set(row) == set(CALLERS) for row in answers.values())


def test_tokens_are_kept_as_sha256_hashes_only(
    session: Session, tokens: dict[str, Headers]
) -> None:
    secrets = [h["Authorization"].split()[1] for h in tokens.values()]
    rows = session.scalars(select(ApiToken)).all()
    assert {r.token_hash for r in rows} == {hashlib.sha256(s.encode()).hexdigest() for s in secrets}
    for row in rows:
        stored = " ".join(str(getattr(row, c.key)) for c in ApiToken.__table__.columns)
        assert not any(secret in stored for secret in secrets)


def test_no_token_reaches_the_service_log(tmp_path: Path) -> None:
    env = {**hwlat_env(tmp_path), "HWLAT_AUTH_FAILURE_LIMIT": "3"}
    from hwlat.service_process import create_token as create_live_token

    secret = create_live_token(env, "admin", name="logged?")
    guess = "hwlat_" + "x" * 43
    log = tmp_path / "serve.log"
    with ServiceProcess(env, log, log_level="debug") as server:
        with server.client(secret) as admin:
            device = register_device(admin)
            admin.post(
                "/v1/measurements/layers",
                json={"device_id": device, "measurements": [layer_measurement(LAYER_KEYS[0])]},
            )
            admin.get("/v1/devices/424242")  # a 404
            admin.post("/v1/predict", json={"device_id": device, "layers": [[]]})  # a 409
            admin.post("/v1/tokens", json={"name": "child", "scope": "read"})
        with server.client(guess) as guesser:
            statuses = [guesser.get("/v1/devices").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    text = log.read_text()
    assert "/v1/devices/424242" in text  # the log does hold the requests
    assert secret not in text
    assert guess not in text
    assert "hwlat_" not in text


# -- throttling failed authentication ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_refuses_an_address_until_its_failures_age_out() -> None:
    clock = Clock()
    throttle = FailedAuthThrottle(limit=3, window_s=60.0, clock=clock)
    for seconds in (0.0, 10.0, 20.0):
        clock.now = 1000.0 + seconds
        throttle.check("10.0.0.1")
        throttle.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts, match="3 failed authentications") as refused:
        throttle.check("10.0.0.1")
    assert refused.value.retry_after_s == pytest.approx(40.0)
    throttle.check("10.0.0.2")  # others are not affected
    clock.now += 40.0  # the first failure ages out: one more try
    throttle.check("10.0.0.1")
    throttle.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts):
        throttle.check("10.0.0.1")


def test_the_throttle_forgets_idle_addresses_when_full() -> None:
    clock = Clock()
    throttle = FailedAuthThrottle(limit=1, window_s=5.0, max_addresses=2, clock=clock)
    throttle.failed("a")
    throttle.failed("b")
    clock.now += 6.0
    throttle.failed("c")
    throttle.check("a")
    with pytest.raises(TooManyAttempts):
        throttle.check("c")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_repeated_failed_authentication_is_429_with_retry_after(
    tmp_path: Path, engines: dict[str, Engine], session: Session, backend: str
) -> None:
    app = create_app(
        Settings(data_dir=tmp_path, auth_failure_limit=2, auth_failure_window_s=30),
        engine=engines[backend],
    )

    def _session() -> Iterator[Session]:
        yield session

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_read_session] = _session
    good = bearer(create_token(session, name="good", scope=Scope.read)[1])
    with (
        TestClient(app, client=("10.1.1.1", 5000)) as guesser,
        TestClient(app, client=("10.1.1.2", 5000)) as neighbour,
    ):
        # No header is no guess: these do not count.
        assert {guesser.get("/v1/devices").status_code for _ in range(3)} == {401}
        wrong = bearer("hwlat_guess")
        assert {guesser.get("/v1/devices", headers=wrong).status_code for _ in range(2)} == {401}
        refused = guesser.get("/v1/devices", headers=good)  # even a good token, for now
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_attempts"
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        assert neighbour.get("/v1/devices", headers=good).status_code == 200


# -- body size, CORS, settings -------------------------------------------------------------------


@pytest.fixture
def small_bodies(tmp_path: Path, engines: dict[str, Engine]) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path, max_body_bytes=2048), engine=engines["sqlite"])
    with TestClient(app) as client:
        yield client


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(small_bodies: TestClient) -> None:
    # Not JSON and no token: a 413 rather than a 422 or 401 shows nothing was parsed first.
    response = small_bodies.post(
        "/v1/measurements/layers", content=b"{" * 5000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "2048 bytes" in response.json()["detail"]


def test_a_streamed_body_over_the_limit_is_413_too(small_bodies: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    # A route whose body FastAPI reads before it checks the token: refused while streaming.
    response = small_bodies.post(
        "/v1/measurements/layers", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "body_too_large"


def test_a_body_under_the_limit_is_served(small_bodies: TestClient) -> None:
    response = small_bodies.post("/v1/predict", json={"device_id": 1, "layers": [[]]})
    assert response.status_code == 401  # parsed, then refused for want of a token


PREFLIGHT = {"Origin": "https://lab.example", "Access-Control-Request-Method": "POST"}


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options("/v1/predict", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    plain = client.get("/healthz", headers={"Origin": "https://lab.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_cors_opens_to_configured_origins_only(
    tmp_path: Path, engines: dict[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWLAT_CORS_ORIGINS", "https://lab.example, https://nas.example")
    settings = Settings(data_dir=tmp_path)
    assert settings.cors_origins == ["https://lab.example", "https://nas.example"]
    with TestClient(create_app(settings, engine=engines["sqlite"])) as client:
        allowed = client.options("/v1/predict", headers=PREFLIGHT)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://lab.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = client.options(
            "/v1/predict", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_settings_come_from_the_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("HWLAT_DATABASE_URL=postgresql://u:secret@db/hwlat\n")
    (tmp_path / "hwlat_database_url").write_text("postgresql://u:secret@db/hwlat")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HWLAT_DATABASE_URL", raising=False)
    assert Settings().database_url == ""
    monkeypatch.setenv("HWLAT_DATABASE_URL", "postgresql://u:pw@db/hwlat")
    assert Settings().database_url == "postgresql+psycopg://u:pw@db/hwlat"


def test_the_client_sends_no_token_in_urls() -> None:
    from latency_api import HwlatClient

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    with HwlatClient("http://svc", "hwlat_secret", transport=httpx.MockTransport(handler)) as api:
        api.list_devices()
    assert "hwlat_secret" not in str(seen[0].url)
    assert seen[0].headers["Authorization"] == "Bearer hwlat_secret"
