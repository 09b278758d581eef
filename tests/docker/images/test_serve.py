"""The `serve` and `serve-cpu` images, serving the artifact the `train` image made.

The containers run as Serverless Inference would allow: a read-only root file system with
only /tmp writable, the model artifact mounted read-only at /opt/ml/model.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.artifacts import LABELS
from devtools.processes import free_port
from tests.docker.engine import BuildResult, Engine, image_name
from tests.docker.images.support import needs_images

pytestmark = needs_images

SERVING_TARGETS = ("serve-cpu", "serve")
SERVING_PORT = 9090  # not the default 8080: SAGEMAKER_BIND_TO_PORT must be honoured


def run_options(engine: Engine) -> list[str]:
    """`run` options that differ between Docker and podman."""
    # podman's --read-only also mounts tmpfs on /run and /var/tmp unless told not to;
    # Docker's mounts nothing: ask for exactly /tmp on both.
    return ["--read-only-tmpfs=false"] if engine.name == "podman" else []


@dataclass
class Server:
    engine: Engine
    name: str
    url: str

    def logs(self) -> str:
        result = self.engine.run("logs", self.name, check=False)
        return result.stdout + result.stderr


def wait_for_ping(server: Server, timeout: float) -> list[int]:
    """Poll /ping until 200; returns every status seen before (connection errors as 0)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{server.url}/ping", timeout=2.0).status_code
        except httpx.TransportError:
            status = 0
        if status == 200:
            return seen
        seen.append(status)
        state = server.engine.run("inspect", "--format", "{{.State.Running}}", server.name)
        if state.stdout.strip() != "true":
            pytest.fail(f"the container stopped:\n{server.logs()[-5000:]}")
        time.sleep(0.2)
    pytest.fail(f"no /ping 200 within {timeout} s:\n{server.logs()[-5000:]}")


@contextlib.contextmanager
def serving_container(
    engine: Engine, target: str, model_dir: Path, name: str, *extra_env: str
) -> Iterator[Server]:
    port = free_port()
    engine.run("rm", "--force", name, check=False)
    engine.run(
        "run", "--detach", "--name", name,
        "--read-only", "--tmpfs", "/tmp", *run_options(engine),
        "--volume", f"{model_dir}:/opt/ml/model:ro",
        "--env", f"SAGEMAKER_BIND_TO_PORT={SERVING_PORT}",
        *(part for env in extra_env for part in ("--env", env)),
        "--publish", f"127.0.0.1:{port}:{SERVING_PORT}",
        image_name(target), "serve",
    )  # fmt: skip
    try:
        yield Server(engine=engine, name=name, url=f"http://127.0.0.1:{port}")
    finally:
        engine.run("rm", "--force", name, check=False, timeout=120)


@pytest.fixture(scope="module", params=SERVING_TARGETS)
def server(request: pytest.FixtureRequest, engine: Engine, trained_model: Path) -> Iterator[Server]:
    """The serving image with the trained artifact; one text per model call, so that the
    SIGTERM test (last) has requests in flight for a while."""
    target: str = request.param
    with serving_container(
        engine, target, trained_model, f"news-classifier-test-{target}", "SERVE_MAX_BATCH_SIZE=1"
    ) as running:
        statuses = wait_for_ping(running, timeout=180)
        # /ping says 503 while the model loads and 200 only once it is loaded.
        assert set(statuses) <= {0, 503}, statuses
        yield running


def test_ping_is_200_only_after_the_model_is_loaded(server: Server) -> None:
    # The fixture saw only refused connections and 503s before the first 200; the server's
    # log shows every 503 /ping before the model was loaded, none after.
    assert httpx.get(f"{server.url}/ping", timeout=5).status_code == 200
    lines = server.logs().splitlines()
    loaded = next(i for i, line in enumerate(lines) if '"message":"model loaded"' in line)
    not_ready = [i for i, line in enumerate(lines) if '"path":"/ping","status":503' in line]
    assert all(i < loaded for i in not_ready)


