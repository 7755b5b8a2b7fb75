from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import Field, ValidationError
from sqlalchemy.orm import Session

from latency_api.schemas.common import MAX_ID
from latency_api.schemas.predictors import (
    FitIn,
    PredictIn,
    PredictorArtifactOut,
    PredictorList,
    PredictorOut,
    PredictOut,
    TableFormat,
)
from latency_service.deps import AdminToken, IdPath, ReadSessionDep, ReadToken, SessionDep
from latency_service.errors import Conflict, InvalidInput
from latency_service.metrics.registry import PREDICT_BATCH
from latency_service.predictions import service as predictions
from latency_service.predictors import service
from latency_service.predictors.predict import predict
from latency_service.predictors.runtime_table import runtime_table as runtime_table_of
from latency_service.predictors.service import CompiledCache, PredictorIncomplete
from latency_service.spaces import space_or_404
from models import DEFAULT_SPACE, SearchSpace
from models.ofa_keys import network_of_space
from predictor import formats
from predictor.channel_cost import ChannelCost, NoLayerModel, NotAChannelSpace
from predictor.channel_export import channel_cost as channel_cost_of
from predictor.compiled import MissingLayers, lookup

router = APIRouter(tags=["predictors"])


async def get_cache(request: Request) -> CompiledCache:
    cache: CompiledCache = request.app.state.predictor_cache
    return cache


CacheDep = Annotated[CompiledCache, Depends(get_cache)]


@router.post("/v1/devices/{device_id}/predictors", response_model=PredictorOut, status_code=201)
def fit_predictor(
    device_id: IdPath,
    session: SessionDep,
    cache: CacheDep,
    _: AdminToken,
    spec: Annotated[FitIn | None, Body()] = None,
) -> PredictorOut:
    """Fit a new predictor version from the device's current measurements (optionally holding
    some measured networks out of the calibration)."""
    predictor = service.fit_for_device(session, device_id, spec)
    cache.forget(device_id)
    predictions.record(session, predictor)
    return PredictorOut.model_validate(predictor)


@router.get("/v1/devices/{device_id}/predictors", response_model=PredictorList)
def list_predictors(device_id: IdPath, session: ReadSessionDep, _: ReadToken) -> PredictorList:
    """The device's predictor versions, oldest first, with their fit metrics."""
    versions = service.list_versions(session, device_id)
    return PredictorList(items=[PredictorOut.model_validate(p) for p in versions])


@router.get(
    "/v1/devices/{device_id}/predictors/{version}",
    response_model=PredictorArtifactOut,
    responses={409: {"description": "`latest` asked of a device without a predictor"}},
)
def get_predictor(
    device_id: IdPath,
    version: Annotated[
        Annotated[int, Field(ge=1, le=MAX_ID)] | Literal["latest"],
        Path(description="A version number, or `latest`"),
    ],
    session: ReadSessionDep,
    _: ReadToken,
) -> PredictorArtifactOut:
    """A predictor version with its JSON artifact, to predict in the caller's process
    (`predictor.local.LocalPredictor`)."""
    found = service.get_version(session, device_id, None if version == "latest" else version)
    return PredictorArtifactOut.model_validate(
        {**PredictorOut.model_validate(found).model_dump(), "artifact": json.loads(found.artifact)}
    )


# The body is parsed by pydantic-core straight from the bytes: FastAPI would first build the
# whole document as Python objects with json.loads and then validate those, twice the work on a
# 10,000-architecture request. The schema documented is PredictIn's all the same.
def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions: a schema placed
    in an operation cannot point into its own ``$defs`` (OpenAPI resolves from the document)."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline_defs(PredictIn.model_json_schema())}},
    }
}
# Bodies up to this size are parsed and answered on the event loop when the predictor is in
# memory (a single architecture takes well under a millisecond); larger ones in a worker thread.
SMALL_BODY_BYTES = 16_384


@router.post(
    "/v1/predict",
    response_model=PredictOut,
    responses={409: {"description": "No predictor yet, or it cannot cover the request"}},
    openapi_extra=PREDICT_BODY,
)
async def predict_latency(
    request: Request, session: ReadSessionDep, cache: CacheDep, _: ReadToken
) -> Response:
    """Latency of many architectures of a space (or of explicit layer-key lists)."""
    body = await request.body()
    if len(body) <= SMALL_BODY_BYTES:
        spec = _predict_spec(body)
        PREDICT_BATCH.observe(len(spec.architectures or spec.layers or []))
        compiles = spec.space if spec.architectures is not None else None
        if cache.answers_from_memory(spec.device_id, compiles):
            return _answer(session, cache, spec)
        return await run_in_threadpool(_answer, session, cache, spec)

    def parse_and_answer() -> Response:
        spec = _predict_spec(body)
        PREDICT_BATCH.observe(len(spec.architectures or spec.layers or []))
        return _answer(session, cache, spec)

    return await run_in_threadpool(parse_and_answer)


def _predict_spec(body: bytes) -> PredictIn:
    try:
        return PredictIn.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None


def _answer(session: Session, cache: CompiledCache, spec: PredictIn) -> Response:
    return Response(predict(session, cache, spec).model_dump_json(), media_type="application/json")


