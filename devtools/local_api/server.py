"""The local API front's HTTP server: routes each request to API Gateway's face or the
SageMaker runtime's, and ``start_local_api`` for in-process users (tests, the quick start)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devtools.local_api.gateway import (
    API_GATEWAY_MAX_BODY_BYTES,
    LocalContext,
    gateway_error,
    lambda_result,
    not_found,
    rest_proxy_event,
)
from devtools.local_api.runtime import (
    INVOCATIONS_PATH,
    SAGEMAKER_INVOCATION_TIMEOUT_S,
    invoke_endpoint,
)
from devtools.local_api.wire import LOCAL_REGION, Reply
from devtools.paths import REPO_ROOT

if TYPE_CHECKING:
    from api_settings import Settings

LambdaHandler = Callable[[Mapping[str, Any], Any], Mapping[str, Any]]

LAMBDA_DIR = REPO_ROOT / "lambda"
DEFAULT_ENDPOINT_NAME = "news-classifier"
# Boto3 signs every request, so it needs credentials; this server checks no signature.
DUMMY_CREDENTIAL = "local"

logger = logging.getLogger(__name__)


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
            self._send(Reply(200, b'{"status":"ok"}', {"Content-Type": "application/json"}))
        else:
            self._send(not_found(self.path))

    def do_POST(self) -> None:
        match = INVOCATIONS_PATH.match(urlsplit(self.path).path)
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

    def _gateway(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be taken as a request
            self._send(gateway_error(413, "payload_too_large", "Request Too Long"))
            return
        body = self.rfile.read(length)  # read even when unrouted: the connection is reused
        path = urlsplit(self.path).path
        if path != "/classify":
            self._send(not_found(path))
            return
        if self.server.lambda_handler is None:
            self._send(gateway_error(503, "not_ready", "the Lambda handler is not set yet"))
            return
        event = rest_proxy_event(self, path, body)
        try:
            result = self.server.lambda_handler(event, LocalContext())
        except Exception:
            # API Gateway's answer to a Lambda that raised: 502, no details.
            logger.exception("the Lambda handler raised")
            self._send(gateway_error(502, "upstream_error", "Internal server error"))
            return
        self._send(lambda_result(result))

    def _invoke_endpoint(self, name: str) -> Reply:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return invoke_endpoint(
            name,
            self.headers,
            body,
            endpoint_name=self.server.endpoint_name,
            serve_url=self.server.serve_url,
            timeout_s=self.server.invocation_timeout_s,
        )

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


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
    import_lambda_modules()
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


def import_lambda_modules() -> None:
    # lambda/ holds plain modules (``lambda`` is a keyword, so it cannot be a package); in
    # Lambda they sit at the root of the code bundle, here they need the folder on the path.
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))
