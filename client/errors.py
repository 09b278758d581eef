"""The client's exception tree.

Every error the client raises is a :class:`ClassifierError` carrying ``code``, ``message`` and
``request_id``; the server's error shape (``{"error": {"code", "message", "request_id"}}``, see
docs/architecture.md) is mapped onto one subclass per row of the status table::

    ClassifierError
    ├── TransportError                    no HTTP response at all
    │   ├── ConnectError                  could not connect (safe to retry: nothing was sent)
    │   └── RequestTimeoutError           the client's own timeout passed
    ├── InvalidResponseError              a 2xx answer that breaks the response contract
    └── APIStatusError                    the server answered with an error status
        ├── BadRequestError               400 bad_request (and 405, 408)
        ├── AuthenticationError           401/403 (API Gateway: missing or wrong API key)
        ├── NotFoundError                 404 (wrong URL or endpoint name)
        ├── NotAcceptableError            406 not_acceptable
        ├── PayloadTooLargeError          413 payload_too_large
        ├── UnsupportedMediaTypeError     415 unsupported_media_type
        ├── OverloadedError               429 overloaded (retried; has retry_after)
        ├── InternalServerError           500 internal_error
        ├── UpstreamError                 502 upstream_error
        ├── NotReadyError                 503 not_ready (retried; has retry_after)
        └── GatewayTimeoutError           504 timeout
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class ClassifierError(Exception):
    """Base class of every error raised by the client."""

    def __init__(self, message: str, *, code: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        suffix = f" (request_id={self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{suffix}"


class TransportError(ClassifierError):
    """No HTTP response came back: the request may or may not have reached the server."""

    default_code = "transport_error"

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, code=self.default_code, request_id=request_id)


class ConnectError(TransportError):
    """The connection could not be opened, so nothing was sent: always safe to retry."""

    default_code = "connect_error"


class RequestTimeoutError(TransportError):
    """The client's own timeout passed before the response arrived."""

    default_code = "client_timeout"


class InvalidResponseError(ClassifierError):
    """A success status whose body is not the documented response (wrong JSON or length)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, code="invalid_response", request_id=request_id)


class APIStatusError(ClassifierError):
    """The server answered with an error status; ``code`` is the server's error code."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.status_code = status_code
        # Seconds the server asked us to wait (Retry-After); None when it did not say.
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"HTTP {self.status_code} {super().__str__()}"


class BadRequestError(APIStatusError):
    """400: invalid JSON, missing or empty ``inputs``, or bad parameters; also 405 (a method
    other than POST) and 408 (the model server got the body too slowly)."""


class AuthenticationError(APIStatusError):
    """401/403: API Gateway refused the API key (or none was sent)."""


class NotFoundError(APIStatusError):
    """404: the URL or the SageMaker endpoint does not exist."""


class NotAcceptableError(APIStatusError):
    """406: the server cannot answer in the requested ``Accept`` type."""


class PayloadTooLargeError(APIStatusError):
    """413: too many inputs or too large a body (the client splits and retries when it can)."""


class UnsupportedMediaTypeError(APIStatusError):
    """415: the server does not accept the request's ``Content-Type``."""


class OverloadedError(APIStatusError):
    """429: the server's queue is full or the endpoint is throttled; retried with backoff."""


class InternalServerError(APIStatusError):
    """500: something unexpected failed on the server (details are in its logs only)."""


class UpstreamError(APIStatusError):
    """502: the API front could not get a valid answer from the endpoint."""


class NotReadyError(APIStatusError):
    """503: the model is not loaded yet or the endpoint is not in service; retried."""


class GatewayTimeoutError(APIStatusError):
    """504: the request's deadline passed on the server side."""


# The API's table (docs/api.md: the model server's codes and the API front's), code -> status
# and the exception for both, plus 401, which only API Gateway or a proxy answers.
# tests/contracts/test_error_codes.py keeps it equal to the server's and the Lambda's tables.
_ERRORS: dict[str, tuple[int, type[APIStatusError]]] = {
    "bad_request": (400, BadRequestError),
    "unauthorized": (401, AuthenticationError),
    "forbidden": (403, AuthenticationError),
    "not_found": (404, NotFoundError),
    "method_not_allowed": (405, BadRequestError),
    "not_acceptable": (406, NotAcceptableError),
    "request_timeout": (408, BadRequestError),
    "payload_too_large": (413, PayloadTooLargeError),
    "unsupported_media_type": (415, UnsupportedMediaTypeError),
    "overloaded": (429, OverloadedError),
    "internal_error": (500, InternalServerError),
    "upstream_error": (502, UpstreamError),
    "not_ready": (503, NotReadyError),
    "timeout": (504, GatewayTimeoutError),
}
# The server's code decides when the body carries our error shape; the status decides for
# bodies that do not (API Gateway's own 403/429 answers, proxies, load balancers).
_ERRORS_BY_STATUS: dict[int, tuple[type[APIStatusError], str]] = {
    status: (cls, code) for code, (status, cls) in _ERRORS.items()
}


def error_from_response(
    status_code: int,
    body: bytes,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the exception for an error response, preferring the server's own error body."""
    code: str | None = None
    message: str | None = None
    error = _error_object(body)
    if error is not None:
        code = _str_or_none(error.get("code"))
        message = _str_or_none(error.get("message"))
        request_id = _str_or_none(error.get("request_id")) or request_id
    else:
        # API Gateway's own answers look like {"message": "Forbidden"}.
        message = _gateway_message(body)
    return error_for_status(
        status_code, code=code, message=message, request_id=request_id, retry_after=retry_after
    )


def error_for_status(
    status_code: int,
    *,
    code: str | None = None,
    message: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """The exception for an error: by the server's ``code`` when known, else by the status."""
    cls: type[APIStatusError]
    if code is not None and code in _ERRORS:
        cls = _ERRORS[code][1]
    else:
        cls, default_code = _ERRORS_BY_STATUS.get(
            status_code,
            (InternalServerError if status_code >= 500 else BadRequestError, f"http_{status_code}"),
        )
        code = code or default_code
    return cls(
        message or f"HTTP {status_code}",
        status_code=status_code,
        code=code,
        request_id=request_id,
        retry_after=retry_after,
    )


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_object(body: bytes) -> Mapping[str, Any] | None:
    payload = _parse_json(body)
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error: Mapping[str, Any] = payload["error"]
        return error
    return None


def _gateway_message(body: bytes) -> str | None:
    payload = _parse_json(body)
    if isinstance(payload, dict):
        return _str_or_none(payload.get("message") or payload.get("Message"))
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
