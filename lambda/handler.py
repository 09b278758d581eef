"""The API Gateway -> SageMaker Lambda: ``POST /classify`` in, predictions out.

``handler`` is the Lambda entry point (``handler.handler``). It builds one ``ClassifyApi``
per container on the first event, from the environment (``api_settings``), then reuses it.
Tests and the local API front build their own ``ClassifyApi`` with their own settings and
client; the request path is the same code.

``lambda/`` is a folder of plain modules, the root of the Lambda's code bundle (``lambda`` is a
keyword, so it cannot be a package), in the order a request meets them:

- ``handler``: this entry point and ``ClassifyApi``, the request from event to answer.
- ``api_settings``: the environment variables, read and validated once per container.
- ``api_gateway``: API Gateway's side: events (payload 1.0 and 2.0) in, proxy responses out.
- ``api_validation``: the checks made before SageMaker is called (media types, size, shape).
- ``sagemaker_invoke``: the one InvokeEndpoint call, its retries, time budget, error mapping.
- ``api_errors``: the API's error codes, their one status table and the error body shape.
- ``api_logging``: one JSON log line per request, never the texts.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from api_errors import ApiError, error_body
from api_gateway import HttpRequest, cors_headers, parse_event, proxy_response, request_id_of
from api_logging import LOGGER_NAME, configure_logging
from api_settings import Settings
from api_validation import check_media_types, validate_body
from sagemaker_invoke import create_runtime_client, invoke, request_deadline

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

logger = logging.getLogger(LOGGER_NAME)


class ClassifyApi:
    """Everything one request needs, built once: settings, the SageMaker client, headers."""

    def __init__(self, settings: Settings, client: SageMakerRuntimeClient) -> None:
        self.settings = settings
        self.client = client
        self._cors = cors_headers(settings.cors_allow_origin)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ClassifyApi:
        settings = Settings.from_environ(environ)
        configure_logging(settings.log_level)
        return cls(settings, create_runtime_client(settings))

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        # The clock of the whole request: API Gateway's budget, or the Lambda's if shorter.
        deadline = request_deadline(time.monotonic(), _remaining_ms(context))
        fields: dict[str, Any] = {"endpoint": self.settings.endpoint_name}
        request_id = request_id_of(event, context)
        fields["request_id"] = request_id
        try:
            request = parse_event(event, request_id)
            fields.update(
                method=request.method,
                payload_version=request.payload_version,
                body_bytes=len(request.body),
            )
            response = self._answer(request, fields, deadline)
        except ApiError as exc:
            response = self._error(exc, request_id)
            fields["code"] = exc.code
        except Exception:
            # A bug of ours: logged with its traceback, answered without it.
            logger.exception("unexpected error", extra={"fields": {"request_id": request_id}})
            response = self._error(ApiError("internal_error", "internal error"), request_id)
            fields["code"] = "internal_error"
        fields["status"] = response["statusCode"]
        fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        logger.info("request", extra={"fields": fields})
        return response

    def _answer(
        self, request: HttpRequest, fields: dict[str, Any], deadline: float
    ) -> dict[str, Any]:
        if request.method == "OPTIONS":  # CORS preflight: browsers send no API key with it
            return {
                "statusCode": 204,
                "headers": {**self._cors, "X-Request-Id": request.request_id},
                "body": "",
                "isBase64Encoded": False,
            }
        if request.method != "POST":
            raise ApiError("method_not_allowed", "use POST to classify")
        check_media_types(request.headers)
        classify = validate_body(request.body, self.settings)
        fields.update(
            inputs=classify.n_inputs, chars=classify.n_chars, truncated=classify.n_truncated
        )
        upstream_started = time.perf_counter()
        try:
            prediction = invoke(
                self.client, self.settings, classify.body, request.request_id, deadline=deadline
            )
        finally:
            fields["upstream_ms"] = round((time.perf_counter() - upstream_started) * 1000, 1)
        return proxy_response(
            200,
            prediction.body.decode("utf-8"),
            request.request_id,
            {**self._cors, "Content-Type": prediction.content_type},
        )

    def _error(self, exc: ApiError, request_id: str) -> dict[str, Any]:
        headers = dict(self._cors)
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(exc.retry_after_s)
        return proxy_response(
            exc.status, error_body(exc.code, exc.message, request_id), request_id, headers
        )


def _remaining_ms(context: Any) -> int | None:
    """The Lambda context's time left; None without one (tests, the local API front)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


@functools.cache
def _container_api() -> ClassifyApi:
    # Once per container (the first event): settings errors fail loudly here, and the client
    # and its connection pool live as long as the container.
    return ClassifyApi.from_environ(os.environ)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    return _container_api()(event, context)
