"""Dashboard pages (Jinja2), their data endpoints (JSON or CSV), sign-in and static files."""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from latency_api.schemas.enums import Scope
from latency_service import http_errors
from latency_service.auth.service import require
from latency_service.dashboard import service
from latency_service.dashboard.service import Row
from latency_service.dashboard.session import (
    COOKIE,
    PREFIX,
    DataUser,
    LoginRequired,
    PageUser,
    cookie_is_secure,
    login_url,
    safe_next,
)
from latency_service.deps import (
    IdFilter,
    IdPath,
    IdQuery,
    ReadSessionDep,
    SettingsDep,
    principal_for,
)
from latency_service.devices import service as devices
from latency_service.errors import DomainError, InvalidInput
from latency_service.predictors.endpoints import CacheDep
from latency_service.spaces import service as space_service
from latency_service.spaces import space_or_404
from models import DEFAULT_SPACE
from predictor.metrics import Metric

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# The plotly package's own copy of plotly.js: charts work on a lab network with no internet.
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
JOBS_REFRESH_MS = 2000
ACCURACY_CHARTS = (
    (Metric.WITHIN_5PCT, "share within ±5%"),
    (Metric.WITHIN_10PCT, "share within ±10%"),
    (Metric.MAPE, "MAPE (%)"),
    (Metric.KENDALL_TAU, "Kendall τ"),
)

Format = Annotated[Literal["json", "csv"], Query(description="json (rows) or csv")]

pages = APIRouter(prefix=PREFIX, include_in_schema=False)
data = APIRouter(prefix=f"{PREFIX}/data", tags=["dashboard"])


def table(rows: list[Row], fmt: str, name: str) -> Response:
    """The same rows as a JSON array or as CSV, so every chart's data can be downloaded."""
    if fmt == "json":
        return JSONResponse(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'inline; filename="{name}.csv"'},
    )


# Pages may load nothing from anywhere but this service; plotly sets inline styles and draws
# into data:/blob: images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"prefix": PREFIX, "auth_disabled": request.app.state.settings.auth_disabled, **context},
        status_code=status_code,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


# -- sign-in -----------------------------------------------------------------------------------


@pages.get("/login")
def login_form(request: Request, next: str | None = None, reason: str | None = None) -> Response:
    return render(request, "login.html", next=safe_next(next), error=reason)


@pages.post("/login")
def login(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = PREFIX,
) -> Response:
    token = token.strip()
    if not token:
        return render(request, "login.html", 422, next=safe_next(next), error="paste an API token")
    try:
        require(principal_for(request, session, settings, f"Bearer {token}"), Scope.read)
    except DomainError as error:
        return render(request, "login.html", 401, next=safe_next(next), error=error.detail)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request),
        path=PREFIX,
    )
    return response


@pages.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(
        COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=cookie_is_secure(request)
    )
    return response


# -- pages -------------------------------------------------------------------------------------


@pages.get("")
def devices_page(request: Request, session: ReadSessionDep, _: PageUser) -> Response:
    return render(request, "devices.html", devices=service.device_rows(session))


@pages.get("/devices/{device_id}")
def device_page(
    request: Request,
    device_id: IdPath,
    session: ReadSessionDep,
    _: PageUser,
    space: str = DEFAULT_SPACE,
    compare: str = "",
) -> Response:
    device = devices.get(session, device_id)
    # The page's own form sends compare= for "(none)".
    if compare and not compare.isdigit():
        raise InvalidInput(f"compare must be a device id, got {compare!r}")
    compare_id = int(compare) if compare else None
    if compare_id is not None:
        devices.get(session, compare_id)
    search_space = space_or_404(space)
    others = [d for d in devices.list_devices(session) if d.id != device_id]
    return render(
        request,
        "device.html",
        device=device,
        space=search_space.name,
        spaces=_space_names(session),
        coverage=service.coverage_rows(session, device_id),
        metrics=service.metric_rows(session, device_id),
        similar=service.similar_device_rows(session, device_id),
        others=others,
        compare=compare_id,
    )


@pages.get("/devices/{device_id}/accuracy")
def accuracy_page(
    request: Request,
    device_id: IdPath,
    session: ReadSessionDep,
    user: PageUser,
    validation: IdFilter = None,
) -> Response:
    device = devices.get(session, device_id)
    reports = service.validations(session, device_id)
    chosen = next((r for r in reports if r.id == validation), reports[-1] if reports else None)
    return render(
        request,
        "accuracy.html",
        device=device,
        reports=reports,
        chosen=chosen,
        has_points=bool(chosen is not None and chosen.points),
        metrics=ACCURACY_CHARTS,
    )


@pages.get("/devices/{device_id}/history")
def history_page(
    request: Request,
    device_id: IdPath,
    session: ReadSessionDep,
    _: PageUser,
    layer: str | None = None,
) -> Response:
    device = devices.get(session, device_id)
    layers = service.layer_rows(session, device_id)
    keys = [row["layer_key"] for row in layers]
    if layer is not None and layer not in keys:
        raise InvalidInput(f"device {device_id} has no measurement of layer {layer!r}")
    # The layer with most outliers first: that is where drift and heat show.
    worst = max(layers, key=lambda r: (r["n_outliers"], r["n"]), default=None)
    chosen = layer or (worst["layer_key"] if worst else None)
    return render(request, "history.html", device=device, layers=layers, layer=chosen)


