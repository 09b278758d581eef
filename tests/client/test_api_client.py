"""ApiClient with a swapped transport (fault injection) and against the real model server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from client import (
    NO_RETRIES,
    SERVER_PATH,
    ApiClient,
    BadRequestError,
    ConnectError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    RetryPolicy,
)
from devtools.artifacts import LABELS
from devtools.processes import ServerProcess, free_port, start_model_server, stop_model_server

FAST_RETRY = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_max=0.05)


class Recorder:
    """A fake ``sleep``: remembers the waits instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def predictions_for(request: httpx.Request) -> httpx.Response:
    texts = json.loads(request.content)["inputs"]
    return httpx.Response(200, json=[{"label": "business", "score": 0.5} for _ in texts])


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} here", "request_id": f"srv-{status}"}}
    return httpx.Response(status, json=body, headers=headers)


def scripted(
    *answers: httpx.Response | Exception,
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each request with the next scripted answer, then with success."""
    requests: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return predictions_for(request)

    return httpx.MockTransport(handle), requests


def test_429s_are_retried_honouring_retry_after() -> None:
    transport, requests = scripted(
        error(429, "overloaded", {"Retry-After": "2"}),
        error(429, "overloaded", {"Retry-After": "1"}),
    )
    sleep = Recorder()
    with ApiClient(
        "http://api", api_key="k", transport=transport, retry=FAST_RETRY, sleep=sleep
    ) as api:
        [prediction] = api.classify("Fed raises rates")
    assert prediction.label == "business"
    assert len(requests) == 3
    assert 2.0 <= sleep.delays[0] <= 2.05 and 1.0 <= sleep.delays[1] <= 1.05
    assert all(r.headers["x-api-key"] == "k" for r in requests)
    assert requests[0].url == "http://api/classify"
    # Every attempt carries its own id, so each can be found in the server's logs.
    assert len({r.headers["x-request-id"] for r in requests}) == 3


def test_503_backs_off_exponentially_and_gives_up_with_the_server_error() -> None:
    transport, requests = scripted(*[error(503, "not_ready")] * 4)
    sleep = Recorder()
    api = ApiClient("http://api", transport=transport, retry=FAST_RETRY, sleep=sleep)
    with pytest.raises(NotReadyError) as info:
        api.classify(["a"])
    assert info.value.status_code == 503
    assert info.value.code == "not_ready"
    assert info.value.request_id == "srv-503"
    assert len(requests) == 4 and len(sleep.delays) == 3
    assert all(0 <= d <= 0.05 for d in sleep.delays)


def test_client_errors_are_not_retried() -> None:
    transport, requests = scripted(error(400, "bad_request"))
    with pytest.raises(BadRequestError) as info:
        ApiClient("http://api", transport=transport, retry=FAST_RETRY, sleep=Recorder()).classify(
            "x"
        )
    assert info.value.code == "bad_request" and len(requests) == 1


def test_connect_errors_are_retried_but_timeouts_are_not() -> None:
    transport, requests = scripted(httpx.ConnectError("refused"))
    api = ApiClient("http://api", transport=transport, retry=FAST_RETRY, sleep=Recorder())
    assert len(api.classify(["a"])) == 1 and len(requests) == 2

    transport, requests = scripted(httpx.ReadTimeout("slow"))
    api = ApiClient("http://api", transport=transport, retry=FAST_RETRY, sleep=Recorder())
    with pytest.raises(RequestTimeoutError) as info:
        api.classify(["a"])
    assert info.value.request_id == requests[0].headers["x-request-id"]
    assert len(requests) == 1


def test_413_splits_the_request_until_it_fits() -> None:
    sizes: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["inputs"]
        sizes.append(len(texts))
        return error(413, "payload_too_large") if len(texts) > 3 else predictions_for(request)

    api = ApiClient("http://api", transport=httpx.MockTransport(handle), sleep=Recorder())
    texts = [f"headline {i}" for i in range(10)]
    predictions = api.classify(texts)
    assert [p.text for p in predictions] == texts
    assert sizes == [10, 5, 2, 3, 5, 2, 3]


def test_large_inputs_are_chunked_under_the_limits() -> None:
    transport, requests = scripted()
    api = ApiClient("http://api", transport=transport, max_batch_size=4, sleep=Recorder())
    texts = [f"headline {i}" for i in range(10)]
    assert [p.text for p in api.classify(texts)] == texts
    assert [len(json.loads(r.content)["inputs"]) for r in requests] == [4, 4, 2]


# --- the real model server ------------------------------------------------------------------


def test_classify_against_the_model_server(model_server: ServerProcess) -> None:
    with ApiClient(model_server.url, path=SERVER_PATH, max_batch_size=3) as api:
        texts = [
            "Fed raises interest rates",
            "New Marvel trailer",
            "Ebola outbreak",
            "iPhone",
            "Oil",
        ]
        predictions = api.classify(texts)
        assert [p.text for p in predictions] == texts
        assert all(p.label in LABELS and 0.0 <= p.score <= 1.0 for p in predictions)
        ranked = api.classify("Apple unveils new iPhone", top_k=4)[0]
        assert sorted(item.label for item in ranked.labels) == sorted(LABELS)
        scores = [item.score for item in ranked.labels]
        assert scores == sorted(scores, reverse=True)
        assert api.classify([]) == []


def test_model_server_errors_carry_code_and_request_id(model_server: ServerProcess) -> None:
    with ApiClient(model_server.url, path=SERVER_PATH, retry=NO_RETRIES) as api:
        with pytest.raises(BadRequestError) as info:
            # A number among the inputs: the typed API cannot build it, the server refuses it.
            api.classify(["ok", 7])  # type: ignore[list-item]
        assert info.value.status_code == 400 and info.value.code == "bad_request"
        assert info.value.request_id and len(info.value.request_id) == 32  # the id we sent
    with (
        ApiClient(model_server.url, path="/nope", retry=NO_RETRIES) as api,
        pytest.raises(NotFoundError),
    ):
        api.classify("x")


def test_connection_refused_is_a_connect_error() -> None:
    api = ApiClient(f"http://127.0.0.1:{free_port()}", retry=NO_RETRIES)
    with pytest.raises(ConnectError) as info:
        api.classify("x")
    assert info.value.code == "connect_error"


# Tiny limits: 2 texts queued at most, 1 KiB bodies, and a batch window long enough that
# concurrent requests collide and get 429.
STRICT_LIMITS = {
    "SERVE_QUEUE_SIZE": "2",
    "SERVE_MAX_INSTANCES": "2",
    "SERVE_MAX_BODY_BYTES": "1024",
    "SERVE_MAX_WAIT_MS": "200",
    "SERVE_RETRY_AFTER_S": "1",
}


@pytest.fixture(scope="module")
def strict_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A second real model server, with STRICT_LIMITS: real 413s and 429s on demand."""
    base = tmp_path_factory.mktemp("strict_opt_ml")
    (base / "model").symlink_to(tiny_model_dir, target_is_directory=True)
    # A longer wait than the default: a loaded CI machine can be slow to import torch.
    server = start_model_server(base, base / "server.log", 120.0, **STRICT_LIMITS)
    yield server
    stop_model_server(server)


def test_real_413s_are_split_and_an_oversized_text_raises(strict_server: ServerProcess) -> None:
    with ApiClient(strict_server.url, path=SERVER_PATH, retry=NO_RETRIES) as api:
        texts = [f"Headline number {i}" for i in range(5)]
        assert [p.text for p in api.classify(texts)] == texts
        with pytest.raises(PayloadTooLargeError) as info:
            api.classify("x" * 2000)
        assert info.value.code == "payload_too_large" and info.value.request_id


def test_real_429s_are_retried_after_retry_after(strict_server: ServerProcess) -> None:
    # Bursts of concurrent requests against a queue of 2: some meet a real 429. A loaded
    # machine may spread a burst out, so a few bursts are allowed for the first collision.
    rejected: list[OverloadedError] = []
    with ApiClient(strict_server.url, path=SERVER_PATH, retry=NO_RETRIES) as api:

        def once() -> str:
            try:
                return api.classify("Stocks fall")[0].label
            except OverloadedError as exc:
                rejected.append(exc)
                return "rejected"

        for _ in range(5):
            if not rejected:
                burst(8, once)
    assert rejected, "no burst ever filled the queue"
    assert rejected[0].status_code == 429 and rejected[0].code == "overloaded"
    assert rejected[0].retry_after == 1.0 and rejected[0].request_id

    # With retries, every request of every burst succeeds, each retry waiting out Retry-After.
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        threading.Event().wait(seconds)

    policy = RetryPolicy(max_retries=10, backoff_base=0.05)
    with ApiClient(strict_server.url, path=SERVER_PATH, retry=policy, sleep=sleep) as api:
        for _ in range(5):
            if not sleeps:
                labels = burst(8, lambda: api.classify("Stocks fall")[0].label)
                assert len(labels) == 8 and set(labels) <= set(LABELS)
    assert sleeps and min(sleeps) >= 1.0


def burst(count: int, run: Callable[[], str]) -> list[str]:
    """Run ``run`` in ``count`` threads released at the same moment; their results."""
    barrier = threading.Barrier(count)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        result = run()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
