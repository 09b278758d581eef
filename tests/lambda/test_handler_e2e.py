"""The handler end to end: an API Gateway event -> the handler -> a real boto3 client -> the
local InvokeEndpoint stand-in -> the real model server serving the tiny model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from devtools.local_api import LocalApi
from devtools.processes import ServerProcess
from handler import ClassifyApi

LABELS = {"business", "entertainment", "health", "science_and_technology"}
HEADLINES = ["Stocks rally as the Fed holds rates", "A new vaccine trial shows promise"]


@pytest.mark.parametrize("payload_version", ["1.0", "2.0"])
def test_classifies_through_the_endpoint(
    api_front: LocalApi, make_api: Callable[..., ClassifyApi], events: Any, payload_version: str
) -> None:
    api = make_api(api_front.url)
    body = json.dumps({"inputs": HEADLINES})
    event = events.rest(body) if payload_version == "1.0" else events.http_v2(body)

    response = api(event, None)

    assert response["statusCode"] == 200, response["body"]
    predictions = events.json_body(response)
    assert len(predictions) == len(HEADLINES)
    assert all(p["label"] in LABELS and 0.0 <= p["score"] <= 1.0 for p in predictions)
    headers = response["headers"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["X-Request-Id"] == event["requestContext"]["requestId"]
    assert headers["Content-Type"].startswith("application/json")


def test_top_k_and_a_single_string(
    api_front: LocalApi, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    body = json.dumps({"inputs": HEADLINES[0], "parameters": {"top_k": 2}})

    response = make_api(api_front.url)(events.rest(body), None)

    assert response["statusCode"] == 200, response["body"]
    # One string with top_k set: its best-first list alone, as the transformers pipeline.
    ranked = events.json_body(response)
    assert [len(ranked), ranked[0]["score"] >= ranked[1]["score"]] == [2, True]


def test_a_caller_request_id_is_echoed_and_reaches_the_model_server(
    api_front: LocalApi,
    make_api: Callable[..., ClassifyApi],
    events: Any,
    model_server: ServerProcess,
) -> None:
    event = events.rest(json.dumps({"inputs": "x"}), headers={"X-Request-Id": "trace-42"})

    response = make_api(api_front.url)(event, None)

    assert response["headers"]["X-Request-Id"] == "trace-42"
    # One id across Lambda and container logs: it travels in SageMaker's custom attributes.
    assert '"request_id":"trace-42"' in model_server.log()


def test_a_model_server_4xx_passes_through_with_its_message(
    api_front: LocalApi, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    # The handler leaves parameter checks to the model server: its 400 comes back as a 400.
    body = json.dumps({"inputs": "x", "parameters": {"top_k": 0}})

    response = make_api(api_front.url)(events.http_v2(body), None)

    assert response["statusCode"] == 400, response["body"]
    error = events.json_body(response)["error"]
    assert error["code"] == "bad_request"
    assert error["message"] and "ModelError" not in error["message"]
    assert error["request_id"] == response["headers"]["X-Request-Id"]
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"


def test_a_missing_endpoint_is_503(
    api_front: LocalApi, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    api = make_api(api_front.url, endpoint_name="no-such-endpoint")

    response = api(events.rest(json.dumps({"inputs": "x"})), None)

    assert response["statusCode"] == 503
    assert events.json_body(response)["error"]["code"] == "not_ready"
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"


def test_logs_carry_sizes_and_never_the_texts(
    api_front: LocalApi,
    make_api: Callable[..., ClassifyApi],
    events: Any,
    api_logs: pytest.LogCaptureFixture,
) -> None:
    secret = "Zanzibar-unique-headline-7731"
    make_api(api_front.url)(events.rest(json.dumps({"inputs": [secret, "b"]})), None)
    make_api(api_front.url)(events.rest(json.dumps({"inputs": secret, "parameters": 3})), None)

    records = [r for r in api_logs.records if r.name == "news_api"]
    assert records, "the handler logged nothing"
    fields = [r.__dict__.get("fields", {}) for r in records]
    assert {k: fields[0][k] for k in ("status", "inputs")} == {"status": 200, "inputs": 2}
    assert fields[1]["code"] == "bad_request"
    assert secret not in api_logs.text
    assert all(secret not in json.dumps(f) for f in fields)