@router.get(
    "/v1/devices/{device_id}/runtime-table",
    responses={200: {"content": {"application/json": {}, "application/yaml": {}}}},
)
def runtime_table(
    device_id: IdPath,
    session: ReadSessionDep,
    cache: CacheDep,
    _: ReadToken,
    space: str = DEFAULT_SPACE,
    format: TableFormat = "json",
) -> Response:
    """Per searchable layer x candidate latencies: hwlat JSON, the seed's layout, or OFA YAML.

    `format=ofa` lists every layer variant of the space under the key OFA's latency tables
    query (`Conv-…`, `expanded_conv-…`, `Conv_1-…`, `Logits-…`) with `mean` (ms), `var`
    (ms²) and `count` (runs; 0 for a value the layer model estimated). No a·Σ+b: OFA sums its
    table as it is."""
    search_space = space_or_404(space)
    if format == "ofa":
        return _ofa_table(session, cache, device_id, search_space)
    compiled = cache.compiled(session, device_id, search_space)
    if format == "json":
        return JSONResponse(runtime_table_of(compiled).model_dump(mode="json"))
    _require_fixed_shape(search_space, format)
    artifact = cache.artifact(session, device_id)[1]
    fixed: dict[str, float] = {}
    for key in (*search_space.prefix[-1:], *search_space.suffix[:1]):
        try:
            fixed[str(key)] = float(lookup(artifact, [key]).ms[0])
        except MissingLayers:
            continue  # an imported table without fixed blocks: they are left out
    return JSONResponse(formats.to_spnas(compiled, fixed))


@router.get("/v1/devices/{device_id}/channel-cost", response_model=ChannelCost)
def channel_cost(
    device_id: IdPath,
    session: ReadSessionDep,
    cache: CacheDep,
    _: ReadToken,
    space: str,
) -> ChannelCost:
    """The device's latency over `space` as a smooth function of its channel counts, for a
    training loop to evaluate at every step (FiGS; `nas.channel_cost` in torch).

    Per layer: the layer model's linear cost as a polynomial of (cin, mid, cout), and the log
    of the predictor's own value over it at each of the layer's keys (measured layers, the
    layer model's corrections), interpolated between them; then the calibration. At every
    architecture of the space it equals `POST /v1/predict`. Versioned with the predictor
    (`predictor_version`). A space whose decisions are not stage widths and layer expansions
    only is refused (422), as is a predictor without a layer model (409)."""
    search_space = space_or_404(space)
    compiled = cache.compiled(session, device_id, search_space)
    version, artifact = cache.artifact(session, device_id)
    if version != compiled.version:
        raise Conflict(f"device {device_id}'s predictor changed while answering; ask again")
    try:
        return channel_cost_of(artifact, compiled)
    except NotAChannelSpace as error:
        raise InvalidInput(str(error)) from None
    except NoLayerModel as error:
        raise PredictorIncomplete(str(error)) from None


@router.post("/v1/devices/{device_id}/runtime-table", response_model=PredictorOut, status_code=201)
def import_runtime_table(
    device_id: IdPath,
    session: SessionDep,
    cache: CacheDep,
    _: AdminToken,
    content: Annotated[str, Body(media_type="text/plain", description="The table file")],
    space: str = DEFAULT_SPACE,
    format: Annotated[TableFormat, Query()] = "spnas",
    constant_ms: Annotated[
        float | None, Query(description="spnas: fixed parts (stem, head, fixed blocks) in ms")
    ] = None,
) -> PredictorOut:
    """Import a published table as a new predictor version of a device."""
    search_space = space_or_404(space)
    try:
        if format == "spnas":
            if constant_ms is None:
                raise InvalidInput(
                    "the seed's layout does not carry the fixed parts; pass constant_ms "
                    "(19.5999 for the seed's Pixel 1 table)"
                )
            artifact = formats.from_spnas(_json(content), search_space, constant_ms)
        elif format == "ofa":
            artifact = formats.from_ofa_yaml(content, network_of_space(search_space))
        else:
            raise InvalidInput("import takes format=spnas or format=ofa")
    except formats.TableFormatError as error:
        raise InvalidInput(str(error)) from None
    source = {"format": format, "space": search_space.name, "constant_ms": constant_ms}
    predictor = service.import_artifact(session, device_id, artifact, source)
    cache.forget(device_id)
    predictions.record(session, predictor)
    return PredictorOut.model_validate(predictor)


def _ofa_table(
    session: Session, cache: CompiledCache, device_id: int, space: SearchSpace
) -> Response:
    version, artifact = cache.artifact(session, device_id)
    if not artifact.layers:
        raise Conflict(
            f"predictor v{version} is a per-position table without per-layer values; "
            "export it as format=json or format=spnas"
        )
    keys = list(space.variants())
    try:
        found = lookup(artifact, keys)
    except MissingLayers as error:
        raise Conflict(f"predictor v{version}: {error}") from None
    values = {
        str(key): formats.OfaEntry(
            mean_ms=float(ms),
            var_ms2=float(var),
            count=0 if estimated else artifact.layers[str(key)].n,
        )
        for key, ms, var, estimated in zip(keys, found.ms, found.var, found.estimated, strict=True)
    }
    try:
        text = formats.to_ofa_yaml(keys, values, network_of_space(space))
    except formats.TableFormatError as error:
        raise InvalidInput(f"{space.name} has no OFA table: {error}") from None
    return PlainTextResponse(text, media_type="application/yaml")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"not JSON: {error}") from None


def _require_fixed_shape(space: SearchSpace, format: str) -> None:
    if not space.fixed_shape:
        raise InvalidInput(
            f"format={format} is a table of one candidate per layer; {space.name} is elastic "
            "(a layer's shape depends on other choices): use format=json"
        )
