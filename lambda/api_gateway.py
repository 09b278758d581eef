"""API Gateway's side of the Lambda: events in, proxy responses out.

Two event formats reach the handler: REST API proxy events (payload 1.0, what
``infra/template.yaml`` deploys) and HTTP API events (payload 2.0). Both are reduced to one
``HttpRequest``; the response dict below is valid for both formats.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from api_errors import ApiError

# Client-chosen request ids are echoed into logs and headers, so only harmless ones are kept.
# \Z, not $: "$" also matches before a final newline, which would let "abc\n" into a header.
_SAFE_REQUEST_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    request_id: str
    payload_version: Literal["1.0", "2.0"]


def request_id_of(event: Mapping[str, Any], context: Any) -> str:
    """The id every answer and log line carries, worked out before anything can fail: the
    caller's ``X-Request-Id`` when harmless, else API Gateway's, else Lambda's."""
    headers = _headers(event)
    supplied = headers.get("x-request-id", "")
    if _SAFE_REQUEST_ID.match(supplied):
        return supplied
    context_data: Mapping[str, Any] = event.get("requestContext") or {}
    gateway_id = context_data.get("requestId")
    if isinstance(gateway_id, str) and gateway_id:
        return gateway_id
    lambda_id = getattr(context, "aws_request_id", None)
    if isinstance(lambda_id, str) and lambda_id:
        return lambda_id
    return uuid.uuid4().hex


def parse_event(event: Mapping[str, Any], request_id: str) -> HttpRequest:
    """Read an API Gateway proxy event of either payload version.

    Raises ``ApiError("bad_request")`` when a base64 body does not decode.
    """
    version: Literal["1.0", "2.0"] = "2.0" if event.get("version") == "2.0" else "1.0"
    if version == "2.0":
        context_data: Mapping[str, Any] = event.get("requestContext") or {}
        http: Mapping[str, Any] = context_data.get("http") or {}
        method = str(http.get("method", ""))
        path = str(event.get("rawPath") or http.get("path") or "")
    else:
        method = str(event.get("httpMethod", ""))
        path = str(event.get("path") or "")
    return HttpRequest(
        method=method.upper(),
        path=path,
        headers=_headers(event),
        body=_body(event),
        request_id=request_id,
        payload_version=version,
    )


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    # Payload 1.0 carries both maps; multiValueHeaders is the complete one when present.
    multi: Mapping[str, list[str]] | None = event.get("multiValueHeaders")
    if multi:
        return {name.lower(): ", ".join(values) for name, values in multi.items() if values}
    single: Mapping[str, str] | None = event.get("headers")
    return {name.lower(): value for name, value in (single or {}).items()}


def _body(event: Mapping[str, Any]) -> bytes:
    raw = event.get("body")
    if raw is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("bad_request", "the body is not valid base64") from None
    # surrogatepass keeps a lone surrogate from crashing the encoder; such a body then fails
    # UTF-8 decoding in validation and is answered 400 like any other invalid text.
    return str(raw).encode("utf-8", "surrogatepass")


def cors_headers(allow_origin: str) -> dict[str, str]:
    """CORS headers for every answer, errors included: a browser hides any response without
    them, and an error it cannot read is worse than useless."""
    return {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Accept, X-Api-Key, X-Request-Id",
        "Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def proxy_response(
    status: int, body: str, request_id: str, extra_headers: Mapping[str, str]
) -> dict[str, Any]:
    """A proxy integration response; the same dict is valid for payload 1.0 and 2.0."""
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    headers.update(extra_headers)
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}
