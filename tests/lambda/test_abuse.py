"""Hostile requests the Lambda answers itself, at once and with a 4xx, never a 500: deep JSON,
NaN, header injection through the request id, and texts longer than the model can read."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from api_settings import Settings
from handler import ClassifyApi

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

ENDPOINT = "news-classifier"


def test_json_nested_thousands_deep_is_400_not_500(
    _clients: Callable[[Settings, str], SageMakerRuntimeClient], events: Any
) -> None:
    settings = Settings(endpoint_name=ENDPOINT)
    client = _clients(settings, "http://stubbed.invalid")
    body = '{"inputs": "a", "parameters": ' + "[" * 5000 + "]" * 5000 + "}"
    with Stubber(client):  # nothing queued: a call to SageMaker would fail the test
        response = ClassifyApi(settings, client)(events.rest(body), None)
    assert response["statusCode"] == 400, response["body"]
    assert json.loads(response["body"])["error"]["code"] == "bad_request"


def test_nan_and_infinity_are_not_json(stubbed: tuple[ClassifyApi, Stubber], events: Any) -> None:
    api, _ = stubbed
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"inputs": "a", "parameters": {{"top_k": {constant}}}}}'
        response = api(events.rest(body), None)
        assert response["statusCode"] == 400, constant
        assert constant in json.loads(response["body"])["error"]["message"]


def test_a_request_id_with_a_newline_is_not_echoed(
    stubbed: tuple[ClassifyApi, Stubber], events: Any
) -> None:
    api, _ = stubbed
    event = events.rest("", headers={"X-Request-Id": "abc\n"})
    response = api(event, None)
    assert response["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]


def test_long_texts_are_cut_before_sagemaker_and_short_ones_go_as_sent(
    _clients: Callable[[Settings, str], SageMakerRuntimeClient], events: Any
) -> None:
    settings = Settings(endpoint_name=ENDPOINT, max_text_chars=8)
    client = _clients(settings, "http://stubbed.invalid")
    answer = b'[{"label": "health", "score": 0.5}]'
    sent = [
        # Over the cap: re-encoded with the texts cut (the rest of the body kept).
        (
            '{"inputs": ["0123456789abc", "\\u00e9t\\u00e9"], "parameters": {"top_k": 2}}',
            b'{"inputs": ["01234567", "\\u00e9t\\u00e9"], "parameters": {"top_k": 2}}',
        ),
        # Within it: forwarded byte for byte.
        ('{"inputs":  "short"}', b'{"inputs":  "short"}'),
    ]
    with Stubber(client) as stubber:
        api = ClassifyApi(settings, client)
        for body, forwarded in sent:
            stubber.add_response(
                "invoke_endpoint",
                {
                    "Body": StreamingBody(io.BytesIO(answer), len(answer)),
                    "ContentType": "application/json",
                },
                expected_params={
                    "EndpointName": ENDPOINT,
                    "Body": forwarded,
                    "ContentType": "application/json",
                    "Accept": "application/json",
                    # request_id plus a timeout_ms that depends on the clock
                    # (tests/lambda/test_retries.py checks that arithmetic).
                    "CustomAttributes": ANY,
                },
            )
            event = events.rest(body, headers={"X-Request-Id": "req-1"})
            assert api(event, None)["statusCode"] == 200
        stubber.assert_no_pending_responses()
