"""One error vocabulary across the deployables: the same code means the same HTTP status in the
model server (``app/errors.py``), the Lambda (``lambda/api_errors.py``), the local API front
that stands in for API Gateway (``devtools/local_api``) and the Python client
(``client/errors.py``). Each table is compared with another, not with a copy kept here, so a
change to any one of them alone fails; where they differ on purpose, the difference is
spelled out below. (API Gateway's own answers, ``infra/template.yaml``, are checked against
the Lambda's table in tests/lambda/test_template.py.)
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api_errors import ERROR_STATUS
from app.errors import STATUS
from client.errors import APIStatusError, error_for_status
from devtools.local_api import LocalApi, start_local_api
from devtools.local_api.gateway import API_GATEWAY_MAX_BODY_BYTES
from devtools.processes import free_port

SERVER: dict[str, int] = {code.value: status for code, status in STATUS.items()}
API: dict[str, int] = dict(ERROR_STATUS)

# Codes only an API front answers: API Gateway refusing the key (403), and the front's word
# for an endpoint that failed or could not be reached (502: the model server's own 500/503
# are the endpoint failing, as far as an API caller can tell).
FRONT_ONLY = {"forbidden": 403, "upstream_error": 502}
# Codes only the model server answers: 408 is for a body that trickles in slower than
# SERVE_BODY_TIMEOUT_S. SageMaker sends the server whole bodies and the Lambda gets whole
# events, so the API has no such answer (a model 4xx whose status has no code of the API's
# own is answered 400 bad_request: lambda/sagemaker_invoke.py, model_error).
SERVER_ONLY = {"request_timeout": 408}
# API Gateway (or a proxy before it) may answer 401 with a body of its own; the client names
# that "unauthorized" (AuthenticationError, as for 403).
CLIENT_ONLY = {"unauthorized": 401}


def test_the_server_and_the_lambda_share_every_code_they_both_answer() -> None:
    assert {code: SERVER[code] for code in SERVER_ONLY} == SERVER_ONLY
    assert {code: API[code] for code in FRONT_ONLY} == FRONT_ONLY
    shared = {code: status for code, status in SERVER.items() if code not in SERVER_ONLY}
    assert {code: status for code, status in API.items() if code not in FRONT_ONLY} == shared


@pytest.mark.parametrize(
    ("code", "status"), sorted((SERVER | API | CLIENT_ONLY).items(), key=lambda item: item[1])
)
def test_the_client_reads_every_code_and_status_as_the_deployables_mean_them(
    code: str, status: int
) -> None:
    # A body in our error shape: the code is kept, on the exception its status stands for.
    by_code = error_for_status(status, code=code, message="m")
    # A bare status (a proxy's page, API Gateway's stock answer): the code its table gives.
    by_status = error_for_status(status)
    assert (by_code.status_code, by_code.code) == (status, code)
    assert by_status.code == code
    assert type(by_code) is type(by_status)
    assert isinstance(by_code, APIStatusError)


# --- the local API front ----------------------------------------------------------------


@pytest.fixture
def front() -> Iterator[LocalApi]:
    # Nothing in these tests reaches a model server: the port behind serve_url is closed.
    with start_local_api(f"http://127.0.0.1:{free_port()}") as api:
        yield api


def _error(response: httpx.Response) -> tuple[int, str]:
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    return response.status_code, error["code"]


def _raise(event: Mapping[str, Any], context: Any) -> Mapping[str, Any]:
    raise RuntimeError("a bug in the handler")


def test_the_local_front_answers_its_own_errors_from_the_lambdas_table(front: LocalApi) -> None:
    classify = f"{front.url}/classify"
    answers = [_error(httpx.get(f"{front.url}/nowhere", timeout=10))]
    # A Lambda that raised: API Gateway's integration failure (IntegrationFailureResponse).
    front.server.lambda_handler = _raise
    answers.append(_error(httpx.post(classify, json={}, timeout=10)))
    front.server.lambda_handler = None  # no handler yet
    answers.append(_error(httpx.post(classify, json={}, timeout=10)))
    answers.append(_too_large(front))
    for status, code in answers:
        assert API[code] == status, (status, code)
    assert [status for status, _ in answers] == [404, 502, 503, 413]


def _too_large(front: LocalApi) -> tuple[int, str]:
    """A body over API Gateway's 10 MB, announced and never sent: refused on its headers."""
    address = urlsplit(front.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.putrequest("POST", "/classify")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(API_GATEWAY_MAX_BODY_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        error = json.loads(response.read())["error"]
    finally:
        connection.close()
    assert set(error) == {"code", "message", "request_id"}
    return response.status, error["code"]
