"""Screenshots of every dashboard page, for the README (docs/img/dashboard-*.png).

    python -m scripts.screenshots --service http://127.0.0.1:8000 --token hwlat_...

Signs in through the login form with a read token, waits until every chart is drawn, and
saves one full-page PNG per page. Uses Debian's chromium (scripts/ensure_test_tools.sh).
Requests to any other host than the service are refused, so a page that reached for a CDN
would show it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, Route, sync_playwright

from models import DEFAULT_SPACE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHART_TIMEOUT_MS = 60_000


def _choose(service: str, token: str, device: int | None, compare: int | None) -> dict[str, Any]:
    """Device, comparison device and space to show: the most measured device by default."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=service, headers=headers, timeout=30) as client:
        response = client.get("/dashboard/data/devices")
        if response.status_code != 200:
            raise SystemExit(f"cannot list devices: {response.status_code} {response.text}")
        devices = response.json()
        if not devices:
            raise SystemExit("the service has no devices yet: run `hwlat demo` or an agent first")
        by_use = sorted(
            devices, key=lambda d: -(d["layer_measurements"] + d["network_measurements"])
        )
        chosen = device if device is not None else by_use[0]["id"]
        others = [d["id"] for d in by_use if d["id"] != chosen]
        accuracy = client.get(f"/dashboard/data/devices/{chosen}/accuracy").json()
    space = accuracy[-1]["space"] if accuracy else DEFAULT_SPACE
    return {
        "device": chosen,
        "compare": compare if compare is not None else (others[0] if others else None),
        "space": space,
    }


def wait_for_charts(page: Page, timeout_ms: float = CHART_TIMEOUT_MS) -> None:
    """Until every chart on the page has drawn (each sets ``data-rendered``)."""
    page.wait_for_function(
        # A function, not an expression: the pages' CSP forbids the eval an expression needs.
        "() => [...document.querySelectorAll('.chart[data-kind]')]"
        ".every(el => Number(el.dataset.rendered || 0) > 0)",
        timeout=timeout_ms,
    )


def take(service: str, token: str, out: Path, choice: dict[str, Any], width: int) -> list[Path]:
    device, space, compare = choice["device"], choice["space"], choice["compare"]
    runtime = f"/dashboard/devices/{device}?space={space}"
    if compare is not None:
        runtime += f"&compare={compare}"
    pages = {
        "devices": "/dashboard",
        "runtime-table": runtime,
        "accuracy": f"/dashboard/devices/{device}/accuracy",
        "layer-history": f"/dashboard/devices/{device}/history",
        "jobs": "/dashboard/jobs",
    }
    host = urlsplit(service).hostname
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": 900})

        def only_the_service(route: Route) -> None:
            if urlsplit(route.request.url).hostname == host:
                route.continue_()
            else:
                print(f"refused a request to {route.request.url}", file=sys.stderr)
                route.abort()

        context.route("**/*", only_the_service)
        page = context.new_page()
        page.goto(f"{service}/dashboard/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{service}/dashboard")
        for name, path in pages.items():
            page.goto(f"{service}{path}")
            wait_for_charts(page)
            target = out / f"dashboard-{name}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", required=True, help="Base URL of the service.")
    parser.add_argument("--token", required=True, help="A token with the read scope.")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="Output folder.")
    parser.add_argument("--device", type=int, help="Device to show (default: most measured).")
    parser.add_argument("--compare", type=int, help="Device to compare it with.")
    parser.add_argument("--width", type=int, default=1360, help="Viewport width in pixels.")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: run scripts/ensure_test_tools.sh")
    service = args.service.rstrip("/")
    choice = _choose(service, args.token, args.device, args.compare)
    for path in take(service, args.token, args.out, choice, args.width):
        print(path)


if __name__ == "__main__":
    main()
