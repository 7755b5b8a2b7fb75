"""The dashboard in real headless Chromium against a real ``hwlat serve`` process.

Debian's chromium, driven by Playwright (its own browser download cannot work offline); the
project's test set-up installs it (scripts/ensure_test_tools.sh). Screenshots of every page go
to test-artifacts/dashboard/ (or $HWLAT_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from scripts import screenshots
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS
from tests.dashboard_data import Seeded, seed

pytestmark = [pytest.mark.browser, pytest.mark.heavy]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("HWLAT_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHART_TIMEOUT_MS = 20_000


@dataclass
class Lab:
    server: ServiceProcess
    admin: str
    reader: str
    seeded: Seeded


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("dashboard-lab")
    env = hwlat_env(root / "data")
    admin = create_token(env, "admin", name="browser-admin")
    reader = create_token(env, "read", name="browser-reader")
    with (
        ServiceProcess(env, root / "serve.log", workers=2) as server,
        server.client(admin) as client,
    ):
        yield Lab(server, admin, reader, seed(client))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_test_tools.sh (make test does)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Traffic:
    """Every request the page made, and every script error it raised."""

    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        outside = [u for u in self.urls if urlsplit(u).hostname not in LOOPBACK]
        assert outside == [], f"requests left loopback: {outside}"
        assert self.errors == [], f"script errors: {self.errors}"


@pytest.fixture
def context(chromium: Browser) -> Iterator[tuple[BrowserContext, Traffic]]:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    traffic = Traffic()
    context.on("request", lambda request: traffic.urls.append(request.url))

    def block_outside(route: Any) -> None:
        # Recorded above; refused here, so a CDN reference fails loudly instead of loading.
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", block_outside)
    yield context, traffic
    context.close()


def signed_in(context: BrowserContext, lab: Lab, path: str) -> Page:
    page = context.new_page()
    page.goto(f"{lab.server.url}{path}")
    expect(page).to_have_url(f"{lab.server.url}/dashboard/login?next={path}")
    page.fill("#token", lab.reader)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{lab.server.url}{path}")
    return page


def watch_errors(page: Page, traffic: Traffic) -> None:
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    # Content-Security-Policy violations and failed loads are reported on the console only.
    page.on(
        "console",
        lambda message: traffic.errors.append(message.text) if message.type == "error" else None,
    )


def wait_for_charts(page: Page) -> None:
    screenshots.wait_for_charts(page, CHART_TIMEOUT_MS)
    errors = page.eval_on_selector_all(
        ".chart[data-error]", "els => els.map(el => el.id + ': ' + el.dataset.error)"
    )
    assert errors == []


def traces(page: Page, chart_id: str) -> dict[str, int]:
    """Points per named trace of a drawn chart (non-empty heatmap cells for a heatmap)."""
    counts: dict[str, int] = page.evaluate(
        """id => {
            const out = {};
            for (const [i, t] of document.getElementById(id).data.entries()) {
                const name = t.name || `trace ${i}`;
                out[name] = t.type === 'heatmap'
                    ? t.z.flat().filter(v => v !== null).length
                    : t.x.length;
            }
            return out;
        }""",
        chart_id,
    )
    return counts


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_page_without_a_token_shows_the_login_form(
    lab: Lab, context: tuple[BrowserContext, Traffic]
) -> None:
    browser, traffic = context
    page = browser.new_page()
    watch_errors(page, traffic)
    page.goto(f"{lab.server.url}/dashboard/jobs")
    expect(page).to_have_url(f"{lab.server.url}/dashboard/login?next=/dashboard/jobs")
    expect(page.locator("#token")).to_be_visible()
    page.fill("#token", "hwlat_wrong")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("unknown or revoked token")
    # The refused sign-in is a 401 page, which Chromium also logs; nothing else is expected.
    assert [e for e in traffic.errors if "status of 401" not in e] == []
    traffic.errors.clear()
    screenshot(page, "login")
    page.fill("#token", lab.reader)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{lab.server.url}/dashboard/jobs")
    cookie = next(c for c in browser.cookies() if c["name"] == "hwlat_dashboard")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "scripts must not see the token"
    traffic.assert_clean()


def test_devices_page(lab: Lab, context: tuple[BrowserContext, Traffic]) -> None:
    browser, traffic = context
    page = signed_in(browser, lab, "/dashboard")
    watch_errors(page, traffic)
    wait_for_charts(page)
    assert traces(page, "measurements-chart") == {
        "layer measurements": 2,
        "network measurements": 2,
    }
    expect(page.locator("#devices-table tbody tr")).to_have_count(2)
    screenshot(page, "devices")
    traffic.assert_clean()


def test_runtime_heatmap_and_ratio(lab: Lab, context: tuple[BrowserContext, Traffic]) -> None:
    browser, traffic = context
    first, second = lab.seeded.devices
    page = signed_in(browser, lab, f"/dashboard/devices/{first}")
    watch_errors(page, traffic)
    page.wait_for_selector("body[data-ready]")
    page.select_option("select[name=space]", "tiny-64")
    expect(page).to_have_url(f"{lab.server.url}/dashboard/devices/{first}?space=tiny-64&compare=")
    page.wait_for_selector("body[data-ready]")
    page.select_option("select[name=compare]", str(second))
    expect(page).to_have_url(
        f"{lab.server.url}/dashboard/devices/{first}?space=tiny-64&compare={second}"
    )
    wait_for_charts(page)
    assert traces(page, "runtime-heatmap") == {"trace 0": lab.seeded.candidates}
    skips = page.evaluate(
        "[...document.getElementById('runtime-heatmap').data[0].x].filter(x => x === 'skip').length"
    )
    ratio_cells = traces(page, "ratio-heatmap")["trace 0"]
    assert skips == 1
    assert 0 < ratio_cells < lab.seeded.candidates  # skip has no ratio (0 ms over 0 ms)
    # Each metric beside latency per layer: one bar per layer measured for it.
    assert traces(page, "layer-memory") == {"peak memory mb": lab.seeded.layers}
    assert traces(page, "layer-energy") == {"energy mj": lab.seeded.layers}
    screenshot(page, "runtime-table")
    traffic.assert_clean()
    # A device that measured no memory says how to, instead of drawing empty axes.
    page.goto(f"{lab.server.url}/dashboard/devices/{second}")  # signed in already
    wait_for_charts(page)
    expect(page.locator("#layer-memory p.empty")).to_contain_text("--metric memory")
    traffic.assert_clean()


def test_accuracy_page(lab: Lab, context: tuple[BrowserContext, Traffic]) -> None:
    browser, traffic = context
    first = lab.seeded.devices[0]
    page = signed_in(browser, lab, f"/dashboard/devices/{first}/accuracy")
    watch_errors(page, traffic)
    wait_for_charts(page)
    points = traces(page, "pvm-chart")
    assert points["networks"] == lab.seeded.points
    assert {"±5%", "±10%", "predicted = measured"} <= set(points)
    for metric in ("within_5pct", "within_10pct", "mape", "kendall_tau"):
        versions = traces(page, f"versions-{metric}")
        assert versions == {
            "hwlat predictor": lab.seeded.versions,
            **{name: lab.seeded.versions for name in lab.seeded.baselines},
        }
    screenshot(page, "accuracy")
    traffic.assert_clean()


def test_layer_history_page(lab: Lab, context: tuple[BrowserContext, Traffic]) -> None:
    browser, traffic = context
    first = lab.seeded.devices[0]
    page = signed_in(browser, lab, f"/dashboard/devices/{first}/history")
    watch_errors(page, traffic)
    # Opens on the layer with outliers: the one measured while the phone ran hot.
    expect(page.locator("select[name=layer]")).to_have_value(lab.seeded.history_layer)
    wait_for_charts(page)
    counts = traces(page, "history-chart")
    assert counts["outliers (left out)"] == lab.seeded.history_outliers
    assert counts["measurements"] + counts["outliers (left out)"] == 1 + 6
    screenshot(page, "layer-history")
    traffic.assert_clean()


def test_the_job_view_follows_a_running_job(
    lab: Lab, context: tuple[BrowserContext, Traffic]
) -> None:
    browser, traffic = context
    device = lab.seeded.devices[1]
    with lab.server.client(lab.admin) as api:
        job = api.post(
            "/v1/jobs",
            json={
                "device_id": device,
                "payload": {"kind": "profile_layers", "layer_keys": ["conv_hw64_i3_o16_k3_s2"]},
            },
        ).json()
        page = signed_in(browser, lab, "/dashboard/jobs")
        watch_errors(page, traffic)
        wait_for_charts(page)
        status = page.locator(f'#jobs-table tr[data-id="{job["id"]}"] td[data-col="status"]')
        expect(status).to_have_text("queued")

        claimed = api.post("/v1/jobs/claim", json={"device_id": device, "agent": "rig-3/phone-2"})
        assert claimed.status_code == 200, claimed.text
        expect(status).to_have_text("leased", timeout=10_000)
        agent = page.locator('#agents-table tr[data-id="rig-3/phone-2"] td[data-col="leased"]')
        expect(agent).to_have_text("1", timeout=10_000)
        screenshot(page, "jobs")

        done = api.post(
            f"/v1/jobs/{job['id']}/complete",
            json={
                "lease_token": claimed.json()["lease_token"],
                "result": {"kind": "layers", "stored": 0},
            },
        )
        assert done.status_code == 200, done.text
        expect(status).to_have_text("done", timeout=10_000)
        page.wait_for_function(
            "() => document.getElementById('states-chart').data[0].y[2] === 1", timeout=10_000
        )
    traffic.assert_clean()
