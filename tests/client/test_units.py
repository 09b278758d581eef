"""The client's pure parts: chunking, response parsing, the error table, the retry policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from client import (
    AuthenticationError,
    BadRequestError,
    ConnectError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidResponseError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    RetryPolicy,
)
from client.chunking import chunk_texts, encoded_size
from client.errors import error_from_response
from client.models import build_request_body, parse_predictions
from client.retry import parse_retry_after


def test_chunks_respect_the_count_limit_and_keep_order() -> None:
    texts = [f"t{i}" for i in range(10)]
    chunks = list(chunk_texts(texts, max_count=4, max_bytes=10_000))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [t for c in chunks for t in c] == texts


def test_chunks_respect_the_byte_limit_measured_as_utf8_json() -> None:
    texts = ["é" * 40] * 6  # 80 bytes of UTF-8 each, plus quotes and a comma
    limit = 64 + 2 * encoded_size(texts[0])
    chunks = list(chunk_texts(texts, max_count=100, max_bytes=limit))
    assert [len(c) for c in chunks] == [2, 2, 2]
    for chunk in chunks:
        assert len(build_request_body(chunk, top_k=1)) <= limit


def test_a_text_over_the_byte_limit_goes_alone() -> None:
    chunks = list(chunk_texts(["a", "b" * 500, "c"], max_count=10, max_bytes=100))
    assert [list(c) for c in chunks] == [["a"], ["b" * 500], ["c"]]


def test_parse_top1_and_topk_elements() -> None:
    body = json.dumps(
        [
            {"label": "business", "score": 0.9},
            [{"label": "health", "score": 0.6}, {"label": "business", "score": 0.3}],
        ]
    ).encode()
    first, second = parse_predictions(body, ["a", "b"])
    assert (first.text, first.label, first.score) == ("a", "business", 0.9)
    assert second.label == "health"
    assert [item.label for item in second.labels] == ["health", "business"]
    assert second.to_dict()["labels"][1] == {"label": "business", "score": 0.3}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'[{"label": "x", "score": 1}]',
        b'[{"label": 1, "score": 1}, {}]',
        b"[[], []]",
    ],
)
def test_a_body_off_contract_is_an_invalid_response(body: bytes) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_predictions(body, ["a", "b"], request_id="r1")
    assert info.value.code == "invalid_response"
    assert info.value.request_id == "r1"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "bad_request", BadRequestError),
        (413, "payload_too_large", PayloadTooLargeError),
        (429, "overloaded", OverloadedError),
        (500, "internal_error", InternalServerError),
        (503, "not_ready", NotReadyError),
        (504, "timeout", GatewayTimeoutError),
    ],
)
def test_the_error_shape_maps_to_its_class(status: int, code: str, expected: type) -> None:
    body = json.dumps({"error": {"code": code, "message": "m", "request_id": "rid"}}).encode()
    error = error_from_response(status, body, request_id="header-id", retry_after=2.0)
    assert type(error) is expected
    assert (error.status_code, error.code, error.message, error.request_id) == (
        status,
        code,
        "m",
        "rid",
    )
    assert error.retry_after == 2.0
    assert "rid" in str(error) and code in str(error)


def test_api_gateway_answers_without_our_shape_map_by_status() -> None:
    error = error_from_response(403, b'{"message": "Forbidden"}', request_id="apigw-id")
    assert isinstance(error, AuthenticationError)
    assert (error.code, error.message, error.request_id) == ("forbidden", "Forbidden", "apigw-id")
    throttled = error_from_response(429, b'{"message": "Too Many Requests"}')
    assert isinstance(throttled, OverloadedError)
    odd = error_from_response(418, b"<html>")
    assert isinstance(odd, BadRequestError) and odd.code == "http_418"


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now=now) == 5.0


def test_retry_policy_retries_only_what_is_safe() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base=0.1, backoff_max=1.0)
    overloaded = error_from_response(429, b"", retry_after=None)
    for attempt in range(3):
        delay = policy.delay_for(overloaded, attempt)
        assert delay is not None and 0.0 <= delay <= min(1.0, 0.1 * 2**attempt)
    assert policy.delay_for(overloaded, 3) is None  # out of retries
    assert policy.delay_for(ConnectError("refused"), 0) is not None
    assert policy.delay_for(RequestTimeoutError("slow"), 0) is None
    assert policy.delay_for(error_from_response(400, b""), 0) is None
    assert policy.delay_for(error_from_response(500, b""), 0) is None


def test_retry_after_is_a_floor_and_a_long_one_gives_up() -> None:
    policy = RetryPolicy(backoff_base=0.1, max_retry_after=30.0)
    delay = policy.delay_for(error_from_response(503, b"", retry_after=2.0), 0)
    assert delay is not None and 2.0 <= delay <= 2.1
    assert policy.delay_for(error_from_response(429, b"", retry_after=3600.0), 0) is None
