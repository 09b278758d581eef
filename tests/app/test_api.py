"""The HTTP API of the real app with the tiny model, through TestClient."""

from __future__ import annotations

import csv
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.model import Classifier, load_classifier
from app.settings import Settings
from tests.app.support import started_client, tiny_settings, wait_ready

LABELS = {"business", "entertainment", "health", "science_and_technology"}
HEADLINES = [
    "Fed raises interest rates for the third time this year",
    "Apple unveils a bigger iPhone",
    "Ebola outbreak spreads to Nigeria",
    "Kim Kardashian and Kanye West marry in Florence",
    "Stocks fall as oil prices climb",
    "Google buys a smart thermostat maker for $3.2 billion",
    "New study links coffee to a longer life",
    "Box office: the new superhero film breaks records",
]


def classify(client: TestClient, payload: object, **headers: str) -> Any:
    response = client.post("/invocations", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def assert_error(response, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


def test_ping_is_empty_200(client: TestClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.content == b""
    assert client.get("/health").status_code == 200


def test_single_text_gives_a_one_element_list(client: TestClient) -> None:
    body = classify(client, {"inputs": HEADLINES[0]})
    assert len(body) == 1
    assert body[0]["label"] in LABELS
    assert 0.25 <= body[0]["score"] <= 1.0  # the best of four probabilities


def test_list_gives_one_prediction_per_input_in_order(client: TestClient) -> None:
    every_label = {"top_k": None}
    batched = classify(client, {"inputs": HEADLINES, "parameters": every_label})
    # One string with top_k set: its best-first list alone, as the transformers pipeline.
    one_by_one = [
        classify(client, {"inputs": text, "parameters": every_label}) for text in HEADLINES
    ]

    def fingerprint(ranked: list[dict[str, Any]]) -> tuple[object, ...]:
        return tuple((item["label"], round(item["score"], 6)) for item in ranked)

    # The random tiny model tells the texts apart only in the later digits: make sure it does,
    # so a shuffled answer could not pass.
    assert len({fingerprint(ranked) for ranked in one_by_one}) == len(HEADLINES)
    for got, want in zip(batched, one_by_one, strict=True):
        assert [item["label"] for item in got] == [item["label"] for item in want]
        assert [item["score"] for item in got] == pytest.approx(
            [item["score"] for item in want], abs=2e-7
        )


def test_top_k_gives_best_first_lists(client: TestClient) -> None:
    body = classify(client, {"inputs": HEADLINES[:3], "parameters": {"top_k": 2}})
    assert len(body) == 3
    for ranked in body:
        assert len(ranked) == 2
        assert ranked[0]["score"] >= ranked[1]["score"]
    everything = classify(client, {"inputs": HEADLINES[0], "parameters": {"top_k": None}})
    assert {item["label"] for item in everything} == LABELS
    assert sum(item["score"] for item in everything) == pytest.approx(1.0, abs=1e-5)
    clamped = classify(client, {"inputs": HEADLINES[0], "parameters": {"top_k": 99}})
    assert clamped == everything
    top1 = classify(client, {"inputs": HEADLINES[0], "parameters": {"top_k": 1}})
    assert top1 == everything[:1]
    # A list with top_k set, even to 1, answers a list per input (tests/app/test_hf_compat.py).
    assert classify(client, {"inputs": HEADLINES[:1], "parameters": {"top_k": 1}}) == [top1]
    assert classify(client, {"inputs": HEADLINES[:1]}) == top1


def test_long_texts_are_truncated_not_rejected(client: TestClient) -> None:
    # The tiny artifact's max length is 32 tokens: what follows them cannot matter.
    prefix = " ".join(HEADLINES)
    body = classify(client, {"inputs": [prefix + " business" * 5000, prefix + " health" * 5000]})
    assert body[0] == body[1]
    different = classify(client, {"inputs": ["health " + prefix]})[0]
    assert different["score"] != body[0]["score"]


def test_jsonlines_in_and_out(client: TestClient) -> None:
    expected = classify(client, {"inputs": HEADLINES[:3]})
    lines = [
        json.dumps({"inputs": HEADLINES[0]}),
        json.dumps(HEADLINES[1]),
        "",
        json.dumps({"inputs": HEADLINES[2]}),
    ]
    response = client.post(
        "/invocations",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jsonlines"
    # The blank line keeps its place (Batch Transform joins answers line by line).
    answers = response.text.splitlines()
    assert answers[2] == ""
    assert [json.loads(line) for line in answers[:2] + answers[3:]] == expected


def test_csv_in_and_out_with_top_k_from_custom_attributes(client: TestClient) -> None:
    texts = [HEADLINES[0], 'Stocks, bonds and "gold" rally']
    expected = classify(client, {"inputs": texts, "parameters": {"top_k": 2}})
    quoted = io.StringIO()
    csv.writer(quoted, lineterminator="").writerow([texts[1]])
    response = client.post(
        "/invocations",
        content=f"{texts[0]}\r\n{quoted.getvalue()}\r\n".encode(),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Accept": "text/csv",
            "X-Amzn-SageMaker-Custom-Attributes": "top_k=2;something_else=1",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert len(rows) == 2
    for row, ranked in zip(rows, expected, strict=True):
        assert row[0::2] == [item["label"] for item in ranked]
        assert [float(score) for score in row[1::2]] == pytest.approx(
            [item["score"] for item in ranked]
        )


@pytest.mark.parametrize(("attribute", "top_k"), [("top_k=1", 1), ("top_k=all", None)])
def test_a_json_body_without_top_k_takes_it_from_custom_attributes(
    client: TestClient, attribute: str, top_k: int | None
) -> None:
    # As if the body had set parameters.top_k: a best-first list per input, even for top_k=1.
    expected = classify(client, {"inputs": HEADLINES[:2], "parameters": {"top_k": top_k}})
    header = {"X-Amzn-SageMaker-Custom-Attributes": attribute}
    assert classify(client, {"inputs": HEADLINES[:2]}, **header) == expected
    # The body's own top_k wins over the header's.
    own = {"inputs": HEADLINES[:2], "parameters": {"top_k": 2}}
    assert [len(ranked) for ranked in classify(client, own, **header)] == [2, 2]


def test_plain_text_is_one_input(client: TestClient) -> None:
    expected = classify(client, {"inputs": "one, two\nthree"})
    response = client.post(
        "/invocations", content=b"one, two\nthree", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert response.json() == expected


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("text/csv;q=0.5, application/jsonlines", "application/jsonlines"),
        ("text/html, text/*;q=0.3", "text/csv"),
        ("application/x-jsonlines", "application/jsonlines"),
    ],
)
def test_accept_negotiation(client: TestClient, accept: str, media_type: str) -> None:
    response = client.post(
        "/invocations", json={"inputs": HEADLINES[0]}, headers={"Accept": accept}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type


def test_request_id_is_taken_from_the_caller_or_made(client: TestClient) -> None:
    given = client.post("/invocations", json={"inputs": "x y"}, headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    via_sagemaker = client.post(
        "/invocations",
        json={"inputs": "x y"},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "request_id=lambda-42"},
    )
    assert via_sagemaker.headers["x-request-id"] == "lambda-42"
    refused = client.get("/ping", headers={"X-Request-Id": "bad id with spaces"})
    made = refused.headers["x-request-id"]
    assert made != "bad id with spaces"
    assert len(made) == 32


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"inputs": ', "application/json", 400, "bad_request"),
        (b'{"inputs": "caf\xe9"}', "application/json", 400, "bad_request"),
        (b'{"inputs": "caf\\ud800"}', "application/json", 400, "bad_request"),
        (b"caf\xe9", "text/plain", 400, "bad_request"),
        (b'{"inputs": []}', "application/json", 400, "bad_request"),
        (b'{"inputs": ""}', "application/json", 400, "bad_request"),
        (b'{"inputs": ["ok", "  "]}', "application/json", 400, "bad_request"),
        (b"{}", "application/json", 400, "bad_request"),
        (b'{"inputs": 3}', "application/json", 400, "bad_request"),
        (b'{"inputs": "a", "parameters": {"top_k": 0}}', "application/json", 400, "bad_request"),
        (b'{"inputs": "a", "parameters": {"top_k": "2"}}', "application/json", 400, "bad_request"),
        (b'{"inputs": "a", "parameters": {"temp": 1}}', "application/json", 400, "bad_request"),
        (b"", "text/plain", 400, "bad_request"),
        (b"\n\n", "text/csv", 400, "bad_request"),
        (b"[1]\n", "application/jsonlines", 400, "bad_request"),
        (b'"a", "b"\n', "text/csv", 400, "bad_request"),
        (b"<x/>", "application/xml", 415, "unsupported_media_type"),
        (b'{"inputs": "a"}', "application/json; charset=latin-1", 415, "unsupported_media_type"),
    ],
)
def test_bad_requests(
    client: TestClient, body: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post("/invocations", content=body, headers={"Content-Type": content_type})
    error = assert_error(response, status, code)
    assert "caf" not in error["message"]  # the caller's text is never echoed


def test_unsupported_accept_is_406(client: TestClient) -> None:
    response = client.post(
        "/invocations", json={"inputs": "a"}, headers={"Accept": "application/xml"}
    )
    assert_error(response, 406, "not_acceptable")


def test_bad_custom_attribute_is_400(client: TestClient) -> None:
    response = client.post(
        "/invocations",
        json={"inputs": "a"},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "timeout_ms=soon"},
    )
    assert_error(response, 400, "bad_request")


def test_too_many_inputs_is_413(strict_client: TestClient) -> None:
    assert strict_client.post("/invocations", json={"inputs": ["a"] * 4}).status_code == 200
    response = strict_client.post("/invocations", json={"inputs": ["a"] * 5})
    error = assert_error(response, 413, "payload_too_large")
    assert "4" in error["message"]


def test_too_large_a_body_is_413(strict_client: TestClient) -> None:
    response = strict_client.post("/invocations", json={"inputs": "word " * 1000})
    assert_error(response, 413, "payload_too_large")


def test_deadline_passed_in_the_queue_is_504(client: TestClient) -> None:
    response = client.post(
        "/invocations",
        json={"inputs": [f"{text} {i}" for i in range(200) for text in HEADLINES[:2]]},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "timeout_ms=1"},
    )
    assert_error(response, 504, "timeout")
    assert client.post("/invocations", json={"inputs": "still serving"}).status_code == 200


def test_a_flooded_queue_answers_429_at_once_and_keeps_serving(flood_client: TestClient) -> None:
    def post(i: int):
        return flood_client.post(
            "/invocations", json={"inputs": [f"text {i} {j}" for j in range(16)]}
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(post, range(32)))
    statuses = [response.status_code for response in responses]
    assert set(statuses) == {200, 429}, statuses
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.headers["retry-after"] == "1"
    assert_error(refused, 429, "overloaded")
    assert all(len(r.json()) == 16 for r in responses if r.status_code == 200)
    assert flood_client.get("/ping").status_code == 200
    assert flood_client.post("/invocations", json={"inputs": "after the flood"}).status_code == 200


def test_unknown_path_and_method_keep_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/invocations"), 405, "method_not_allowed")


def test_execution_parameters(client: TestClient) -> None:
    response = client.get("/execution-parameters")
    assert response.status_code == 200
    body = response.json()
    assert body["BatchStrategy"] == "MULTI_RECORD"
    assert 1 <= body["MaxPayloadInMB"] <= 6
    assert body["MaxConcurrentTransforms"] >= 1


def test_metrics_count_requests_and_batches(client: TestClient) -> None:
    classify(client, {"inputs": HEADLINES})
    text = client.get("/metrics").text
    for name in (
        'serving_requests_total{path="/invocations",status="200"}',
        "serving_request_duration_seconds_bucket",
        "serving_queue_wait_seconds_bucket",
        "serving_batch_size_bucket",
        "serving_model_duration_seconds_bucket",
        "serving_queue_depth",
    ):
        assert name in text
    texts = next(line for line in text.splitlines() if line.startswith("serving_texts_total"))
    assert float(texts.split()[-1]) >= len(HEADLINES)


def test_docs_and_openapi_are_off_unless_asked_for(client: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert_error(client.get(path), 404, "not_found")


def test_openapi_documents_the_invocation_content_types(tiny_model_dir: Path) -> None:
    client = started_client(tiny_settings(tiny_model_dir, docs=True))
    try:
        assert client.get("/docs").status_code == 200
        schema = client.get("/openapi.json").json()
    finally:
        client.__exit__(None, None, None)
    content = schema["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/jsonlines", "text/csv", "text/plain"}
    assert "PredictRequest" in json.dumps(content["application/json"])
    assert "429" in schema["paths"]["/invocations"]["post"]["responses"]


def test_503_until_the_model_is_loaded(tiny_model_dir: Path) -> None:
    release = threading.Event()

    def slow_loader(settings: Settings):
        release.wait(timeout=30)
        return load_classifier(settings)

    app = create_app(tiny_settings(tiny_model_dir), loader=slow_loader)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_error(client.get("/ping"), 503, "not_ready")
        assert_error(client.post("/invocations", json={"inputs": "a"}), 503, "not_ready")
        release.set()
        wait_ready(client)
        assert client.post("/invocations", json={"inputs": "a"}).status_code == 200


def test_a_model_that_cannot_load_keeps_ping_503_and_reports(tmp_path: Path) -> None:
    fatal = threading.Event()
    (tmp_path / "model").mkdir()
    app = create_app(tiny_settings(tmp_path / "model"), on_fatal=fatal.set)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert fatal.wait(timeout=30)
        assert_error(client.get("/ping"), 503, "not_ready")


class ExplodingClassifier(Classifier):
    """The real tiny classifier, except that every model call fails."""

    def predict(self, batch):
        raise RuntimeError("secret internals /opt/ml/model")


def test_an_unexpected_failure_is_a_generic_500_logged_with_traceback(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def exploding_loader(settings: Settings) -> Classifier:
        real = load_classifier(settings)
        return ExplodingClassifier(real.scorer, real.tokenizer, real.labels, real.max_length)

    app = create_app(tiny_settings(tiny_model_dir), loader=exploding_loader)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        response = client.post("/invocations", json={"inputs": "a"})
        error = assert_error(response, 500, "internal_error")
        assert "secret" not in response.text
        assert "RuntimeError: secret internals" in caplog.text
        assert client.get("/ping").status_code == 200
    assert error["request_id"]


def test_load_before_serving_is_ready_as_soon_as_it_starts(tiny_model_dir: Path) -> None:
    # What each uvicorn worker process does when SERVE_WORKERS > 1.
    app = create_app(tiny_settings(tiny_model_dir), load_before_serving=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/ping").status_code == 200
