"""The error tree of the model server, the one table from error code to HTTP status, and the
one JSON shape every error body has: ``{"error": {"code", "message", "request_id"}}``.

Messages are written for callers: they never carry tracebacks, internals or the caller's text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    REQUEST_TIMEOUT = "request_timeout"
    OVERLOADED = "overloaded"
    INTERNAL_ERROR = "internal_error"
    NOT_READY = "not_ready"
    TIMEOUT = "timeout"


STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.OVERLOADED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.NOT_READY: 503,
    ErrorCode.TIMEOUT: 504,
}


class ServingError(Exception):
    """Base of every error the server answers on purpose; ``code`` picks the status."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def headers(self) -> dict[str, str]:
        return {}


class BadRequestError(ServingError):
    """Invalid JSON or UTF-8, missing or empty inputs, bad parameters."""

    code = ErrorCode.BAD_REQUEST


class NotAcceptableError(ServingError):
    code = ErrorCode.NOT_ACCEPTABLE


class PayloadTooLargeError(ServingError):
    """Too many texts in one request, or too large a body."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaTypeError(ServingError):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class RequestTimeoutError(ServingError):
    """The client did not send its whole body in time (a slow-loris client)."""

    code = ErrorCode.REQUEST_TIMEOUT


class OverloadedError(ServingError):
    """The queue cannot take the request now; the caller should retry after a while."""

    code = ErrorCode.OVERLOADED

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NotReadyError(ServingError):
    """The model is not loaded yet, or the server is shutting down."""

    code = ErrorCode.NOT_READY


class DeadlineExceededError(ServingError):
    code = ErrorCode.TIMEOUT


def error_body(code: ErrorCode, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code.value, "message": message, "request_id": request_id}}
