"""Requests the handler answers itself, before SageMaker: the client here is held by
botocore's Stubber with nothing queued, so any call to SageMaker would fail the test."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from handler import ClassifyApi

CORS_ORIGIN = "Access-Control-Allow-Origin"


def assert_error(response: dict[str, Any], events: Any, status: int, code: str) -> None:
    assert response["statusCode"] == status, response["body"]
    error = events.json_body(response)["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response["headers"]["X-Request-Id"]
    assert response["headers"][CORS_ORIGIN] == "*"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty body"),
        ("{not json", "invalid JSON"),
        ('["a", "b"]', "not an object"),
        ('{"texts": ["a"]}', "no inputs"),
        ('{"inputs": []}', "empty inputs"),
        ('{"inputs": [1, 2]}', "inputs not strings"),
        ('{"inputs": null}', "null inputs"),
        ('{"inputs": "a", "parameters": [1]}', "parameters not an object"),
    ],
)
def test_malformed_bodies_are_400(
    stubbed: tuple[ClassifyApi, Stubber], events: Any, body: str, reason: str
) -> None:
    api, _ = stubbed
    assert_error(api(events.rest(body), None), events, 400, "bad_request")


def test_invalid_utf8_is_400(stubbed: tuple[ClassifyApi, Stubber], events: Any) -> None:
    api, _ = stubbed
    body = base64.b64encode(b'{"inputs": "\xff\xfe"}').decode()
    response = api(events.rest(body, base64_encoded=True), None)
    assert_error(response, events, 400, "bad_request")
    assert "UTF-8" in events.json_body(response)["error"]["message"]


def test_invalid_base64_is_400(stubbed: tuple[ClassifyApi, Stubber], events: Any) -> None:
    api, _ = stubbed
    event = events.rest("@@@", base64_encoded=True)
    response = api(event, None)
    assert_error(response, events, 400, "bad_request")
    assert response["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]


def test_a_body_over_the_byte_limit_is_413(
    stubbed: tuple[ClassifyApi, Stubber], events: Any
) -> None:
    api, _ = stubbed  # max_body_bytes=2048
    body = json.dumps({"inputs": "x" * 3000})
    assert_error(api(events.http_v2(body), None), events, 413, "payload_too_large")


def test_too_many_inputs_is_413(stubbed: tuple[ClassifyApi, Stubber], events: Any) -> None:
    api, _ = stubbed  # max_inputs=4
    body = json.dumps({"inputs": ["a"] * 5})
    assert_error(api(events.rest(body), None), events, 413, "payload_too_large")


def test_an_unsupported_content_type_is_415(
    stubbed: tuple[ClassifyApi, Stubber], events: Any
) -> None:
    api, _ = stubbed
    event = events.rest('{"inputs": "a"}', headers={"Content-Type": "text/plain"})
    assert_error(api(event, None), events, 415, "unsupported_media_type")


def test_an_unacceptable_accept_is_406(stubbed: tuple[ClassifyApi, Stubber], events: Any) -> None:
    api, _ = stubbed
    event = events.http_v2('{"inputs": "a"}', headers={"accept": "text/html"})
    assert_error(api(event, None), events, 406, "not_acceptable")


def test_other_methods_are_405(stubbed: tuple[ClassifyApi, Stubber], events: Any) -> None:
    api, _ = stubbed
    assert_error(api(events.rest(None, method="GET"), None), events, 405, "method_not_allowed")


@pytest.mark.parametrize("payload_version", ["1.0", "2.0"])
def test_cors_preflight_is_answered_without_sagemaker(
    stubbed: tuple[ClassifyApi, Stubber], events: Any, payload_version: str
) -> None:
    api, _ = stubbed
    build = events.rest if payload_version == "1.0" else events.http_v2
    response = api(build(None, method="OPTIONS"), None)
    assert response["statusCode"] == 204
    headers = response["headers"]
    assert headers[CORS_ORIGIN] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "X-Api-Key" in headers["Access-Control-Allow-Headers"]


def test_a_valid_request_reaches_sagemaker_with_the_right_call(
    stubbed: tuple[ClassifyApi, Stubber], events: Any
) -> None:
    api, stubber = stubbed
    body = '{"inputs": ["a", "b"], "parameters": {"top_k": 1}}'
    answer = b'[{"label": "health", "score": 0.5}, {"label": "health", "score": 0.6}]'
    stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "application/json"},
        expected_params={
            "EndpointName": "news-classifier",
            "Body": body.encode(),
            "ContentType": "application/json",
            "Accept": "application/json",
            # The container may take the read timeout (12 s) less 0.5 s for the answer.
            "CustomAttributes": "request_id=req-1;timeout_ms=11500",
        },
    )
    event = events.rest(body, headers={"X-Request-Id": "req-1", "Accept": "application/json"})

    response = api(event, None)

    assert response["statusCode"] == 200
    assert response["body"] == answer.decode()
    assert response["headers"]["X-Request-Id"] == "req-1"


def test_request_ids_fall_back_to_the_gateway_then_lambda(
    stubbed: tuple[ClassifyApi, Stubber], events: Any
) -> None:
    api, _ = stubbed
    event = events.rest("", headers={"X-Request-Id": "spaces are not allowed"})
    assert api(event, None)["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]
    del event["requestContext"]["requestId"]

    class Context:
        aws_request_id = "lambda-id"

    assert api(event, Context())["headers"]["X-Request-Id"] == "lambda-id"
