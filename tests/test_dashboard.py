"""The dashboard over HTTP: sign-in by cookie, pages, and the data behind every chart."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.predictors.tables import Predictor
from latency_service.validations.tables import Validation
from tests.dashboard_data import Seeded, seed
from tests.fixtures.factories import Headers


@pytest.fixture
def browser(client: TestClient) -> Iterator[TestClient]:
    """The same app as ``client``, reached as a browser on this machine would reach it."""
    with TestClient(client.app, base_url="http://127.0.0.1:8000", follow_redirects=False) as b:
        yield b


@pytest.fixture
def seeded(client: TestClient, tokens: dict[str, Headers]) -> Seeded:
    client.headers.update(tokens["admin"])
    try:
        return seed(client)
    finally:
        del client.headers["Authorization"]


def secret(tokens: dict[str, Headers], scope: str) -> str:
    return tokens[scope]["Authorization"].removeprefix("Bearer ")


def sign_in(browser: TestClient, token: str) -> None:
    response = browser.post("/dashboard/login", data={"token": token, "next": "/dashboard/jobs"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/jobs"


def test_a_page_without_a_cookie_goes_to_the_login_form(browser: TestClient) -> None:
    response = browser.get("/dashboard/jobs")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?next=/dashboard/jobs"
    form = browser.get(response.headers["location"])
    assert form.status_code == 200
    assert 'name="token"' in form.text
    assert 'value="/dashboard/jobs"' in form.text


def test_the_cookie_is_http_only_strict_and_secure_except_on_loopback(
    client: TestClient, browser: TestClient, tokens: dict[str, Headers]
) -> None:
    local = browser.post("/dashboard/login", data={"token": secret(tokens, "read")})
    cookie = local.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/dashboard" in cookie
    assert "secure" not in cookie
    with TestClient(client.app, base_url="http://lab.example.org", follow_redirects=False) as far:
        remote = far.post("/dashboard/login", data={"token": secret(tokens, "read")})
    assert "; secure" in remote.headers["set-cookie"].lower()


def test_a_bad_token_is_refused_with_the_reason(
    browser: TestClient, tokens: dict[str, Headers]
) -> None:
    response = browser.post("/dashboard/login", data={"token": "hwlat_not-a-token"})
    assert response.status_code == 401
    assert "unknown or revoked token" in response.text
    assert "set-cookie" not in response.headers
    assert browser.get("/dashboard").status_code == 303


def test_login_only_redirects_inside_the_dashboard(
    browser: TestClient, tokens: dict[str, Headers]
) -> None:
    for target in ("https://evil.example/", "//evil.example/dashboard", "/v1/devices"):
        response = browser.post(
            "/dashboard/login", data={"token": secret(tokens, "read"), "next": target}
        )
        assert response.headers["location"] == "/dashboard", target


def test_every_page_renders_for_a_signed_in_reader(
    browser: TestClient, tokens: dict[str, Headers], seeded: Seeded
) -> None:
    sign_in(browser, secret(tokens, "read"))
    first, second = seeded.devices
    pages = [
        "/dashboard",
        f"/dashboard/devices/{first}?space=tiny-64&compare={second}",
        f"/dashboard/devices/{first}/accuracy",
        f"/dashboard/devices/{first}/history",
        "/dashboard/jobs",
    ]
    for page in pages:
        response = browser.get(page)
        assert response.status_code == 200, (page, response.text[:300])
        assert "/dashboard/static/plotly.min.js" in response.text
        assert "cdn" not in response.text.lower()
    plotly = browser.get("/dashboard/static/plotly.min.js")
    assert plotly.status_code == 200
    assert len(plotly.content) > 1_000_000
    assert browser.get("/dashboard/static/dashboard.js").status_code == 200


def rows_of(browser: TestClient, url: str) -> list[dict[str, object]]:
    response = browser.get(url)
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()
    sep = "&" if "?" in url else "?"
    as_csv = browser.get(f"{url}{sep}format=csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(table) == len(rows)
    if rows:
        assert list(table[0]) == list(rows[0])
    return rows


def test_chart_data_is_the_domain_data_as_json_and_csv(
    browser: TestClient, tokens: dict[str, Headers], seeded: Seeded
) -> None:
    sign_in(browser, secret(tokens, "read"))
    first, second = seeded.devices

    devices = rows_of(browser, "/dashboard/data/devices")
    assert [d["id"] for d in devices] == [first, second]
    assert devices[0]["latest_predictor_version"] == seeded.versions
    assert devices[0]["layer_measurements"] == seeded.layers + 6
    assert devices[1]["network_measurements"] == 0

    table = rows_of(browser, f"/dashboard/data/devices/{first}/runtime-table?space=tiny-64")
    assert len(table) == seeded.candidates
    assert {r["predictor_version"] for r in table} == {seeded.versions}
    ratio = rows_of(browser, f"/dashboard/data/compare?space=tiny-64&a={second}&b={first}")
    measured = [r for r in ratio if r["ratio"] is not None]
    # Device 2 was seeded slower by a known factor per layer; skip (0 ms over 0 ms) has none.
    assert len(measured) == len(ratio) - sum(r["candidate_label"] == "skip" for r in ratio)
    for row in measured:
        # The layer measured again has a slightly different current value on device 1.
        tolerance = 0.02 if row["layer_key"] == seeded.history_layer else 1e-9
        assert row["ratio"] == pytest.approx(seeded.slowdown[str(row["layer_key"])], rel=tolerance)

    accuracy = rows_of(browser, f"/dashboard/data/devices/{first}/accuracy")
    assert len(accuracy) == 2 * (1 + len(seeded.baselines))
    assert {r["model"] for r in accuracy} == {"predictor", *seeded.baselines}
    points = rows_of(
        browser,
        f"/dashboard/data/devices/{first}/validations/{seeded.validations[0]}/points",
    )
    assert len(points) == seeded.points

    history = rows_of(
        browser, f"/dashboard/data/devices/{first}/history?layer={seeded.history_layer}"
    )
    assert len(history) == 1 + 6
    assert sum(bool(r["outlier"]) for r in history) == seeded.history_outliers

    coverage = {
        r["space"]: r for r in rows_of(browser, f"/dashboard/data/devices/{first}/coverage")
    }
    # Every tiny-64 variant was measured; the seed space shares none of its layers.
    assert coverage["tiny-64"]["measured"] == coverage["tiny-64"]["layer_variants"] == seeded.layers
    assert coverage["tiny-64"]["measured_pct"] == 100.0
    assert coverage["tiny-64"]["networks_measured"] > 0
    seed_space = coverage["spnas-mobilenetv2-224"]
    assert (seed_space["measured"], seed_space["estimated"]) == (0, seed_space["layer_variants"])

    metrics = {r["metric"]: r for r in rows_of(browser, f"/dashboard/data/devices/{first}/metrics")}
    assert metrics["memory"]["layers_measured"] == seeded.layers
    assert metrics["memory"]["method"] == "benchmark_model periodic monitoring"
    assert metrics["memory"]["model"].endswith("0 space calibration(s))")
    assert metrics["energy"]["model"].startswith(f"Σ layers: {seeded.layers} measured")
    assert metrics["latency"]["networks_measured"] > 0
    other_rows = rows_of(browser, f"/dashboard/data/devices/{second}/metrics")
    other = {r["metric"]: r for r in other_rows}
    assert (other["memory"]["layers_measured"], other["memory"]["model"]) == (0, "none")
    layers = {
        r["layer_key"]: r for r in rows_of(browser, f"/dashboard/data/devices/{first}/layers")
    }
    some_key = next(iter(seeded.slowdown))
    assert layers[some_key]["peak_memory_mb"] == pytest.approx(
        (4e6 + 2e6 * layers[some_key]["median_ms"]) / (1 << 20), rel=1e-6
    )

    states = rows_of(browser, "/dashboard/data/jobs/states")
    assert [r["status"] for r in states] == ["queued", "leased", "done", "failed"]


def test_data_answers_401_without_a_token_and_takes_a_bearer_header(
    browser: TestClient, tokens: dict[str, Headers]
) -> None:
    anonymous = browser.get("/dashboard/data/devices")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
    assert browser.get("/dashboard/data/devices", headers=tokens["read"]).status_code == 200


def test_a_report_without_points_shows_no_per_network_data(
    session: Session, browser: TestClient, tokens: dict[str, Headers], seeded: Seeded
) -> None:
    first = seeded.devices[0]
    # A report stored by a client before the service computed them: migrated with no points.
    predictor = session.scalars(select(Predictor).where(Predictor.device_id == first)).first()
    assert predictor is not None
    row = Validation(
        device_id=first,
        predictor_id=predictor.id,
        predictor_version=predictor.version,
        space="tiny-64",
        n=3,
        metrics={"n": 3, "mape": 2.0},
        baselines={},
        details={},
        points=[],
    )
    session.add(row)
    session.flush()
    old_style = {"id": row.id}
    sign_in(browser, secret(tokens, "read"))
    page = browser.get(f"/dashboard/devices/{first}/accuracy?validation={old_style['id']}")
    assert "no per-network data" in page.text
    points = browser.get(f"/dashboard/data/devices/{first}/validations/{old_style['id']}/points")
    assert points.json() == []
    other = browser.get(
        f"/dashboard/data/devices/{seeded.devices[1]}/validations/{old_style['id']}/points"
    )
    assert other.status_code == 404


def test_sign_out_forgets_the_cookie(browser: TestClient, tokens: dict[str, Headers]) -> None:
    sign_in(browser, secret(tokens, "read"))
    assert browser.get("/dashboard").status_code == 200
    response = browser.post("/dashboard/logout")
    assert response.status_code == 303
    assert browser.get("/dashboard").status_code == 303
