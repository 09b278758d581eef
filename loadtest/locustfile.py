"""Locust users for the three ways in: model server, API Gateway URL, SageMaker endpoint.

Run through ``python -m loadtest`` (headless, reports, gate, plot), or directly::

    locust -f loadtest/locustfile.py --host http://localhost:8080            # ServerUser
    locust -f loadtest/locustfile.py --host https://API-URL --api-key KEY ApiUser

Without a user class on the command line (or in ``LOCUST_USER_CLASSES``) locust runs
``ServerUser`` only, not every class of the file: each class needs its own kind of host.

Options added to locust's command line (``--batch-ratio``, ``--api-key``, ...) are listed by
``locust -f loadtest/locustfile.py --help``; see docs/loadtest.md.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, User, events, task
from locust.env import Environment

from loadtest import API_KEY_ENV
from loadtest.traffic import DEFAULT_TITLES, TrafficMix, check_response, error_summary, load_titles

logger = logging.getLogger(__name__)

# Longer than locust's CSV writing interval (1 s), so a capped run's CSV holds its last requests.
CSV_SETTLE_SECONDS = 1.5


# The user class of a plain `locust -f loadtest/locustfile.py --host URL`; locust's own default
# (every class in the file) would point all three at one host, and two of them would fail.
DEFAULT_USER_CLASS = "ServerUser"


# locust's event hooks are untyped; these two registrations are the locustfile's whole contract.
@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def add_options(parser: Any) -> None:
    # locust's positional `user_classes` defaults to LOCUST_USER_CLASSES, else to [] ("all").
    parser.set_defaults(
        user_classes=os.environ.get("LOCUST_USER_CLASSES", "").split() or [DEFAULT_USER_CLASS]
    )
    # On the parser itself, not in argument groups: only its add_argument knows locust's extras
    # (is_secret keeps the API key masked in the web UI).
    parser.add_argument(
        "--titles", default=str(DEFAULT_TITLES), help="newsCorpora-format file of headlines"
    )
    parser.add_argument(
        "--batch-ratio", type=float, default=0.2, help="fraction of requests that are batches"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="texts per batched request")
    parser.add_argument("--top-k", type=int, default=1, help="parameters.top_k of each request")
    parser.add_argument(
        "--think-min", type=float, default=0.5, help="least seconds a user waits between requests"
    )
    parser.add_argument(
        "--think-max", type=float, default=1.5, help="most seconds a user waits between requests"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="stop the run after this many requests (0: no limit; for smoke tests)",
    )
    parser.add_argument(
        "--api-key",
        env_var=API_KEY_ENV,
        default="",
        is_secret=True,
        help=f"x-api-key for ApiUser (env {API_KEY_ENV})",
    )
    parser.add_argument("--endpoint-name", default="", help="SageMaker endpoint for EndpointUser")
    parser.add_argument("--region", default=None, help="AWS region for EndpointUser")
    parser.add_argument(
        "--request-timeout", type=float, default=60.0, help="seconds before a request fails"
    )
    parser.add_argument(
        "--step-users", type=int, default=0, help="users added per step (0: users/8)"
    )
    parser.add_argument("--step-time", type=float, default=30.0, help="seconds per step")
    parser.add_argument(
        "--stop-p95-ms", type=float, default=0.0, help="stop ramping when p95 exceeds this (0: off)"
    )
    parser.add_argument(
        "--stop-failure-rate",
        type=float,
        default=0.05,
        help="stop ramping when a step's failure rate exceeds this",
    )


@events.init.add_listener  # type: ignore[untyped-decorator]
def limit_requests(environment: Environment, **_: Any) -> None:
    """With ``--max-requests N``, end the run soon after N requests so smoke tests stay bounded."""
    limit = _request_limit(environment)
    if not limit:
        return

    def on_request(**_: Any) -> None:
        # locust's own stats listener ran first, so the count includes this request; exactly
        # one request sees the limit itself.
        runner = environment.runner
        if environment.stats.total.num_requests == limit and runner is not None:
            logger.info("--max-requests %d reached, stopping", limit)
            # Users go idle (see _at_request_limit) rather than being stopped: stopping ends a
            # shape run at once, before locust's CSV writer (once a second) has written the
            # last numbers. Quitting a little later leaves it that second.
            gevent.spawn_later(CSV_SETTLE_SECONDS, runner.quit)

    environment.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]


def _request_limit(environment: Environment) -> int:
    options = environment.parsed_options
    return int(getattr(options, "max_requests", 0) or 0) if options is not None else 0


def _at_request_limit(environment: Environment) -> bool:
    """Whether ``--max-requests`` is reached: users then idle until locust quits."""
    limit = _request_limit(environment)
    if limit and environment.stats.total.num_requests >= limit:
        gevent.sleep(0.1)
        return True
    return False


def _traffic(environment: Environment) -> TrafficMix:
    options = environment.parsed_options
    if options is None:  # started as a library, without locust's command line
        return TrafficMix(titles=load_titles())
    return TrafficMix(
        titles=load_titles(Path(options.titles)),
        batch_ratio=options.batch_ratio,
        batch_size=options.batch_size,
        top_k=options.top_k,
    )


def _think_time(user: User) -> float:
    options = user.environment.parsed_options
    low, high = (options.think_min, options.think_max) if options is not None else (0.5, 1.5)
    return random.uniform(low, max(low, high))


def _kind(texts: list[str]) -> str:
    # Singles and batches have different latencies: keep them apart in the statistics.
    return "batch" if len(texts) > 1 else "single"


class _HttpClassifyUser(FastHttpUser):
    """POSTs the inference JSON to ``path`` and checks one prediction per input comes back."""

    abstract = True
    path = "/invocations"
    wait_time = _think_time

    def __init__(self, environment: Environment) -> None:
        options = environment.parsed_options
        if options is not None:
            # Read by FastHttpUser.__init__ when it builds the connection pool.
            self.network_timeout = options.request_timeout
            self.connection_timeout = min(options.request_timeout, 10.0)
        super().__init__(environment)

    def on_start(self) -> None:
        self.traffic = _traffic(self.environment)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    @task
    def classify(self) -> None:
        if _at_request_limit(self.environment):
            return
        texts = self.traffic.next_texts()
        with self.client.post(
            self.path,
            data=self.traffic.body(texts),
            headers=self.headers,
            name=f"{self.path} [{_kind(texts)}]",
            catch_response=True,
        ) as response:
            if not response.status_code:
                response.failure("no response (connection failed or timed out)")
            elif not 200 <= response.status_code < 300:
                response.failure(error_summary(response.status_code, response.content))
            elif (problem := check_response(response.content or b"", len(texts))) is not None:
                response.failure(problem)
            else:
                response.success()


class ServerUser(_HttpClassifyUser):
    """The model server over HTTP (local process or compose): ``POST {host}/invocations``."""

    path = "/invocations"


class ApiUser(_HttpClassifyUser):
    """The API Gateway stage URL with an API key: ``POST {host}/classify``."""

    path = "/classify"

    def on_start(self) -> None:
        super().on_start()
        options = self.environment.parsed_options
        if options is not None and options.api_key:
            self.headers["x-api-key"] = options.api_key


class EndpointCallError(Exception):
    """A failed InvokeEndpoint call, with a short message that groups well in the reports."""


class EndpointUser(User):
    """A SageMaker endpoint through boto3; ``--host``, when given, overrides the AWS URL.

    Every call is reported to ``events.request``; botocore's retries are off so that a
    throttled or failed call is counted as a failure instead of a slow success.
    """

    wait_time = _think_time

    def on_start(self) -> None:
        # boto3 is only needed here: importing it lazily keeps the HTTP users free of it.
        from client.endpoint import make_runtime_client

        options = self.environment.parsed_options
        self.traffic = _traffic(self.environment)
        self.endpoint_name = options.endpoint_name if options is not None else ""
        if not self.endpoint_name:
            raise ValueError("EndpointUser needs --endpoint-name")
        self.runtime = make_runtime_client(
            region=options.region if options is not None else None,
            endpoint_url=self.host or None,
            timeout=options.request_timeout if options is not None else 60.0,
        )

    @task
    def invoke(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if _at_request_limit(self.environment):
            return
        texts = self.traffic.next_texts()
        started_at = time.time()
        started = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=self.traffic.body(texts),
            )
            body = response["Body"].read()
            length = len(body)
            if (problem := check_response(body, len(texts))) is not None:
                exception = EndpointCallError(problem)
        except ClientError as exc:
            exception = EndpointCallError(_client_error_summary(exc))
        except BotoCoreError as exc:
            exception = EndpointCallError(type(exc).__name__)
        self.environment.events.request.fire(
            request_type="InvokeEndpoint",
            name=f"{self.endpoint_name} [{_kind(texts)}]",
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=length,
            exception=exception,
            context={},
            start_time=started_at,
            url=None,
            response=None,
        )


def _client_error_summary(exc: Any) -> str:
    response = exc.response
    code = response.get("Error", {}).get("Code", "")
    if code == "ModelError":
        # The container's own status and error code, passed through by SageMaker.
        original = str(response.get("OriginalMessage") or "").encode("utf-8")
        return "ModelError " + error_summary(int(response.get("OriginalStatusCode") or 0), original)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return f"HTTP {status} {code}".rstrip()
