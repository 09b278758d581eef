"""The local API front over HTTP: API Gateway's side (/classify through the Lambda handler)
and the SageMaker runtime's side (InvokeEndpoint, as boto3 and the client use it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from devtools.local_api import LocalApi, main
from devtools.paths import REPO_ROOT
from devtools.processes import free_port, offline_env, wait_for_ping


def test_classify_over_http_through_the_handler(api_front: LocalApi) -> None:
    response = httpx.post(
        f"{api_front.url}/classify",
        json={"inputs": ["Apple unveils a new iPhone"], "parameters": {"top_k": 2}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    [ranked] = response.json()
    assert len(ranked) == 2
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-request-id"]


def test_preflight_and_unknown_routes(fault_front: LocalApi) -> None:
    preflight = httpx.options(f"{fault_front.url}/classify")
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]

    missing = httpx.get(f"{fault_front.url}/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{fault_front.url}/ping").status_code == 200


def test_a_binary_body_reaches_the_handler_as_base64(fault_front: LocalApi) -> None:
    response = httpx.post(
        f"{fault_front.url}/classify",
        content=b'{"inputs": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]["message"]


def test_invoke_endpoint_speaks_sagemakers_api(fault_front: LocalApi, fake_model: Any) -> None:
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=fault_front.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    ok = runtime.invoke_endpoint(
        EndpointName=fault_front.endpoint_name,
        Body=b'{"inputs": "a"}',
        ContentType="application/json",
    )
    assert ok["Body"].read() == fake_model.script.body
    assert ok["InvokedProductionVariant"] == "AllTraffic"

    fake_model.script.status, fake_model.script.body = 400, b'{"error": {"code": "bad_request"}}'
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=fault_front.endpoint_name, Body=b"{}")
    # The modeled members sit next to Error and ResponseMetadata (absent from the stubs' type).
    error: dict[str, Any] = dict(raised.value.response)
    assert error["OriginalStatusCode"] == 400
    assert error["OriginalMessage"] == '{"error": {"code": "bad_request"}}'
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424

    with pytest.raises(runtime.exceptions.ValidationError, match="not found"):
        runtime.invoke_endpoint(EndpointName="other-endpoint", Body=b"{}")


def test_the_cli_runs_the_handler_as_lambda_does(fake_model: Any, tmp_path: Path) -> None:
    """``python -m devtools.local_api``: settings from the environment, and the handler's
    client redirected by AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME alone."""
    port = free_port()
    env = offline_env(MAX_INPUTS="2")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_PROFILE"):
        env.pop(name, None)
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.local_api",
            "--serve-url",
            fake_model.url,
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, process, timeout=20)
        ok = httpx.post(f"{url}/classify", json={"inputs": ["a", "b"]}, timeout=20)
        too_many = httpx.post(f"{url}/classify", json={"inputs": ["a", "b", "c"]}, timeout=20)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    output = (tmp_path / "api.log").read_text()
    assert ok.status_code == 200, output
    assert ok.content == fake_model.script.body
    assert too_many.status_code == 413  # MAX_INPUTS from the environment
    assert process.returncode == 0  # SIGTERM is a clean stop
    assert '"status": 200' in output  # the handler's JSON log line


def test_the_cli_refuses_invalid_settings(monkeypatch: pytest.MonkeyPatch, fake_model: Any) -> None:
    monkeypatch.setenv("MAX_ATTEMPTS", "9")
    before = dict(os.environ)
    assert main(["--serve-url", fake_model.url, "--port", "0"]) == 2
    assert dict(os.environ) == before  # refused before configuring anything
