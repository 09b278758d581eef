"""Every failure of the SageMaker call maps to an honest status in the project's error shape.

Faults a container can cause go through the real path (handler -> boto3 -> InvokeEndpoint
stand-in -> ``FakeModelServer`` answering what the test scripts); faults only AWS produces
(throttling, a model not ready) come from botocore's Stubber.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.stub import Stubber

from devtools.local_api import LocalApi
from devtools.processes import free_port
from handler import ClassifyApi

OVERLOADED_BODY = json.dumps(
    {"error": {"code": "overloaded", "message": "queue is full", "request_id": "r"}}
).encode()
TOO_LARGE_BODY = json.dumps(
    {"error": {"code": "payload_too_large", "message": "too many tokens", "request_id": "r"}}
).encode()


def classify(api: ClassifyApi, events: Any) -> dict[str, Any]:
    return api(events.rest(json.dumps({"inputs": ["a headline"]})), None)


def error_of(response: dict[str, Any], events: Any) -> tuple[int, str]:
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    error = events.json_body(response)["error"]
    assert error["request_id"] == response["headers"]["X-Request-Id"]
    return response["statusCode"], error["code"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b"<html>bad</html>", (400, "bad_request")),
        (413, TOO_LARGE_BODY, (413, "payload_too_large")),
        (429, OVERLOADED_BODY, (429, "overloaded")),
        (500, b"Traceback (most recent call last): ...", (502, "upstream_error")),
        (503, b'{"error": {"code": "not_ready"}}', (502, "upstream_error")),
        (504, b'{"error": {"code": "timeout"}}', (504, "timeout")),
    ],
)
def test_model_errors_map_by_their_original_status(
    fault_front: LocalApi,
    fake_model: Any,
    make_api: Callable[..., ClassifyApi],
    events: Any,
    status: int,
    body: bytes,
    expected: tuple[int, str],
) -> None:
    fake_model.script.status, fake_model.script.body = status, body

    response = classify(make_api(fault_front.url), events)

    assert error_of(response, events) == expected
    assert fake_model.calls == 1, "a ModelError must not be retried"
    message = events.json_body(response)["error"]["message"]
    assert "Traceback" not in message and "<html>" not in message and "arn:" not in message


def test_a_model_4xx_keeps_the_model_servers_message(
    fault_front: LocalApi, fake_model: Any, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    fake_model.script.status, fake_model.script.body = 413, TOO_LARGE_BODY
    response = classify(make_api(fault_front.url), events)
    assert events.json_body(response)["error"]["message"] == "too many tokens"


def test_a_model_429_says_when_to_retry(
    fault_front: LocalApi, fake_model: Any, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    fake_model.script.status, fake_model.script.body = 429, OVERLOADED_BODY
    response = classify(make_api(fault_front.url, retry_after_s=3), events)
    assert response["headers"]["Retry-After"] == "3"


def test_a_container_past_sagemakers_invocation_timeout_is_504(
    fault_front: LocalApi, fake_model: Any, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    fake_model.script.delay_s = 1.5  # the stand-in's invocation timeout is 1 s here
    response = classify(make_api(fault_front.url), events)
    assert error_of(response, events) == (504, "timeout")


def test_no_answer_within_the_read_timeout_is_504(
    fault_front: LocalApi, fake_model: Any, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    fake_model.script.delay_s = 0.8
    api = make_api(fault_front.url, read_timeout_s=0.3, max_attempts=1)
    assert error_of(classify(api, events), events) == (504, "timeout")


def test_an_unreachable_container_is_502(
    fault_front: LocalApi,
    make_api: Callable[..., ClassifyApi],
    events: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fault_front.server, "serve_url", f"http://127.0.0.1:{free_port()}")
    response = classify(make_api(fault_front.url, max_attempts=1), events)
    assert error_of(response, events) == (502, "upstream_error")


def test_an_unreachable_sagemaker_is_502(make_api: Callable[..., ClassifyApi], events: Any) -> None:
    api = make_api(f"http://127.0.0.1:{free_port()}", max_attempts=1)
    assert error_of(classify(api, events), events) == (502, "upstream_error")


@pytest.mark.parametrize(
    ("aws_code", "http_status", "message", "expected"),
    [
        ("ThrottlingException", 400, "", (429, "overloaded")),
        ("ModelNotReadyException", 429, "Model not ready", (503, "not_ready")),
        ("ValidationError", 400, "Endpoint ep of account 1 not found.", (503, "not_ready")),
        ("ValidationError", 400, "1 validation error detected", (502, "upstream_error")),
        ("InternalFailure", 500, "internal failure", (502, "upstream_error")),
        ("ServiceUnavailable", 503, "unavailable", (502, "upstream_error")),
        ("InternalDependencyException", 530, "dependency", (502, "upstream_error")),
        ("AccessDeniedException", 403, "not authorized", (502, "upstream_error")),
    ],
)
def test_aws_errors_map_to_honest_statuses(
    stubbed: tuple[ClassifyApi, Stubber],
    events: Any,
    aws_code: str,
    http_status: int,
    message: str,
    expected: tuple[int, str],
) -> None:
    api, stubber = stubbed
    # Throttling is retried (the request never ran): it answers 429 once every attempt was.
    attempts = api.settings.max_attempts if aws_code == "ThrottlingException" else 1
    for _ in range(attempts):
        stubber.add_client_error(
            "invoke_endpoint",
            service_error_code=aws_code,
            service_message=message,
            http_status_code=http_status,
        )

    response = classify(api, events)

    assert error_of(response, events) == expected
    if expected[0] in (429, 503) and aws_code != "ValidationError":
        assert response["headers"]["Retry-After"] == "1"
    assert "account" not in events.json_body(response)["error"]["message"]


def test_a_bug_is_500_without_details(
    stubbed: tuple[ClassifyApi, Stubber], events: Any, api_logs: pytest.LogCaptureFixture
) -> None:
    api, stubber = stubbed
    # A body that is not a stream: the handler's read() fails like a bug of ours would.
    stubber.add_response("invoke_endpoint", {"Body": b"not a stream"})

    response = classify(api, events)

    assert error_of(response, events) == (500, "internal_error")
    assert events.json_body(response)["error"]["message"] == "internal error"
    assert any(record.exc_info for record in api_logs.records), "no traceback logged"
