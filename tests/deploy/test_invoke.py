"""``invoke``: texts to the endpoint (sagemaker-runtime on moto) or to the API URL."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from deploy import cli
from deploy.aws import AwsClients
from tests.deploy.support import ACCOUNT, REGION, Recorded, common_flags, factory

PREDICTIONS = [{"label": "business", "score": 0.91}, {"label": "health", "score": 0.88}]
TEXTS = ["Fed raises rates", "New vaccine approved"]


def _queue_endpoint_result(moto_url: str, body: Any) -> None:
    import urllib.request

    payload = {"account_id": ACCOUNT, "region": REGION, "results": [{"Body": json.dumps(body)}]}
    request = urllib.request.Request(
        f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_invoke_endpoint_sends_the_project_request_and_prints_predictions(
    recorded: Recorded, moto_url: str
) -> None:
    _queue_endpoint_result(moto_url, PREDICTIONS)
    out = io.StringIO()

    code = cli.main(
        ["invoke", *TEXTS, *common_flags(moto_url), "--endpoint-name", "my-endpoint"],
        aws=factory(recorded.aws),
        stdout=out,
    )

    assert code == 0
    sent = recorded.calls.params("InvokeEndpoint")
    assert sent["EndpointName"] == "my-endpoint"
    assert (sent["ContentType"], sent["Accept"]) == ("application/json", "application/json")
    # top_k 1 is the default: sent without parameters, so the answer is flat (docs/api.md).
    assert json.loads(sent["Body"]) == {"inputs": TEXTS}
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"text": TEXTS[0], "prediction": PREDICTIONS[0]},
        {"text": TEXTS[1], "prediction": PREDICTIONS[1]},
    ]


class _FakeApi(BaseHTTPRequestHandler):
    """Plays API Gateway's /classify: records the request, answers from ``reply``."""

    received: ClassVar[list[tuple[str, dict[str, str], Any]]] = []
    reply: ClassVar[tuple[int, Any]] = (200, PREDICTIONS)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.received.append((self.path, headers, body))
        status, payload = self.reply
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    _FakeApi.received = []
    _FakeApi.reply = (200, PREDICTIONS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    server.shutdown()
    server.server_close()


def test_invoke_api_posts_to_classify_with_the_api_key(
    aws: AwsClients, fake_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSCLF_API_KEY", "secret-key")
    out = io.StringIO()

    code = cli.main(
        ["invoke", "--api-url", fake_api, "--top-k", "2"],
        aws=factory(aws),
        stdout=out,
        stdin=io.StringIO("\n".join(TEXTS) + "\n\n"),
    )

    assert code == 0
    ((path, headers, body),) = _FakeApi.received
    assert path == "/prod/classify"
    assert headers["x-api-key"] == "secret-key"
    assert body == {"inputs": TEXTS, "parameters": {"top_k": 2}}
    assert len(out.getvalue().splitlines()) == 2


def test_invoke_api_error_is_reported_with_its_code(
    aws: AwsClients, fake_api: str, caplog: pytest.LogCaptureFixture
) -> None:
    _FakeApi.reply = (
        429,
        {"error": {"code": "overloaded", "message": "slow down", "request_id": "r"}},
    )

    code = cli.main(
        ["invoke", "hello", "--api-url", fake_api], aws=factory(aws), stdout=io.StringIO()
    )

    assert code == 1
    assert "429: overloaded: slow down" in caplog.text


def test_invoke_refuses_a_non_http_api_url(aws: AwsClients) -> None:
    code = cli.main(["invoke", "hi", "--api-url", "file:///etc/passwd"], aws=factory(aws))
    assert code == 2
