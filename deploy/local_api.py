"""A local stand-in for API Gateway and the SageMaker runtime, around the real Lambda handler.

One HTTP server, two faces:

* ``POST /classify`` (and ``OPTIONS`` for CORS) plays API Gateway: it turns the HTTP request
  into a REST API proxy event (payload 1.0) and calls the Lambda handler with it.
* ``POST /endpoints/{name}/invocations`` plays the SageMaker runtime's InvokeEndpoint HTTP
  API: it forwards the body to the model server's ``/invocations`` and answers the way
  SageMaker does, errors included (a container error becomes a 424 ``ModelError`` carrying
  ``OriginalStatusCode`` and ``OriginalMessage``), so the handler's boto3 client sees what it
  would see on AWS.

``GET /ping`` answers 200 for health checks. Run it with
``python -m deploy.local_api --serve-url http://127.0.0.1:8080``; there the handler runs
exactly as in Lambda (``handler.handler``, settings from the environment) with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` pointing at this server. In-process users (tests, the
quick start) call ``start_local_api``. docs/api.md documents both.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from api_settings import Settings

LambdaHandler = Callable[[Mapping[str, Any], Any], Mapping[str, Any]]

LAMBDA_DIR = Path(__file__).resolve().parent.parent / "lambda"
DEFAULT_ENDPOINT_NAME = "news-classifier"
# What SageMaker allows a container per invocation, and the largest body it accepts.
SAGEMAKER_INVOCATION_TIMEOUT_S = 60.0
SAGEMAKER_MAX_BODY_BYTES = 6 * 1024 * 1024
# API Gateway REST APIs refuse bodies above 10 MB before any Lambda runs.
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
LOCAL_ACCOUNT_ID = "000000000000"
LOCAL_REGION = "us-east-1"
# Boto3 signs every request, so it needs credentials; this server checks no signature.
DUMMY_CREDENTIAL = "local"
# Headers SageMaker passes on to the container; it strips all others.
_FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")
_INVOCATIONS_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_TIMED_OUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. "
    "Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, "
    "and try again."
)

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class LocalApiServer(ThreadingHTTPServer):
    """The HTTP server; ``lambda_handler`` may be set after binding (its URL is needed first)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        serve_url: str,
        endpoint_name: str,
        invocation_timeout_s: float = SAGEMAKER_INVOCATION_TIMEOUT_S,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.serve_url = serve_url.rstrip("/")
        self.endpoint_name = endpoint_name
        self.invocation_timeout_s = invocation_timeout_s
        self.lambda_handler: LambdaHandler | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that hung up (its own timeout) is routine for a stand-in that emulates
        # timeouts; anything else is logged with its traceback instead of printed to stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s went away", client_address)
        else:
            logger.exception("error while serving %s", client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        # A wildcard bind is reachable through loopback; that is the URL callers here can use.
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        return f"http://{shown}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._send(_Reply(200, b'{"status":"ok"}', {"Content-Type": "application/json"}))
        else:
            self._send(_not_found(self.path))

    def do_POST(self) -> None:
        match = _INVOCATIONS_PATH.match(urlsplit(self.path).path)
        if match:
            self._send(self._invoke_endpoint(match.group(1)))
        else:
            self._gateway()

    def do_OPTIONS(self) -> None:
        self._gateway()

    def do_PUT(self) -> None:
        self._gateway()

    def do_DELETE(self) -> None:
        self._gateway()

    def log_message(self, format: str, *args: Any) -> None:
        # Access lines go to the logging tree (quiet by default), not to stderr.
        logger.debug("%s %s", self.address_string(), format % args)

    # --- API Gateway ---------------------------------------------------------------------

    def _gateway(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be taken as a request
            self._send(_gateway_error(413, "payload_too_large", "Request Too Long"))
            return
        body = self.rfile.read(length)  # read even when unrouted: the connection is reused
        path = urlsplit(self.path).path
        if path != "/classify":
            self._send(_not_found(path))
            return
        if self.server.lambda_handler is None:
            self._send(_gateway_error(503, "not_ready", "the Lambda handler is not set yet"))
            return
        event = self._rest_proxy_event(path, body)
        try:
            result = self.server.lambda_handler(event, LocalContext())
        except Exception:
            # API Gateway's answer to a Lambda that raised: 502, no details.
            logger.exception("the Lambda handler raised")
            self._send(_gateway_error(502, "upstream_error", "Internal server error"))
            return
        self._send(_lambda_result(result))

    def _rest_proxy_event(self, path: str, body: bytes) -> dict[str, Any]:
        """The event API Gateway sends a Lambda proxy integration (REST API, payload 1.0)."""
        multi: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            multi.setdefault(name, []).append(value)
        try:
            text: str | None = body.decode("utf-8") if body else None
            is_base64 = False
        except UnicodeDecodeError:
            # With binary media types configured, API Gateway passes such bodies as base64.
            text, is_base64 = base64.b64encode(body).decode("ascii"), True
        query = urlsplit(self.path).query
        return {
            "resource": path,
            "path": path,
            "httpMethod": self.command,
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
                "httpMethod": self.command,
                "path": f"/local{path}",
                "stage": "local",
                "protocol": self.request_version,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {
                    "sourceIp": self.client_address[0],
                    "userAgent": self.headers.get("User-Agent"),
                    "apiKey": self.headers.get("X-Api-Key"),
                },
                "domainName": self.headers.get("Host", ""),
            },
            "body": text,
            "isBase64Encoded": is_base64,
        }

    # --- SageMaker runtime ---------------------------------------------------------------

    def _invoke_endpoint(self, name: str) -> _Reply:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if name != self.server.endpoint_name:
            return _aws_error(
                400,
                "ValidationError",
                f"Endpoint {name} of account {LOCAL_ACCOUNT_ID} not found.",
            )
        if length > SAGEMAKER_MAX_BODY_BYTES:
            return _aws_error(400, "ValidationError", "Request payload is too large.")
        forwarded = {h: v for h in _FORWARDED_HEADERS if (v := self.headers.get(h)) is not None}
        target = urlsplit(self.server.serve_url)
        connection = http.client.HTTPConnection(
            target.hostname or "127.0.0.1",
            target.port or 80,
            timeout=self.server.invocation_timeout_s,
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
        headers = {
            "Content-Type": content_type,
            "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        if attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
        return _Reply(200, payload, headers)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


def _query(query: str) -> dict[str, str] | None:
    if not query:
        return None
    pairs = (part.partition("=") for part in query.split("&") if part)
    return {key: value for key, _, value in pairs}


def _lambda_result(result: Mapping[str, Any]) -> _Reply:
    """What API Gateway makes of a proxy integration's result."""
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    return _Reply(int(result.get("statusCode", 200)), body, headers)


def _not_found(path: str) -> _Reply:
    return _gateway_error(404, "not_found", f"no route for {path}; use POST /classify")


def _gateway_error(status: int, code: str, message: str) -> _Reply:
    """API Gateway's own errors, in the project's error shape (infra/template.yaml sets the
    same shape with gateway responses)."""
    request_id = str(uuid.uuid4())
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        "Access-Control-Allow-Origin": "*",
    }
    return _Reply(status, json.dumps(body).encode("utf-8"), headers)


def _aws_error(status: int, error_type: str, message: str, **members: Any) -> _Reply:
    """An error in the SageMaker runtime's wire format (rest-json): the type in a header,
    the members in the body."""
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": error_type,
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return _Reply(status, json.dumps({"message": message, **members}).encode("utf-8"), headers)


def _model_error(endpoint_name: str, original_status: int, original_message: str) -> _Reply:
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


@dataclass
class LocalApi:
    """A running local API front; ``url`` is its base URL. Close it when done."""

    server: LocalApiServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def endpoint_name(self) -> str:
        return self.server.endpoint_name

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> LocalApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def start_local_api(
    serve_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    endpoint_name: str = DEFAULT_ENDPOINT_NAME,
    settings: Settings | None = None,
    invocation_timeout_s: float = SAGEMAKER_INVOCATION_TIMEOUT_S,
) -> LocalApi:
    """Start the local API front in a background thread of this process.

    The handler here is a ``ClassifyApi`` of its own (``settings``, default: the handler's
    defaults for ``endpoint_name``) whose boto3 client, with dummy credentials, points at this
    server: nothing in this process's environment is changed, so several can run side by side.
    """
    _import_lambda_modules()
    import boto3

    from api_settings import Settings
    from handler import ClassifyApi
    from sagemaker_invoke import create_runtime_client

    server = LocalApiServer(
        (host, port),
        serve_url=serve_url,
        endpoint_name=endpoint_name,
        invocation_timeout_s=invocation_timeout_s,
    )
    settings = settings or Settings(endpoint_name=endpoint_name)
    session = boto3.Session(
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        region_name=LOCAL_REGION,
    )
    client = create_runtime_client(settings, session=session, endpoint_url=server.url)
    server.lambda_handler = ClassifyApi(settings, client)
    # A short poll interval: close() returns within it (tests start and stop many of these).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-api", daemon=True
    )
    thread.start()
    return LocalApi(server=server, thread=thread)


def _import_lambda_modules() -> None:
    # lambda/ holds plain modules (``lambda`` is a keyword, so it cannot be a package); in
    # Lambda they sit at the root of the code bundle, here they need the folder on the path.
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local_api",
        description="Local API Gateway + SageMaker runtime stand-in around the Lambda handler.",
    )
    parser.add_argument(
        "--serve-url", required=True, help="the model server, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (0: any free)")
    parser.add_argument(
        "--endpoint-name",
        default=DEFAULT_ENDPOINT_NAME,
        help="the endpoint name the InvokeEndpoint stand-in answers to",
    )
    parser.add_argument(
        "--invocation-timeout",
        type=float,
        default=SAGEMAKER_INVOCATION_TIMEOUT_S,
        help="seconds the model server gets per invocation, as on SageMaker",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted, running the handler exactly as Lambda does."""
    args = _parse_args(argv)
    _import_lambda_modules()
    from api_settings import Settings, SettingsError

    # This process is the Lambda's stand-in: its environment is the function's configuration,
    # checked before anything starts (in Lambda, at cold start).
    try:
        Settings.from_environ({**os.environ, "ENDPOINT_NAME": args.endpoint_name})
    except SettingsError as exc:
        sys.stderr.write(f"invalid Lambda settings: {exc}\n")
        return 2
    try:
        server = LocalApiServer(
            (args.host, args.port),
            serve_url=args.serve_url,
            endpoint_name=args.endpoint_name,
            invocation_timeout_s=args.invocation_timeout,
        )
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}: {exc}\n")
        return 2
    # Credentials and region are dummies (nothing here checks them); the handler's client finds
    # this server through botocore's standard endpoint variable, as it would find AWS's.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIAL)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIAL)
    os.environ.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = server.url
    os.environ["ENDPOINT_NAME"] = args.endpoint_name
    import handler

    server.lambda_handler = handler.handler
    sys.stderr.write(
        f"local API on {server.url}: POST /classify (through the Lambda handler), "
        f"POST /endpoints/{args.endpoint_name}/invocations -> {args.serve_url}/invocations\n"
    )
    # As a container's PID 1 the process would ignore SIGTERM unless it handles it, and
    # `docker compose stop` would wait for its kill timeout.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