def test_invocations_answer_json_and_csv(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/invocations",
        json={"inputs": ["Fed raises interest rates", "New vaccine trial results"]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert [prediction["label"] in LABELS for prediction in response.json()] == [True, True]
    response = httpx.post(
        f"{server.url}/invocations",
        content="Fed raises interest rates\nNew vaccine trial results\n",
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    rows = response.text.strip().splitlines()
    assert len(rows) == 2
    assert all(row.split(",")[0] in LABELS for row in rows)


def image_healthcheck(engine: Engine, target: str) -> list[str]:
    inspected = json.loads(engine.run("image", "inspect", image_name(target)).stdout)[0]
    config: dict[str, Any] = inspected.get("Config") or {}
    # Docker puts it in Config, podman beside it.
    test: list[str] = (config.get("Healthcheck") or inspected.get("Healthcheck") or {})["Test"]
    assert test[0] == "CMD", test
    return test[1:]


def test_the_image_healthcheck_passes(server: Server) -> None:
    target = server.name.removeprefix("news-classifier-test-")
    command = image_healthcheck(server.engine, target)
    assert command[-1] == "/usr/local/bin/healthcheck"
    result = server.engine.run("exec", server.name, *command, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # The script runs by its own shebang too.
    result = server.engine.run("exec", server.name, "/usr/local/bin/healthcheck", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_server_is_pid_1_with_jemalloc_preloaded(server: Server) -> None:
    probe = (
        "import pathlib; "
        "print(pathlib.Path('/proc/1/cmdline').read_bytes().replace(b'\\0', b' ').decode()); "
        "print('libjemalloc.so' in pathlib.Path('/proc/1/maps').read_text())"
    )
    result = server.engine.run("exec", server.name, "python", "-c", probe)
    cmdline, jemalloc = result.stdout.splitlines()
    assert "-m app" in cmdline
    assert jemalloc == "True"


def test_the_root_file_system_is_read_only(server: Server) -> None:
    probe = (
        "import pathlib\n"
        "for path in ('/opt/program/x', '/opt/ml/model/x', '/tmp/x'):\n"
        "    try:\n"
        "        pathlib.Path(path).write_text('x'); print(path, 'writable')\n"
        "    except OSError:\n"
        "        print(path, 'read-only')\n"
    )
    result = server.engine.run("exec", server.name, "python", "-c", probe)
    assert result.stdout.split("\n")[:3] == [
        "/opt/program/x read-only",
        "/opt/ml/model/x read-only",
        "/tmp/x writable",
    ]


def metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def test_sigterm_drains_requests_in_flight(server: Server) -> None:
    # Last of the module for each target: it stops the container.
    url = f"{server.url}/invocations"

    def post(i: int) -> httpx.Response:
        texts = [f"headline {i} number {j} " * 3 for j in range(200)]
        return httpx.post(url, json={"inputs": texts}, timeout=120)

    with ThreadPoolExecutor(max_workers=6) as pool:
        pending = [pool.submit(post, i) for i in range(6)]
        deadline = time.monotonic() + 30
        while metric(server, "serving_queue_depth") < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.engine.run("kill", "--signal", "TERM", server.name)
        responses = [future.result() for future in pending]
    assert [response.status_code for response in responses] == [200] * 6
    exit_code = server.engine.run("wait", server.name, timeout=120).stdout.strip()
    assert exit_code == "0", server.logs()[-3000:]
    assert "queue drained" in server.logs()


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_train_in_a_serving_image_is_refused_clearly(
    engine: Engine, images: dict[str, BuildResult], target: str
) -> None:
    result = engine.run(
        "run", "--rm", "--network", "none", image_name(target), "train", check=False
    )
    assert result.returncode == 2
    assert "this is a serving image" in result.stderr
    assert "ModuleNotFoundError" not in result.stderr
