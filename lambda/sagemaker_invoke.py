"""The Lambda's one call to SageMaker: the client, the call and the honest error mapping.

The client is built once per container (it holds the connection pool and the adaptive retry
rate limiter). Its endpoint comes from botocore's usual chain, so setting
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points it at a local stand-in with no code change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from api_errors import CODE_BY_CLIENT_STATUS, ApiError, is_error_code
from api_settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

JSON = "application/json"
_THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


@dataclass(frozen=True)
class Prediction:
    body: bytes
    content_type: str


def create_runtime_client(
    settings: Settings, *, session: boto3.Session | None = None, endpoint_url: str | None = None
) -> SageMakerRuntimeClient:
    """A ``sagemaker-runtime`` client whose worst case fits API Gateway's 29 s.

    ``session`` and ``endpoint_url`` exist for in-process stand-ins (tests, the quick start);
    the Lambda passes neither and gets the runtime's credentials and region.
    """
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # Adaptive mode rate-limits this container's calls once SageMaker throttles; few
        # attempts, because API Gateway's clock keeps running while we retry.
        retries={"mode": "adaptive", "total_max_attempts": settings.max_attempts},
        tcp_keepalive=True,
    )
    return (session or boto3.Session()).client(
        "sagemaker-runtime", config=config, endpoint_url=endpoint_url
    )


def invoke(
    client: SageMakerRuntimeClient, settings: Settings, body: bytes, request_id: str
) -> Prediction:
    """Send one request body to the endpoint; failures come out as ``ApiError``."""
    try:
        response = client.invoke_endpoint(
            EndpointName=settings.endpoint_name,
            Body=body,
            ContentType=JSON,
            Accept=JSON,
            # Forwarded verbatim to the container: lets its logs be matched with ours.
            CustomAttributes=f"request_id={request_id}",
        )
    except ClientError as exc:
        raise client_error(exc, settings) from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise ApiError("timeout", "the model endpoint did not answer in time") from exc
    except BotoCoreError as exc:
        raise ApiError("upstream_error", "the model endpoint could not be reached") from exc
    return Prediction(
        body=response["Body"].read(), content_type=response.get("ContentType") or JSON
    )


def client_error(exc: ClientError, settings: Settings) -> ApiError:
    """Map an InvokeEndpoint error response to what the API caller should see."""
    response: dict[str, Any] = dict(exc.response)
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", ""))
    if code == "ModelError":
        return model_error(
            response.get("OriginalStatusCode"), str(response.get("OriginalMessage") or ""), settings
        )
    if code in _THROTTLING_CODES:
        return ApiError(
            "overloaded",
            "the model endpoint is throttling requests; retry later",
            retry_after_s=settings.retry_after_s,
        )
    if code == "ModelNotReadyException":
        return ApiError(
            "not_ready",
            "the model is not ready yet; retry later",
            retry_after_s=settings.retry_after_s,
        )
    # SageMaker reports a missing (deleted, not yet created) endpoint as a ValidationError.
    if code == "ValidationError" and "not found" in message.lower():
        return ApiError("not_ready", "the model endpoint does not exist or is not in service")
    return ApiError("upstream_error", "the model endpoint failed")


def model_error(original_status: object, original_message: str, settings: Settings) -> ApiError:
    """The container answered with an error status; SageMaker wrapped it in a ModelError.

    A 4xx is the caller's fault and keeps its status and (our own server's) message; a
    timeout is a 504; any other server error is the endpoint failing: 502.
    """
    status = original_status if isinstance(original_status, int) else 0
    if 400 <= status < 500:
        code = CODE_BY_CLIENT_STATUS.get(status, "bad_request")
        message = _model_server_message(original_message) or "the model rejected the request"
        retry_after = settings.retry_after_s if code == "overloaded" else None
        return ApiError(code, message, retry_after_s=retry_after)
    # Status 0 is SageMaker's own 60 s invocation timeout; 504 is the model server's deadline.
    if status == 504 or (status == 0 and "timed out" in original_message.lower()):
        return ApiError("timeout", "the model did not answer in time")
    return ApiError("upstream_error", "the model endpoint failed")


def _model_server_message(original_message: str) -> str | None:
    """The message from our model server's error body; None for anything else, whose text
    could be an internal (a proxy page, a traceback) not meant for API callers."""
    try:
        payload = json.loads(original_message)
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and is_error_code(error.get("code")):
        message = error.get("message")
        return message if isinstance(message, str) else None
    return None
