"""Batch Transform against the real ``python -m app`` process: the job's environment, the
payloads SageMaker would send (devtools/batch_transform.py), every line back in order.

Small on purpose (a shared 2-core CI machine); benchmarks/bench_transform.py runs the
issue's sizes (100,000 lines at 6 MB, 5,000 single records) and measures the RSS.
"""

from __future__ import annotations

import csv
import itertools
import json
import lzma
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.artifacts import build_tiny_artifact
from devtools.batch_transform import transform
from devtools.paths import SAMPLE_DATA
from devtools.processes import ServerProcess, start_model_server, stop_model_server

MAX_INSTANCES = 256
# The emulated job's payload limit: far below the server's 1 MiB, so that several payloads
# are sent, each over MAX_INSTANCES lines (classified in chunks).
PAYLOAD_BYTES = 40_000


def headlines(count: int) -> list[str]:
    with lzma.open(SAMPLE_DATA, "rt", encoding="utf-8") as handle:
        texts = [line.split("\t")[1] for line in handle if line.count("\t") >= 4]
    return [texts[i % len(texts)] for i in range(count)]


@pytest.fixture(scope="module")
def varied_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny artifact whose scores differ from headline to headline, so that an answer in
    the wrong place shows."""
    base = tmp_path_factory.mktemp("transform")
    return build_tiny_artifact(base / "model", initializer_range=0.5)


@pytest.fixture(scope="module")
def transform_server(varied_model_dir: Path) -> Iterator[ServerProcess]:
    """The server as a MultiRecord job of 1 MB payloads, 2 at once, starts it."""
    base = varied_model_dir.parent
    server = start_model_server(
        base,
        base / "server.log",
        SAGEMAKER_BATCH="true",
        SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="1",
        SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="2",
        SERVE_MAX_INSTANCES=str(MAX_INSTANCES),
        SERVE_QUEUE_SIZE="1024",
    )
    yield server
    stop_model_server(server)


def reference_scores(url: str, texts: list[str]) -> list[dict[str, float]]:
    """Each text's scores from JSON requests of at most MAX_INSTANCES texts."""
    scores: list[dict[str, float]] = []
    for start in range(0, len(texts), 200):
        response = httpx.post(
            f"{url}/invocations",
            json={"inputs": texts[start : start + 200], "parameters": {"top_k": None}},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        scores.extend({item["label"]: item["score"] for item in row} for row in response.json())
    return scores


def assert_varied(scores: list[dict[str, float]]) -> None:
    """Neighbouring headlines score apart: a shifted answer could not pass for its own."""
    distinct = sum(
        abs(a[label] - b[label]) > 1e-3 for a, b in itertools.pairwise(scores) for label in a
    )
    assert distinct > len(scores)


def assert_same_scores(got: dict[str, float], expected: dict[str, float], line: int) -> None:
    assert got.keys() == expected.keys(), line
    for label, score in expected.items():
        assert got[label] == pytest.approx(score, rel=1e-3, abs=1e-5), line


def test_execution_parameters_are_the_jobs(transform_server: ServerProcess) -> None:
    response = httpx.get(f"{transform_server.url}/execution-parameters")
    assert response.json() == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 1,
    }


def test_multi_record_json_lines_come_back_line_for_line(
    transform_server: ServerProcess,
) -> None:
    texts = headlines(3000)
    lines = [json.dumps({"inputs": text}).encode() for text in texts]
    blank = {7, 1500, 2999}  # blank lines get blank answers, so every line keeps its place
    for index in blank:
        lines[index] = b""
    out, requests = transform(
        transform_server.url,
        lines,
        content_type="application/jsonlines",
        accept="application/jsonlines",
        max_payload_bytes=PAYLOAD_BYTES,
        concurrent=2,
        custom_attributes="top_k=all",
    )
    assert requests >= 5
    assert len(out) == len(lines)
    expected = reference_scores(transform_server.url, texts)
    assert_varied(expected)
    for index, line in enumerate(out):
        if index in blank:
            assert line == b""
            continue
        got = {item["label"]: item["score"] for item in json.loads(line)}
        assert_same_scores(got, expected[index], index)


def test_multi_record_csv_in_one_full_payload(transform_server: ServerProcess) -> None:
    # Quoted lines too: a comma in a headline is CSV-quoted by whoever wrote the file.
    texts = headlines(1500)
    lines = [
        ('"' + text.replace('"', '""') + '"' if "," in text or '"' in text else text).encode()
        for text in texts
    ]
    out, requests = transform(
        transform_server.url,
        lines,
        content_type="text/csv",
        accept="text/csv",
        max_payload_bytes=1024 * 1024,
        custom_attributes="top_k=all",
    )
    assert requests == 1
    expected = reference_scores(transform_server.url, texts)
    assert len(out) == len(texts)
    for index, row in enumerate(csv.reader(line.decode() for line in out)):
        got = {row[i]: float(row[i + 1]) for i in range(0, len(row), 2)}
        assert_same_scores(got, expected[index], index)


def test_a_payload_over_the_jobs_limit_is_refused(transform_server: ServerProcess) -> None:
    body = b'"Fed raises rates"\n' * (1024 * 1024 // 19 + 1)
    response = httpx.post(
        f"{transform_server.url}/invocations",
        content=body,
        headers={"Content-Type": "application/jsonlines"},
        timeout=60,
    )
    assert response.status_code == 413


def test_single_record_job(varied_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model").symlink_to(varied_model_dir, target_is_directory=True)
    server = start_model_server(
        tmp_path,
        tmp_path / "server.log",
        SAGEMAKER_BATCH="true",
        SAGEMAKER_BATCH_STRATEGY="SINGLE_RECORD",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="1",
        SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="4",
    )
    try:
        parameters = httpx.get(f"{server.url}/execution-parameters").json()
        assert parameters["BatchStrategy"] == "SINGLE_RECORD"
        assert parameters["MaxConcurrentTransforms"] == 4
        texts = headlines(200)
        out, requests = transform(
            server.url,
            [json.dumps(text).encode() for text in texts],
            content_type="application/jsonlines",
            accept="application/jsonlines",
            max_payload_bytes=1024 * 1024,
            multi_record=False,
            concurrent=4,
        )
        assert requests == len(texts) == len(out)
        expected = reference_scores(server.url, texts)
        for index, line in enumerate(out):
            item = json.loads(line)
            best = max(expected[index], key=expected[index].__getitem__)
            assert item["label"] == best, index
            assert item["score"] == pytest.approx(expected[index][best], rel=1e-3), index
    finally:
        stop_model_server(server)
