"""One moto server per session, AWS clients pointed at it, and a recorder of sent requests.

moto runs as a real HTTP server (``ThreadedMotoServer`` on 127.0.0.1, a free port); the
clients under test are ordinary boto3 clients whose ``endpoint_url`` points at it. Its state
is reset before each test, so tests do not see each other's resources.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from deploy.aws import AwsClients
from tests.deploy.support import REGION, CallLog, Recorded, SentRequests


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_url(moto_server: str) -> str:
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NEWSCLF_* variable, AWS profile or deploy.toml from the developer's machine."""
    for name in list(os.environ):
        if name.startswith(("NEWSCLF_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def recorded(moto_url: str, session: boto3.Session) -> Recorded:
    """Clients on the moto server, with every call and every sent JSON body recorded."""
    calls, sent = CallLog(), SentRequests()
    # Registered on the session before any client exists: every client inherits both.
    session.events.register("provide-client-params.*.*", calls.record)
    session.events.register("before-send.*.*", sent.record)
    return Recorded(AwsClients(session, endpoint_url=moto_url), calls, sent)


@pytest.fixture
def aws(recorded: Recorded) -> AwsClients:
    return recorded.aws
