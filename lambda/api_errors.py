"""The API's error vocabulary: one table of codes and statuses, one JSON body shape.

Every non-2xx answer of the Lambda (and of the local API front) is built from an ``ApiError``,
so callers see ``{"error": {"code", "message", "request_id"}}`` whatever went wrong. Messages
are written for API users; internals (tracebacks, AWS account ids, ARNs) never go in them.
"""

from __future__ import annotations

import json
from typing import Final, Literal

ErrorCode = Literal[
    "bad_request",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "not_acceptable",
    "payload_too_large",
    "unsupported_media_type",
    "overloaded",
    "internal_error",
    "upstream_error",
    "not_ready",
    "timeout",
]

# The project's table (docs/architecture.md) plus the routing codes an API front needs
# (403/404/405), which the model server never produces.
ERROR_STATUS: Final[dict[ErrorCode, int]] = {
    "bad_request": 400,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "overloaded": 429,
    "internal_error": 500,
    "upstream_error": 502,
    "not_ready": 503,
    "timeout": 504,
}

# A 4xx from the model server keeps its status; these are the codes it uses for them.
CODE_BY_CLIENT_STATUS: Final[dict[int, ErrorCode]] = {
    status: code for code, status in ERROR_STATUS.items() if 400 <= status < 500
}


class ApiError(Exception):
    """An answer the caller should get instead of a prediction.

    ``retry_after_s`` adds a ``Retry-After`` header: set for 429 and 503, where waiting helps.
    """

    def __init__(self, code: ErrorCode, message: str, *, retry_after_s: int | None = None):
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

    def body(self, request_id: str) -> str:
        return error_body(self.code, self.message, request_id)


def error_body(code: ErrorCode, message: str, request_id: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, "request_id": request_id}})


def is_error_code(value: object) -> bool:
    return isinstance(value, str) and value in ERROR_STATUS
