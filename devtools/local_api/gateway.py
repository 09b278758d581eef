"""API Gateway's face: the REST API proxy event (payload 1.0) a Lambda receives, what API
Gateway makes of the Lambda's result, its own errors, and the Lambda context object."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from devtools.local_api.wire import LOCAL_ACCOUNT_ID, LOCAL_REGION, Reply

# API Gateway REST APIs refuse bodies above 10 MB before any Lambda runs.
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass
class LocalContext:
    """The parts of the Lambda context object a handler may read."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "news-classifier-api-local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:news-classifier-api-local"
    )
    deadline: float = field(default_factory=lambda: time.monotonic() + 29.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def rest_proxy_event(request: BaseHTTPRequestHandler, path: str, body: bytes) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration (REST API, payload 1.0)."""
    multi: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        multi.setdefault(name, []).append(value)
    try:
        text: str | None = body.decode("utf-8") if body else None
        is_base64 = False
    except UnicodeDecodeError:
        # With binary media types configured, API Gateway passes such bodies as base64.
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    query = urlsplit(request.path).query
    return {
        "resource": path,
        "path": path,
        "httpMethod": request.command,
        "headers": {name: values[-1] for name, values in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": _query(query),
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": "local",
            "resourcePath": path,
            "httpMethod": request.command,
            "path": f"/local{path}",
            "stage": "local",
            "protocol": request.request_version,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "sourceIp": request.client_address[0],
                "userAgent": request.headers.get("User-Agent"),
                "apiKey": request.headers.get("X-Api-Key"),
            },
            "domainName": request.headers.get("Host", ""),
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def _query(query: str) -> dict[str, str] | None:
    if not query:
        return None
    pairs = (part.partition("=") for part in query.split("&") if part)
    return {key: value for key, _, value in pairs}


def lambda_result(result: Mapping[str, Any]) -> Reply:
    """What API Gateway makes of a proxy integration's result."""
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    return Reply(int(result.get("statusCode", 200)), body, headers)


def not_found(path: str) -> Reply:
    return gateway_error(404, "not_found", f"no route for {path}; use POST /classify")


def gateway_error(status: int, code: str, message: str) -> Reply:
    """API Gateway's own errors, in the project's error shape (infra/template.yaml sets the
    same shape with gateway responses)."""
    request_id = str(uuid.uuid4())
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        "Access-Control-Allow-Origin": "*",
    }
    return Reply(status, json.dumps(body).encode("utf-8"), headers)
