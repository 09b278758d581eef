"""The SageMaker client: ``InvokeEndpoint`` on a real-time endpoint through boto3.

boto3 is imported when an :class:`EndpointClient` is built, not when the package is, so the
HTTP client works with the ``client`` extra alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client.base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_PAYLOAD_BYTES, BaseClient
from client.errors import (
    APIStatusError,
    AuthenticationError,
    ConnectError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    RequestTimeoutError,
    TransportError,
    UpstreamError,
    error_for_status,
    error_from_response,
)
from client.retry import RetryPolicy

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignature",
    }
)


class EndpointClient(BaseClient):
    """Classify texts with ``sagemaker-runtime:InvokeEndpoint``.

    Pass ``sagemaker_runtime`` to use your own boto3 client (tests pass one wrapped in botocore's
    ``Stubber``); otherwise one is built for ``region`` (default: the AWS config's) and
    ``endpoint_url`` (default: AWS; set it to a local InvokeEndpoint stand-in), with botocore's
    own retries off so that :class:`RetryPolicy` is the only retry layer.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        sagemaker_runtime: Any = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            retry=retry,
            max_batch_size=max_batch_size,
            max_payload_bytes=max_payload_bytes,
            sleep=sleep,
        )
        self.endpoint_name = endpoint_name
        if sagemaker_runtime is None:
            sagemaker_runtime = make_runtime_client(
                region=region, endpoint_url=endpoint_url, timeout=timeout
            )
        self._runtime = sagemaker_runtime

    def _send(self, body: bytes) -> tuple[bytes, str | None]:
        from botocore import exceptions as boto_errors

        # SageMaker strips custom headers but passes CustomAttributes on to the container, which
        # takes its request id from there: the container's logs then carry our id.
        sent_id = uuid.uuid4().hex
        try:
            response = self._runtime.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                CustomAttributes=f"request_id={sent_id}",
                Body=body,
            )
        except boto_errors.ClientError as exc:
            raise endpoint_error(exc) from exc
        except (boto_errors.ConnectTimeoutError, boto_errors.EndpointConnectionError) as exc:
            raise ConnectError(
                f"could not connect to SageMaker: {exc}", request_id=sent_id
            ) from exc
        except boto_errors.ReadTimeoutError as exc:
            raise RequestTimeoutError(
                f"no response from SageMaker in time: {exc}", request_id=sent_id
            ) from exc
        except boto_errors.BotoCoreError as exc:
            raise TransportError(f"InvokeEndpoint failed: {exc}", request_id=sent_id) from exc
        return bytes(response["Body"].read()), sent_id


def make_runtime_client(
    *, region: str | None = None, endpoint_url: str | None = None, timeout: float = 60.0
) -> Any:
    """A ``sagemaker-runtime`` client with botocore's retries off and our timeouts."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import NoRegionError
    except ImportError as exc:
        raise ImportError("EndpointClient needs boto3 (pip install boto3)") from exc

    config = Config(
        # One attempt: retries are the caller's decision (the client's RetryPolicy, or none in a
        # load test, where a hidden retry would turn a failure into a slow success).
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
    )
    try:
        return boto3.client(
            "sagemaker-runtime", region_name=region, endpoint_url=endpoint_url, config=config
        )
    except NoRegionError as exc:
        raise ValueError("no AWS region: pass region= (--region) or set AWS_REGION") from exc


def endpoint_error(exc: ClientError) -> APIStatusError:
    """Map a botocore ``ClientError`` from InvokeEndpoint onto the client's exception tree."""
    response: dict[str, Any] = dict(exc.response)
    error = response.get("Error", {})
    aws_code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or aws_code
    metadata = response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode", 500))
    request_id = metadata.get("RequestId") or None

    if aws_code == "ModelError":
        # The container answered with an error: SageMaker passes its status and body through,
        # so the server's own error code and request id are recovered from them.
        original_status = int(response.get("OriginalStatusCode") or status)
        original_body = str(response.get("OriginalMessage") or "").encode("utf-8")
        return error_from_response(original_status, original_body, request_id=request_id)
    if aws_code in _THROTTLING_CODES or aws_code == "ModelNotReadyException" or status == 429:
        return OverloadedError(message, status_code=429, code="overloaded", request_id=request_id)
    if aws_code == "ServiceUnavailable" or status == 503:
        return NotReadyError(message, status_code=503, code="not_ready", request_id=request_id)
    if aws_code == "ValidationError" and "not found" in message.lower():
        return NotFoundError(
            message, status_code=404, code="endpoint_not_found", request_id=request_id
        )
    if aws_code in _AUTH_CODES:
        return AuthenticationError(
            message, status_code=status, code="forbidden", request_id=request_id
        )
    if aws_code == "InternalDependencyException":
        return UpstreamError(
            message, status_code=status, code="upstream_error", request_id=request_id
        )
    # Anything else keeps AWS's code (e.g. ValidationError) on the class its status implies.
    return error_for_status(status, code=aws_code or None, message=message, request_id=request_id)
