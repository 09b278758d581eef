"""The SageMaker runtime's face: InvokeEndpoint's HTTP API in front of the model server.

It forwards the body to the model server's ``/invocations`` and answers the way SageMaker
does, errors included (a container error becomes a 424 ``ModelError`` carrying
``OriginalStatusCode`` and ``OriginalMessage``), so a boto3 client sees what it would see on AWS.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from devtools.local_api.wire import LOCAL_ACCOUNT_ID, LOCAL_REGION, Reply

# What SageMaker allows a container per invocation, and the largest body it accepts.
SAGEMAKER_INVOCATION_TIMEOUT_S = 60.0
SAGEMAKER_MAX_BODY_BYTES = 6 * 1024 * 1024
# Headers SageMaker passes on to the container; it strips all others.
_FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")
INVOCATIONS_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_TIMED_OUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. "
    "Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, "
    "and try again."
)


def invoke_endpoint(
    name: str,
    headers: Message,
    body: bytes,
    *,
    endpoint_name: str,
    serve_url: str,
    timeout_s: float,
) -> Reply:
    """InvokeEndpoint on the endpoint ``name`` (this front serves ``endpoint_name`` only):
    the model server's answer to ``body``, in SageMaker's shape."""
    if name != endpoint_name:
        return _aws_error(
            400,
            "ValidationError",
            f"Endpoint {name} of account {LOCAL_ACCOUNT_ID} not found.",
        )
    if len(body) > SAGEMAKER_MAX_BODY_BYTES:
        return _aws_error(400, "ValidationError", "Request payload is too large.")
    forwarded = {h: v for h in _FORWARDED_HEADERS if (v := headers.get(h)) is not None}
    target = urlsplit(serve_url)
    connection = http.client.HTTPConnection(
        target.hostname or "127.0.0.1", target.port or 80, timeout=timeout_s
    )
    try:
        connection.request("POST", f"{target.path}/invocations", body=body, headers=forwarded)
        upstream = connection.getresponse()
        status, payload = upstream.status, upstream.read()
        content_type = upstream.getheader("Content-Type") or "application/json"
        attributes = upstream.getheader("X-Amzn-SageMaker-Custom-Attributes")
    except TimeoutError:
        return _model_error(name, 0, _TIMED_OUT_MESSAGE)
    except OSError:
        # No container answering at all: SageMaker has no healthy instance to route to.
        return _aws_error(503, "ServiceUnavailable", "The service is unavailable.")
    finally:
        connection.close()
    if status >= 400:
        return _model_error(name, status, payload.decode("utf-8", "replace"))
    reply_headers = {
        "Content-Type": content_type,
        "x-Amzn-Invoked-Production-Variant": "AllTraffic",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    if attributes is not None:
        reply_headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    return Reply(200, payload, reply_headers)


def _aws_error(status: int, error_type: str, message: str, **members: Any) -> Reply:
    """An error in the SageMaker runtime's wire format (rest-json): the type in a header,
    the members in the body."""
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": error_type,
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return Reply(status, json.dumps({"message": message, **members}).encode("utf-8"), headers)


def _model_error(endpoint_name: str, original_status: int, original_message: str) -> Reply:
    kind = "client" if 400 <= original_status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    return _aws_error(
        424,
        "ModelError",
        f"Received {kind} error ({original_status}) from primary with message "
        f'"{original_message}". See the log group {log_group} for more information.',
        ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
        OriginalStatusCode=original_status,
        OriginalMessage=original_message,
        LogStreamArn=f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:log-group:{log_group}",
    )