@pages.get("/jobs")
def jobs_page(request: Request, session: ReadSessionDep, _: PageUser) -> Response:
    return render(
        request,
        "jobs.html",
        states=service.state_rows(session),
        agents=service.agent_rows(session),
        jobs=service.job_rows(session),
        refresh_ms=JOBS_REFRESH_MS,
    )


def _space_names(session: Session) -> list[str]:
    return space_service.names(session)


# -- data --------------------------------------------------------------------------------------


@data.get("/devices")
def devices_data(session: ReadSessionDep, _: DataUser, format: Format = "json") -> Response:
    """Devices with their settings, measurement counts and newest predictor version."""
    return table(service.device_rows(session), format, "devices")


@data.get("/devices/{device_id}/runtime-table")
def runtime_data(
    device_id: IdPath,
    session: ReadSessionDep,
    cache: CacheDep,
    _: DataUser,
    space: str = DEFAULT_SPACE,
    format: Format = "json",
) -> Response:
    """The newest predictor's searchable layer x candidate latencies."""
    rows = service.runtime_rows(session, cache, device_id, space_or_404(space))
    return table(rows, format, f"runtime-table-device-{device_id}")


@data.get("/compare")
def compare_data(
    session: ReadSessionDep,
    cache: CacheDep,
    _: DataUser,
    a: IdQuery,
    b: IdQuery,
    space: str = DEFAULT_SPACE,
    format: Format = "json",
) -> Response:
    """Device a's latency over device b's, per layer x candidate."""
    rows = service.compare_rows(session, cache, space_or_404(space), a, b)
    return table(rows, format, f"ratio-device-{a}-over-{b}")


@data.get("/devices/{device_id}/accuracy")
def accuracy_data(
    device_id: IdPath, session: ReadSessionDep, _: DataUser, format: Format = "json"
) -> Response:
    """Accuracy of every validated predictor version, beside its baselines."""
    return table(service.accuracy_rows(session, device_id), format, "accuracy")


@data.get("/devices/{device_id}/validations/{validation_id}/points")
def points_data(
    device_id: IdPath,
    validation_id: IdPath,
    session: ReadSessionDep,
    _: DataUser,
    format: Format = "json",
) -> Response:
    """Predicted against measured, per network of one validation report."""
    rows = service.points_rows(session, device_id, validation_id)
    return table(rows, format, f"validation-{validation_id}-points")


@data.get("/devices/{device_id}/coverage")
def coverage_data(
    device_id: IdPath, session: ReadSessionDep, _: DataUser, format: Format = "json"
) -> Response:
    """Per search space, how many of its layer variants and networks the device measured."""
    return table(service.coverage_rows(session, device_id), format, f"coverage-device-{device_id}")


@data.get("/devices/{device_id}/similar-devices")
def similar_devices_data(
    device_id: IdPath, session: ReadSessionDep, _: DataUser, format: Format = "json"
) -> Response:
    """The known devices the newest predictor leaned on, and how much (its prior's weights)."""
    rows = service.similar_device_rows(session, device_id)
    return table(rows, format, f"similar-devices-{device_id}")


@data.get("/devices/{device_id}/layers")
def layers_data(
    device_id: IdPath, session: ReadSessionDep, _: DataUser, format: Format = "json"
) -> Response:
    """Current value of every measured layer, with how many measurements were outliers."""
    return table(service.layer_rows(session, device_id), format, f"layers-device-{device_id}")


@data.get("/devices/{device_id}/metrics")
def metrics_data(
    device_id: IdPath, session: ReadSessionDep, _: DataUser, format: Format = "json"
) -> Response:
    """Latency, peak memory and energy: what is measured, how, and the newest model of each."""
    return table(service.metric_rows(session, device_id), format, f"metrics-device-{device_id}")


@data.get("/devices/{device_id}/history")
def history_data(
    device_id: IdPath, layer: str, session: ReadSessionDep, _: DataUser, format: Format = "json"
) -> Response:
    """Every measurement of one layer, with the outliers the current value left out."""
    return table(service.history_rows(session, device_id, layer), format, "layer-history")


@data.get("/jobs/states")
def job_states_data(session: ReadSessionDep, _: DataUser, format: Format = "json") -> Response:
    """Jobs per status (queued, leased, done, failed)."""
    return table(service.state_rows(session), format, "job-states")


@data.get("/jobs/agents")
def job_agents_data(session: ReadSessionDep, _: DataUser, format: Format = "json") -> Response:
    """Agents seen, with their jobs by status, retries and last activity."""
    return table(service.agent_rows(session), format, "job-agents")


@data.get("/jobs")
def jobs_data(session: ReadSessionDep, _: DataUser, format: Format = "json") -> Response:
    """The most recent jobs, newest first."""
    return table(service.job_rows(session), format, "jobs")


# -- wiring ------------------------------------------------------------------------------------


def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript")


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _to_login(_: Request, exc: LoginRequired) -> RedirectResponse:
        url = login_url(exc.next_path)
        if exc.reason:
            url += "&" + urlencode({"reason": exc.reason})
        return RedirectResponse(url, status_code=303)

    # Registered before the static mount, which would otherwise answer 404 for it.
    app.add_api_route(
        f"{PREFIX}/static/plotly.min.js", plotly_js, methods=["GET"], include_in_schema=False
    )
    app.include_router(pages)
    # Every chart's rows, as JSON (the default) or CSV (format=csv).
    table_formats: dict[int | str, dict[str, Any]] = {
        200: {"content": {"application/json": {}, "text/csv": {}}}
    }
    app.include_router(data, responses={**http_errors.ERROR_RESPONSES, **table_formats})
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
