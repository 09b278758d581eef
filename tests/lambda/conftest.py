"""Fixtures for the Lambda handler: API Gateway events, local fronts, a scriptable model server.

``api_front`` is the real path: handler -> boto3 -> the InvokeEndpoint stand-in -> the real
model server (``model_server``). ``fault_front`` swaps the model server for ``FakeModelServer``,
a hand-written server that answers what a test tells it to (an error status, a delay), for the
faults a healthy model server does not produce on demand.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from api_logging import LOGGER_NAME
from api_settings import Settings
from devtools.local_api import DEFAULT_ENDPOINT_NAME, LocalApi, start_local_api
from handler import ClassifyApi
from sagemaker_invoke import create_runtime_client

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

ENDPOINT = DEFAULT_ENDPOINT_NAME


class Events:
    """Event builders, handed to tests by the ``events`` fixture (this folder cannot be
    imported by name: ``lambda`` is a keyword)."""

    @staticmethod
    def rest(
        body: str | None,
        *,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        base64_encoded: bool = False,
    ) -> dict[str, Any]:
        """A REST API proxy event (payload 1.0), as API Gateway sends it."""
        headers = {"Content-Type": "application/json", **(headers or {})}
        return {
            "resource": "/classify",
            "path": "/classify",
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/classify",
                "httpMethod": method,
                "stage": "prod",
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "identity": {"sourceIp": "192.0.2.1", "apiKey": "test-key"},
            },
            "body": body,
            "isBase64Encoded": base64_encoded,
        }

    @staticmethod
    def http_v2(
        body: str | None, *, method: str = "POST", headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """An HTTP API event (payload 2.0): lower-case headers, method in requestContext.http."""
        headers = {"content-type": "application/json", **(headers or {})}
        return {
            "version": "2.0",
            "routeKey": "POST /classify",
            "rawPath": "/classify",
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "http": {"method": method, "path": "/classify", "protocol": "HTTP/1.1"},
                "requestId": "JKJaXmPLvHcESHA=",
                "stage": "$default",
            },
            "body": body,
            "isBase64Encoded": False,
        }

    @staticmethod
    def json_body(response: dict[str, Any]) -> Any:
        return json.loads(response["body"])


@pytest.fixture
def events() -> type[Events]:
    return Events


@dataclass
class FakeContext:
    aws_request_id: str = "lambda-request-id"


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b'[{"label": "business", "score": 0.9}]'
    delay_s: float = 0.0


@dataclass
class FakeModelServer:
    """A stand-in model server: ``/invocations`` answers ``script``; counts the calls."""

    url: str
    script: Scripted = field(default_factory=Scripted)
    calls: int = 0
    # The X-Amzn-SageMaker-Custom-Attributes header of the last call, as the container got it.
    custom_attributes: str | None = None


@pytest.fixture(scope="session")
def _fake_model_server() -> Iterator[FakeModelServer]:
    fake: FakeModelServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fake.calls += 1
            fake.custom_attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
            script = fake.script
            time.sleep(script.delay_s)
            self.send_response(script.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            # Tests that time the caller out leave answers nobody reads: not an error here.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    fake = FakeModelServer(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_model(_fake_model_server: FakeModelServer) -> FakeModelServer:
    """The scriptable model server, reset to a healthy 200 for each test."""
    _fake_model_server.script = Scripted()
    _fake_model_server.calls = 0
    _fake_model_server.custom_attributes = None
    return _fake_model_server


@pytest.fixture(scope="session")
def api_front(model_server: Any) -> Iterator[LocalApi]:
    """The local API front forwarding to the real model server (tiny model)."""
    with start_local_api(model_server.url) as api:
        yield api


@pytest.fixture(scope="session")
def _fault_front(_fake_model_server: FakeModelServer) -> Iterator[LocalApi]:
    # A short SageMaker invocation timeout, so the "container timed out" case takes a second.
    with start_local_api(_fake_model_server.url, invocation_timeout_s=1.0) as api:
        yield api


@pytest.fixture
def fault_front(_fault_front: LocalApi, fake_model: FakeModelServer) -> LocalApi:
    """The local API front forwarding to ``fake_model`` (reset for this test)."""
    return _fault_front


@pytest.fixture(scope="session")
def _clients() -> Callable[[Settings, str], SageMakerRuntimeClient]:
    """Runtime clients with dummy credentials, one per (settings, URL): building a boto3
    client is slow on a busy machine, and the clients hold no state between calls."""
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )

    @functools.cache
    def client(settings: Settings, url: str) -> SageMakerRuntimeClient:
        return create_runtime_client(settings, session=session, endpoint_url=url)

    return client


@pytest.fixture
def make_api(
    _clients: Callable[[Settings, str], SageMakerRuntimeClient],
) -> Callable[..., ClassifyApi]:
    """Build a handler with its own settings whose real client talks to ``runtime_url``."""

    def build(runtime_url: str, **settings: Any) -> ClassifyApi:
        chosen = Settings(**{"endpoint_name": ENDPOINT, **settings})
        return ClassifyApi(chosen, _clients(chosen, runtime_url))

    return build


@pytest.fixture
def stubbed(
    _clients: Callable[[Settings, str], SageMakerRuntimeClient],
) -> Iterator[tuple[ClassifyApi, Stubber]]:
    """A handler whose client is held by botocore's Stubber: any unplanned call fails."""
    settings = Settings(endpoint_name=ENDPOINT, max_body_bytes=2048, max_inputs=4)
    client = _clients(settings, "http://stubbed.invalid")
    with Stubber(client) as stubber:
        yield ClassifyApi(settings, client), stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def api_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of the API logger, captured once whether or not it propagates."""
    logger = logging.getLogger(LOGGER_NAME)
    propagate = logger.propagate
    logger.propagate = False
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate = propagate
