"""The Lambda's one call to SageMaker: the client, the call, its retries and time budget,
and the honest error mapping.

The client is built once per container (it holds the connection pool). Its endpoint comes
from botocore's usual chain, so setting ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points it at a
local stand-in with no code change.

Retries are ours, not botocore's: botocore's modes (``standard`` and ``adaptive``) also retry
a read timeout and a 5xx, which runs a slow request twice in the container, and resend the
same ``CustomAttributes``, so a retry would carry a stale deadline. Here botocore makes one
attempt (``standard`` mode, ``total_max_attempts=1``) and :func:`invoke` retries only what
never reached the model: a failed connection, or SageMaker throttling the call. Each attempt
tells the container how long it may take (``timeout_ms``, which the model server honours),
so the container gives up with a 504 before the Lambda stops waiting, and the whole call,
retries included, ends within API Gateway's 29 s.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from api_errors import CODE_BY_CLIENT_STATUS, ApiError, is_error_code
from api_settings import REQUEST_BUDGET_S, Settings

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

JSON = "application/json"
# SageMaker's throttling error codes for InvokeEndpoint (and botocore's usual ones).
_THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
# The container answers its own 504 this long before our read timeout would fire: the time
# the answer takes back through SageMaker (a quarter of the read timeout when that is short).
# Below MIN_SERVER_S of model time, do not start.
ANSWER_MARGIN_S = 0.5
MIN_SERVER_S = 0.1
# Full-jitter backoff between attempts: up to BACKOFF_BASE_S x 2^(attempt - 1), capped.
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 2.0


@dataclass(frozen=True)
class Prediction:
    body: bytes
    content_type: str


def create_runtime_client(
    settings: Settings, *, session: boto3.Session | None = None, endpoint_url: str | None = None
) -> SageMakerRuntimeClient:
    """A ``sagemaker-runtime`` client that makes exactly one attempt per call (see above).

    ``session`` and ``endpoint_url`` exist for in-process stand-ins (tests, the quick start);
    the Lambda passes neither and gets the runtime's credentials and region.
    """
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": 1},
        tcp_keepalive=True,
    )
    return (session or boto3.Session()).client(
        "sagemaker-runtime", config=config, endpoint_url=endpoint_url
    )


# --- the time budget ----------------------------------------------------------------------


def request_deadline(now: float, lambda_remaining_ms: int | None) -> float:
    """When the SageMaker call must be over: API Gateway's budget, or sooner when the
    Lambda itself has less time left (``context.get_remaining_time_in_millis()``)."""
    budget = REQUEST_BUDGET_S
    if lambda_remaining_ms is not None:
        budget = min(budget, lambda_remaining_ms / 1000 - (29.0 - REQUEST_BUDGET_S))
    return now + budget


def server_timeout_ms(remaining_s: float, settings: Settings) -> int | None:
    """The container's deadline for an attempt started with ``remaining_s`` left: what is
    left after connecting, at most the read timeout, less the answer's way back; None when
    that is too short to be worth starting."""
    server_s = min(settings.read_timeout_s, remaining_s - settings.connect_timeout_s)
    server_s -= min(ANSWER_MARGIN_S, settings.read_timeout_s / 4)
    return round(server_s * 1000) if server_s >= MIN_SERVER_S else None


def fits_another_attempt(remaining_s: float, settings: Settings) -> bool:
    """A retry starts only when a whole attempt (connect + read timeout) still fits, so the
    call ends within the budget even if the container never answers."""
    return remaining_s >= settings.connect_timeout_s + settings.read_timeout_s


def backoff_s(attempt: int, rand: Callable[[], float] = random.random) -> float:
    ceiling: float = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
    return rand() * ceiling


# --- the call -----------------------------------------------------------------------------


def invoke(
    client: SageMakerRuntimeClient,
    settings: Settings,
    body: bytes,
    request_id: str,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Prediction:
    """Send one request body to the endpoint; failures come out as ``ApiError``.

    ``deadline`` is on ``clock``'s scale (default: API Gateway's budget from now).
    """
    if deadline is None:
        deadline = request_deadline(clock(), None)
    attempt = 0
    while True:
        attempt += 1
        timeout_ms = server_timeout_ms(deadline - clock(), settings)
        if timeout_ms is None:
            raise ApiError("timeout", "the model endpoint did not answer in time")
        try:
            return _invoke_once(client, settings, body, request_id, timeout_ms)
        except _RetryableError as retryable:
            error = retryable.error
            if attempt >= settings.max_attempts:
                raise error from retryable.__cause__
            pause = backoff_s(attempt)
            if not fits_another_attempt(deadline - clock() - pause, settings):
                raise error from retryable.__cause__
            sleep(pause)


class _RetryableError(Exception):
    """An attempt failed before the model saw the request; ``error`` is its API answer."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _invoke_once(
    client: SageMakerRuntimeClient,
    settings: Settings,
    body: bytes,
    request_id: str,
    timeout_ms: int,
) -> Prediction:
    try:
        response = client.invoke_endpoint(
            EndpointName=settings.endpoint_name,
            Body=body,
            ContentType=JSON,
            Accept=JSON,
            # Forwarded verbatim to the container: its logs match ours by request id, and it
            # stops working on the request (504) when we would stop waiting for it.
            CustomAttributes=f"request_id={request_id};timeout_ms={timeout_ms}",
        )
    except ClientError as exc:
        error = client_error(exc, settings)
        if _error_code(exc) in _THROTTLING_CODES:
            raise _RetryableError(error) from exc
        raise error from exc
    except ConnectTimeoutError as exc:  # no connection: the request never left
        raise _RetryableError(
            ApiError("timeout", "the model endpoint did not answer in time")
        ) from exc
    except ConnectionError as exc:  # no connection: the request never left
        error = ApiError("upstream_error", "the model endpoint could not be reached")
        raise _RetryableError(error) from exc
    except ReadTimeoutError as exc:  # sent, maybe running: never sent again
        raise ApiError("timeout", "the model endpoint did not answer in time") from exc
    except BotoCoreError as exc:
        raise ApiError("upstream_error", "the model endpoint could not be reached") from exc
    return Prediction(
        body=response["Body"].read(), content_type=response.get("ContentType") or JSON
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def client_error(exc: ClientError, settings: Settings) -> ApiError:
    """Map an InvokeEndpoint error response to what the API caller should see."""
    response: dict[str, Any] = dict(exc.response)
    code = _error_code(exc)
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
