"""The Lambda's retries and time budget: what is retried (a failed connection, throttling)
and what never is (a read timeout), the deadline each attempt sends the container as
``timeout_ms``, and that the whole call ends within API Gateway's 29 s.

The arithmetic runs through the real botocore client under the Stubber, on a fake clock that
each attempt advances; the read timeout and ``timeout_ms`` on the wire go through the real
path (boto3 -> the InvokeEndpoint stand-in -> a scriptable container).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from api_errors import ApiError
from api_settings import REQUEST_BUDGET_S, Settings
from devtools.local_api import LocalApi
from devtools.processes import free_port
from handler import ClassifyApi
from sagemaker_invoke import (
    create_runtime_client,
    fits_another_attempt,
    invoke,
    request_deadline,
    server_timeout_ms,
)

BODY = json.dumps({"inputs": ["a headline"]}).encode()
OK = {"Body": io.BytesIO(b'[{"label": "business", "score": 0.9}]'), "ContentType": "x/y"}


@pytest.mark.parametrize(
    ("now", "lambda_remaining_ms", "deadline"),
    [
        (100.0, None, 128.0),  # API Gateway's 29 s less a second for the answer
        (100.0, 29_000, 128.0),  # the template's 29 s function timeout: the same
        (100.0, 10_000, 109.0),  # a Lambda with less time left: its time, less the second
    ],
)
def test_the_deadline_is_api_gateways_or_the_lambdas_if_sooner(
    now: float, lambda_remaining_ms: int | None, deadline: float
) -> None:
    assert request_deadline(now, lambda_remaining_ms) == pytest.approx(deadline)


@pytest.mark.parametrize(
    ("remaining_s", "timeout_ms", "another_fits"),
    [
        (28.0, 11_500, True),  # the read timeout (12 s) less 0.5 s for the answer's way back
        (14.0, 11_500, True),  # exactly one whole attempt (2 + 12 s) left
        (13.9, 11_400, False),  # less: the container gets what is left after connecting
        (4.0, 1_500, False),
        (2.55, None, False),  # under 0.1 s of model time is not worth starting
    ],
)
def test_each_attempt_tells_the_container_the_time_left(
    remaining_s: float, timeout_ms: int | None, another_fits: bool
) -> None:
    settings = Settings(endpoint_name="ep")  # connect 2 s, read 12 s
    assert server_timeout_ms(remaining_s, settings) == timeout_ms
    assert fits_another_attempt(remaining_s, settings) is another_fits


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(settings: Settings) -> Any:
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    return create_runtime_client(settings, session=session, endpoint_url="http://stub.invalid")


def _on_each_attempt(client: Any, action: Callable[[dict[str, Any]], None]) -> None:
    def hook(params: dict[str, Any], **_: Any) -> None:
        action(params)

    client.meta.events.register("provide-client-params.sagemaker-runtime.InvokeEndpoint", hook)


@pytest.mark.parametrize(("read_timeout_s", "max_attempts"), [(12, 2), (12, 5), (5, 5), (25, 3)])
def test_throttled_to_the_last_moment_every_time_the_call_still_ends_within_the_budget(
    read_timeout_s: float, max_attempts: int
) -> None:
    settings = Settings(
        endpoint_name="ep", read_timeout_s=read_timeout_s, max_attempts=max_attempts
    )
    client = _client(settings)
    clock = FakeClock()
    sent: list[int] = []

    def worst_case(params: dict[str, Any]) -> None:
        # Each attempt takes the longest it can (connect + read timeout), then is throttled.
        attributes = dict(kv.split("=") for kv in params["CustomAttributes"].split(";"))
        sent.append(int(attributes["timeout_ms"]))
        clock.now += settings.connect_timeout_s + settings.read_timeout_s

    _on_each_attempt(client, worst_case)
    start = clock.now
    with Stubber(client) as stub:
        for _ in range(max_attempts):
            stub.add_client_error("invoke_endpoint", "ThrottlingException", http_status_code=400)
        with pytest.raises(ApiError) as raised:
            invoke(
                client, settings, BODY, "r", deadline=request_deadline(start, None),
                clock=clock, sleep=clock.sleep,
            )  # fmt: skip

    assert raised.value.code == "overloaded"
    assert clock.now - start <= REQUEST_BUDGET_S
    assert 1 <= len(sent) <= max_attempts
    assert all(ms <= (read_timeout_s - 0.5) * 1000 for ms in sent)


def test_a_throttled_call_is_retried_with_a_fresh_deadline() -> None:
    settings = Settings(endpoint_name="ep", max_attempts=3)
    client = _client(settings)
    clock = FakeClock()
    deadline = clock.now + 20.0  # 20 s left: 11.5 s for the container, a retry fits

    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", "ThrottlingException", http_status_code=400)
        expected = {
            "EndpointName": "ep", "Body": BODY, "ContentType": "application/json",
            "Accept": "application/json", "CustomAttributes": "request_id=r;timeout_ms=11500",
        }  # fmt: skip
        stub.add_response("invoke_endpoint", OK, expected)
        prediction = invoke(
            client, settings, BODY, "r", deadline=deadline, clock=clock, sleep=clock.sleep
        )
        stub.assert_no_pending_responses()

    assert prediction.body.startswith(b'[{"label"')
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= 0.2


@pytest.mark.parametrize(
    ("code", "status"),
    [("ModelError", 424), ("InternalFailure", 500), ("ServiceUnavailable", 503)],
)
def test_errors_after_the_request_reached_sagemaker_are_not_retried(code: str, status: int) -> None:
    settings = Settings(endpoint_name="ep", max_attempts=5)
    client = _client(settings)
    with Stubber(client) as stub:  # a second attempt would find no stubbed answer
        stub.add_client_error("invoke_endpoint", code, http_status_code=status)
        with pytest.raises(ApiError):
            invoke(client, settings, BODY, "r", clock=FakeClock(), sleep=FakeClock().sleep)
        stub.assert_no_pending_responses()


def test_a_read_timeout_is_never_retried(
    fault_front: LocalApi, fake_model: Any, make_api: Callable[..., ClassifyApi], events: Any
) -> None:
    fake_model.script.delay_s = 0.8
    api = make_api(fault_front.url, read_timeout_s=0.3, max_attempts=3)

    response = api(events.rest(BODY.decode()), None)

    assert response["statusCode"] == 504
    assert fake_model.calls == 1, "the request may be running: it must not run twice"


def test_a_refused_connection_is_retried(events: Any) -> None:
    settings = Settings(endpoint_name="ep", max_attempts=3, connect_timeout_s=0.5)
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    client = create_runtime_client(
        settings, session=session, endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    attempts: list[str] = []
    _on_each_attempt(client, lambda params: attempts.append(params["CustomAttributes"]))

    response = ClassifyApi(settings, client)(events.rest(BODY.decode()), None)

    assert response["statusCode"] == 502
    assert len(attempts) == 3


@dataclass
class LambdaContext:
    """The one method of Lambda's context object the handler reads."""

    remaining_ms: int
    aws_request_id: str = "lambda-request-id"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.mark.parametrize(
    ("context", "timeout_ms"),
    [
        (None, 11_500),  # read timeout 12 s less 0.5 s
        (LambdaContext(5_000), 1_500),  # 5 s left: less 1 s reserve, 2 s connect, 0.5 s
    ],
)
def test_the_container_receives_the_deadline(
    fault_front: LocalApi,
    fake_model: Any,
    make_api: Callable[..., ClassifyApi],
    events: Any,
    context: Any,
    timeout_ms: int,
) -> None:
    response = make_api(fault_front.url)(events.rest(BODY.decode()), context)

    assert response["statusCode"] == 200
    attributes = dict(kv.split("=") for kv in str(fake_model.custom_attributes).split(";"))
    # Elapsed time before the call can only lower it, by a few milliseconds.
    assert timeout_ms - 200 <= int(attributes["timeout_ms"]) <= timeout_ms
