"""The HTTP client: the API Gateway URL (`POST /classify`) or a model server (`/invocations`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

import httpx

from client.base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_PAYLOAD_BYTES, BaseClient
from client.errors import ConnectError, RequestTimeoutError, TransportError, error_from_response
from client.retry import RetryPolicy, parse_retry_after

API_PATH = "/classify"  # API Gateway resource in front of the Lambda
SERVER_PATH = "/invocations"  # the model server's SageMaker hosting route


class ApiClient(BaseClient):
    """Classify texts over HTTP.

    ``base_url`` is the API Gateway stage URL (``https://{id}.execute-api.{region}.amazonaws.com/
    {stage}``, with ``api_key``) or, with ``path=SERVER_PATH``, a model server such as
    ``http://localhost:8080``.

    ``transport`` replaces httpx's network transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        path: str = API_PATH,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            retry=retry,
            max_batch_size=max_batch_size,
            max_payload_bytes=max_payload_bytes,
            sleep=sleep,
        )
        self.url = base_url.rstrip("/") + "/" + path.lstrip("/")
        default_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            default_headers["x-api-key"] = api_key
        default_headers.update(headers or {})
        self._http = httpx.Client(
            headers=default_headers, timeout=httpx.Timeout(timeout), transport=transport
        )

    def _send(self, body: bytes) -> tuple[bytes, str | None]:
        # Our own id goes out so a failure can be matched with the server's logs even when the
        # answer never arrives; the server's id wins when it sends one back.
        sent_id = uuid.uuid4().hex
        try:
            response = self._http.post(self.url, content=body, headers={"X-Request-Id": sent_id})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectError(
                f"could not connect to {self.url}: {exc}", request_id=sent_id
            ) from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(
                f"no response from {self.url} in time: {exc}", request_id=sent_id
            ) from exc
        except httpx.TransportError as exc:
            raise TransportError(
                f"request to {self.url} failed: {exc}", request_id=sent_id
            ) from exc
        request_id = (
            response.headers.get("x-request-id")
            or response.headers.get("x-amzn-requestid")
            or sent_id
        )
        if not response.is_success:
            raise error_from_response(
                response.status_code,
                response.content,
                request_id=request_id,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        return response.content, request_id

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
