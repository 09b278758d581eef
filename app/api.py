"""The HTTP layer: routes, the request-context middleware, and error rendering.

Layers follow the data: handler (content negotiation, body, limits: :mod:`app.codecs`) ->
inference façade (:mod:`app.inference`: queue room, text cap, tokenizer, batcher, ranking) ->
codecs. The handler never drives the batcher itself. ``/ping`` and ``/invocations`` are the
SageMaker names; ``/health`` and ``/predict`` are aliases of the same handlers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import codecs
from app.engine import Engine, Loader
from app.errors import (
    STATUS,
    BadRequestError,
    ErrorCode,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServingError,
    error_body,
)
from app.model import load_classifier
from app.observability import Metrics
from app.sagemaker import (
    CUSTOM_ATTRIBUTES,
    REQUEST_ID,
    CustomAttributes,
    execution_parameters,
    parse_custom_attributes,
    valid_request_id,
)
from app.schemas import ErrorResponse, ExecutionParameters, PredictRequest, PredictResponse
from app.settings import Settings

logger = logging.getLogger("app.requests")

_CLIENT_CLOSED = 499  # nginx's convention; nobody receives it, it only shows in logs/metrics
T = TypeVar("T")


def create_app(
    settings: Settings,
    *,
    loader: Loader = load_classifier,
    on_fatal: Callable[[], None] | None = None,
    load_before_serving: bool = False,
) -> FastAPI:
    """Build the app; the model loads when the app starts (lifespan), in the background unless
    ``load_before_serving``."""
    metrics = Metrics()
    engine = Engine(settings, loader, metrics, on_fatal)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start(wait=load_before_serving)
        yield
        await engine.stop()

    app = FastAPI(
        title="News headline classifier",
        summary="SageMaker-compatible text classification with dynamic batching.",
        version="1",
        lifespan=lifespan,
        responses={
            status: {"model": ErrorResponse}
            for status in (400, 406, 408, 413, 415, 429, 500, 503, 504)
        },
        # Off unless asked for: Swagger UI makes browsers load scripts from a CDN.
        openapi_url="/openapi.json" if settings.docs else None,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.add_middleware(RequestContext, metrics=metrics)
    app.add_exception_handler(ServingError, _serving_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.include_router(_routes())
    return app


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(_engine)]


def _routes() -> APIRouter:
    router = APIRouter()

    async def ping(engine: EngineDep) -> Response:
        """200 with an empty body once the model is loaded and warmed up, 503 before."""
        engine.require_ready()
        return Response(status_code=200)

    for path in ("/ping", "/health"):
        router.add_api_route(
            path,
            ping,
            methods=["GET"],
            response_class=Response,
            responses={200: {"description": "Ready (empty body)"}},
            summary="Readiness",
        )

    invocation_doc = {
        "requestBody": {
            "required": True,
            "content": {
                codecs.JSON: {"schema": PredictRequest.model_json_schema()},
                codecs.JSONLINES: {
                    "schema": {"type": "string"},
                    "example": '{"inputs": "Fed raises rates"}\n"Apple unveils iPhone"\n',
                },
                codecs.CSV: {"schema": {"type": "string"}, "example": "Fed raises rates\n"},
                codecs.PLAIN: {"schema": {"type": "string"}, "example": "Fed raises rates"},
            },
        }
    }
    response_doc: dict[int | str, dict[str, Any]] = {
        200: {
            "model": PredictResponse,
            "description": "One element per input, in input order",
            "content": {
                codecs.JSONLINES: {"schema": {"type": "string"}},
                codecs.CSV: {"schema": {"type": "string"}},
            },
        }
    }
    for path in ("/invocations", "/predict"):
        router.add_api_route(
            path,
            invocations,
            methods=["POST"],
            response_class=Response,
            openapi_extra=invocation_doc,
            responses=response_doc,
            summary="Classify texts",
        )

    async def get_execution_parameters(engine: EngineDep) -> ExecutionParameters:
        """What SageMaker Batch Transform asks before it sends records."""
        limits = engine.require_ready().limits  # known once the model is loaded
        return execution_parameters(engine.settings, limits)

    router.add_api_route(
        "/execution-parameters",
        get_execution_parameters,
        methods=["GET"],
        response_model=ExecutionParameters,
        response_model_by_alias=True,
    )

    async def metrics(engine: EngineDep) -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    router.add_api_route("/metrics", metrics, methods=["GET"], response_class=Response)
    return router


async def invocations(request: Request, engine: EngineDep) -> Response:
    """Classify one or more texts (JSON, JSON lines, CSV or plain text)."""
    started = time.monotonic()
    settings = engine.settings
    inference = engine.require_ready()
    kind = codecs.negotiate(request.headers.get("accept"))
    decoder = codecs.decoder_for(request.headers.get("content-type"))
    attributes = _custom_attributes(request)
    inference.check_room()  # a full server refuses before it reads the body
    try:
        body = await _read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    except ClientDisconnect:
        return Response(status_code=_CLIENT_CLOSED)
    invocation = decoder(body)
    codecs.check_inputs(invocation)
    count = len(invocation.texts)
    context = request.state.log
    context.update(inputs=count, body_bytes=len(body))
    # A Batch Transform or async body of many texts is classified in chunks; elsewhere the
    # caller splits its work and a request must fit the real-time deadline.
    in_chunks = settings.records_in_chunks
    if count > inference.limits.max_instances and not in_chunks:
        raise PayloadTooLargeError(
            f"{count} inputs in one request; the limit is {inference.limits.max_instances}"
        )
    invocation = invocation.with_top_k(attributes.top_k)
    timeout = settings.request_timeout_s
    if attributes.timeout_s is not None:
        timeout = min(timeout, attributes.timeout_s)

    deadline = started + timeout
    work = (
        inference.classify_in_chunks(
            invocation.texts,
            deadline,
            invocation.top_k,
            invocation.function,
            concurrent_requests=settings.max_concurrent_transforms or 1,
        )
        if in_chunks
        else inference.classify(invocation.texts, deadline, invocation.top_k, invocation.function)
    )
    result = await _unless_disconnected(request, work)
    if result is None:
        return Response(status_code=_CLIENT_CLOSED)
    context.update(
        tokens=result.tokens,
        truncated=result.truncated,
        queue_wait_ms=round(result.queue_wait_s * 1000, 2),
        model_ms=round(result.model_s * 1000, 2),
    )
    content = codecs.encode_response(result.ranked, invocation, kind)
    return Response(content, media_type=kind)


def _custom_attributes(request: Request) -> CustomAttributes:
    """The header as :class:`RequestContext` parsed it (once), or its 400."""
    parsed: CustomAttributes | ServingError = request.state.custom_attributes
    if isinstance(parsed, ServingError):
        raise parsed
    return parsed


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"the body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(
            f"the body did not arrive within {timeout_s:g} s; send it at once"
        ) from None
    return b"".join(chunks)


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await ``work`` unless the client disconnects first; then cancel it and return None.

    Cancelling makes the batcher drop the request's texts that have not run yet.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()  # the server gave up on the request (shutdown): drop its texts too
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# Error rendering: one table (app.errors.STATUS), one shape (app.errors.error_body).


def _error_response(
    request: Request, code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> Response:
    request.state.log["error"] = code.value
    body = error_body(code, message, request.state.request_id)
    return Response(
        orjson.dumps(body), status_code=STATUS[code], media_type=codecs.JSON, headers=headers
    )


async def _serving_error(request: Request, exc: ServingError) -> Response:
    return _error_response(request, exc.code, exc.message, exc.headers())


async def _http_error(request: Request, exc: HTTPException) -> Response:
    codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
    code = codes.get(exc.status_code, ErrorCode.BAD_REQUEST)
    message = {404: "no such path", 405: "method not allowed"}.get(exc.status_code, "bad request")
    return _error_response(request, code, message, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return await _serving_error(request, BadRequestError("invalid request parameters"))


class RequestContext:
    """Pure ASGI middleware: request id, one JSON log line and metrics per request, and the
    last line of defence that turns anything unexpected into a generic 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # Parsed once, here: the request id may come from it; the handler reads the rest.
        attributes: CustomAttributes | ServingError
        try:
            attributes = parse_custom_attributes(headers.get(CUSTOM_ATTRIBUTES))
        except ServingError as exc:
            attributes = exc
        request_id = valid_request_id(headers.get(REQUEST_ID))
        if request_id is None and isinstance(attributes, CustomAttributes):
            request_id = attributes.request_id
        request_id = request_id or uuid.uuid4().hex
        log: dict[str, Any] = {}
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["log"] = log
        state["custom_attributes"] = attributes
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        async def answer(code: ErrorCode, message: str) -> None:
            body = orjson.dumps(error_body(code, message, request_id))
            headers = [(b"content-type", codecs.JSON.encode())]
            start = {"type": "http.response.start", "status": STATUS[code], "headers": headers}
            await send_with_id(start)
            await send_with_id({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs SERVE_SHUTDOWN_TIMEOUT_S after SIGTERM: answer it.
            if response_started:
                raise
            log["error"] = ErrorCode.NOT_READY.value
            await answer(ErrorCode.NOT_READY, "the server shut down before this request ran")
        except Exception:
            logger.exception("unexpected error", extra={"request_id": request_id})
            if not response_started:
                await answer(ErrorCode.INTERNAL_ERROR, "internal error; see the server log")
        elapsed = time.monotonic() - started
        path = scope["path"]
        route = path if path in _KNOWN_PATHS else "other"
        self.metrics.requests.labels(route, str(status)).inc()
        if route in ("/invocations", "/predict"):
            self.metrics.latency.observe(elapsed)
            level = logging.INFO
        else:
            level = logging.DEBUG if status < 400 else logging.INFO
        logger.log(
            level,
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                **log,
            },
        )


_KNOWN_PATHS = frozenset(
    {
        "/ping",
        "/health",
        "/invocations",
        "/predict",
        "/execution-parameters",
        "/metrics",
        "/docs",
        "/openapi.json",
    }
)
