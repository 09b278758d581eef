"""EndpointClient with botocore's Stubber (faults) and through the local InvokeEndpoint server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from client import (
    NO_RETRIES,
    ApiClient,
    BadRequestError,
    EndpointClient,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    RetryPolicy,
)
from client.endpoint import make_runtime_client
from devtools.artifacts import LABELS
from devtools.local_api import DEFAULT_ENDPOINT_NAME, LocalApi, start_local_api
from devtools.processes import ServerProcess

ENDPOINT = "news-classifier-test"


def runtime_client(endpoint_url: str | None = None) -> Any:
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    return session.client("sagemaker-runtime", endpoint_url=endpoint_url)


def ok_response(predictions: list[Any]) -> dict[str, Any]:
    raw = json.dumps(predictions).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def expected_call(texts: list[str], top_k: int = 1) -> dict[str, Any]:
    body = json.dumps(
        {"inputs": texts, "parameters": {"top_k": top_k}}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    return {
        "EndpointName": ENDPOINT,
        "ContentType": "application/json",
        "Accept": "application/json",
        "CustomAttributes": ANY,
        "Body": body,
    }


def model_error(stubber: Stubber, status: int, code: str, request_id: str = "container-id") -> None:
    """What SageMaker answers when the container answered ``status``: a 424 ModelError."""
    body = {"error": {"code": code, "message": f"{code} here", "request_id": request_id}}
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error ({status}) from primary",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": status, "OriginalMessage": json.dumps(body)},
    )


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = runtime_client()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_invoke_endpoint_success(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    stubber.add_response(
        "invoke_endpoint",
        ok_response([[{"label": "health", "score": 0.7}, {"label": "business", "score": 0.2}]]),
        expected_call(["Ebola outbreak"], top_k=2),
    )
    endpoint = EndpointClient(ENDPOINT, sagemaker_runtime=runtime)
    [prediction] = endpoint.classify(["Ebola outbreak"], top_k=2)
    assert prediction.label == "health"
    assert [item.label for item in prediction.labels] == ["health", "business"]


def test_a_container_429_is_retried(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    model_error(stubber, 429, "overloaded")
    stubber.add_client_error(
        "invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400
    )
    stubber.add_response("invoke_endpoint", ok_response([{"label": "business", "score": 0.9}]))
    sleeps: list[float] = []
    endpoint = EndpointClient(
        ENDPOINT,
        sagemaker_runtime=runtime,
        retry=RetryPolicy(backoff_base=0.01),
        sleep=sleeps.append,
    )
    assert endpoint.classify("Stocks fall")[0].label == "business"
    assert len(sleeps) == 2


def test_container_errors_keep_their_code_and_request_id(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    model_error(stubber, 400, "bad_request", request_id="abc123")
    endpoint = EndpointClient(ENDPOINT, sagemaker_runtime=runtime, retry=NO_RETRIES)
    with pytest.raises(BadRequestError) as info:
        endpoint.classify("x")
    assert (info.value.status_code, info.value.code, info.value.request_id) == (
        400,
        "bad_request",
        "abc123",
    )


def test_sagemaker_errors_map_onto_the_tree(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="Endpoint news-classifier-test of account 1 not found.",
        http_status_code=400,
        response_meta={"RequestId": "aws-req-1"},
    )
    stubber.add_client_error(
        "invoke_endpoint", service_error_code="ModelNotReadyException", http_status_code=429
    )
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="Request body is too large",
        http_status_code=413,
    )
    endpoint = EndpointClient(ENDPOINT, sagemaker_runtime=runtime, retry=NO_RETRIES)
    with pytest.raises(NotFoundError) as missing:
        endpoint.classify("x")
    assert missing.value.code == "endpoint_not_found" and missing.value.request_id == "aws-req-1"
    with pytest.raises(OverloadedError):
        endpoint.classify("x")
    with pytest.raises(PayloadTooLargeError) as large:
        endpoint.classify("x")
    assert large.value.code == "ValidationError"


def test_the_runtime_client_has_botocore_retries_off() -> None:
    runtime = make_runtime_client(region="eu-west-1", timeout=5.0)
    assert runtime.meta.config.retries["total_max_attempts"] == 1
    assert runtime.meta.config.read_timeout == 5.0
    assert runtime.meta.region_name == "eu-west-1"


# --- the local API front (API Gateway + InvokeEndpoint stand-in) over the real model server ---


@pytest.fixture(scope="module")
def local_api(model_server: ServerProcess) -> Iterator[LocalApi]:
    with start_local_api(model_server.url) as api:
        yield api


def test_endpoint_mode_through_the_local_invoke_endpoint(
    local_api: LocalApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dummy credentials: boto3 signs every request; the local stand-in checks no signature.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    endpoint = EndpointClient(
        DEFAULT_ENDPOINT_NAME, region="us-east-1", endpoint_url=local_api.url, max_batch_size=2
    )
    texts = ["Fed raises rates", "Ebola outbreak spreads", "New Marvel trailer"]
    predictions = endpoint.classify(texts, top_k=2)
    assert [p.text for p in predictions] == texts
    assert all(len(p.labels) == 2 and p.label in LABELS for p in predictions)
    with pytest.raises(BadRequestError) as info:
        endpoint.classify(["ok", 7])  # type: ignore[list-item]
    assert info.value.code == "bad_request" and info.value.request_id


def test_api_mode_through_the_local_api_gateway(local_api: LocalApi) -> None:
    with ApiClient(local_api.url, api_key="local-key", retry=NO_RETRIES) as api:
        predictions = api.classify(["Apple unveils new iPhone", "Oil prices drop"])
        assert [p.label in LABELS for p in predictions] == [True, True]
        with pytest.raises(BadRequestError) as info:
            api.classify(["ok", 7])  # type: ignore[list-item]
        assert info.value.code == "bad_request" and info.value.request_id
