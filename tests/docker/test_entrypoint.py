"""The images' ENTRYPOINT, run as `docker run IMAGE [train|serve]` would run it, without Docker.

Every test runs docker/entrypoint.sh (the file the Dockerfile copies to the ENTRYPOINT path)
with the environment the target's ENV lines set and its WORKDIR, in a copy of its
/opt/program; see tests/docker/support.py for the two paths that are mapped to local ones.
SAGEMAKER_BASE_DIR stands in for the /opt/ml that SageMaker mounts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from devtools.artifacts import LABELS
from devtools.paths import SAMPLE_DATA
from devtools.processes import free_port, wait_for_ping
from tests.docker.support import TINY_JOB, Image

# The fake interpreter of the dispatch tests: it records how it was started, then exits 0.
FAKE_PYTHON = """#!/bin/sh
{ printf 'ARGV'; printf ' %s' "$@"; printf '\\n'; printf 'LD_LIBRARY_PATH=%s\\n' \\
  "${LD_LIBRARY_PATH:-}"; printf 'LD_PRELOAD=%s\\n' "${LD_PRELOAD:-}"; } > "$FAKE_PYTHON_RECORD"
"""


def run_with_fake_python(
    tmp_path: Path, target: str, *arguments: str, **extra_env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the target's entrypoint with a fake `python` first on PATH; return what it saw."""
    image = Image.load(target)
    fake_venv = tmp_path / "fake-venv"
    (fake_venv / "bin").mkdir(parents=True)
    (fake_venv / "bin" / "python").write_text(FAKE_PYTHON)
    (fake_venv / "bin" / "python").chmod(0o755)
    record = tmp_path / "record.txt"
    env = image.environment(fake_venv, tmp_path / "program")
    env.update(FAKE_PYTHON_RECORD=str(record), **extra_env)
    env.pop("LD_LIBRARY_PATH", None)
    result = subprocess.run(
        image.command(*arguments), env=env, capture_output=True, text=True, timeout=30
    )
    seen: dict[str, str] = {}
    if record.exists():
        for line in record.read_text().splitlines():
            key, _, value = line.partition("=") if "=" in line else line.partition(" ")
            seen[key] = value
    return result, seen


@pytest.mark.parametrize(
    ("target", "arguments", "module"),
    [
        ("train", (), "training"),  # `docker run IMAGE`: the image's CMD
        ("train", ("train",), "training"),  # SageMaker training jobs
        ("serve", ("serve",), "app"),  # SageMaker endpoints
        ("serve", (), "app"),
        ("serve-cpu", ("serve",), "app"),
    ],
)
def test_the_entrypoint_runs_exactly_the_module(
    tmp_path: Path, target: str, arguments: tuple[str, ...], module: str
) -> None:
    result, seen = run_with_fake_python(tmp_path, target, *arguments)
    assert result.returncode == 0, result.stderr
    assert seen["ARGV"] == f"-m {module}"


def test_no_argument_at_all_means_train(tmp_path: Path) -> None:
    # SageMaker and the SDK's local mode pass `train`, but a user may clear the CMD
    # (`--entrypoint` tricks, compose files): the script itself must default to train.
    image = Image.load("train")
    script = image.source_of(image.entrypoint[0])
    fake_venv = tmp_path / "venv"
    (fake_venv / "bin").mkdir(parents=True)
    (fake_venv / "bin" / "python").write_text(FAKE_PYTHON)
    (fake_venv / "bin" / "python").chmod(0o755)
    env = image.environment(fake_venv, tmp_path)
    env["FAKE_PYTHON_RECORD"] = str(tmp_path / "record.txt")
    subprocess.run([str(script)], env=env, check=True, timeout=30)
    assert (tmp_path / "record.txt").read_text().splitlines()[0] == "ARGV -m training"


def test_an_unknown_command_is_refused(tmp_path: Path) -> None:
    result, seen = run_with_fake_python(tmp_path, "serve", "predict")
    assert result.returncode == 2
    assert "unknown command: predict" in result.stderr
    assert seen == {}


def test_train_in_a_serving_image_is_refused_with_a_reason(
    tmp_path: Path, serve_venv: Path
) -> None:
    # The serving images hold no training code: `train` must say so, not crash on an import.
    image = Image.load("serve-cpu")
    program = image.lay_out_program(tmp_path / "program")
    base_dir = tmp_path / "opt_ml"
    (base_dir / "output").mkdir(parents=True)
    env = image.environment(serve_venv, program)
    env["SAGEMAKER_BASE_DIR"] = str(base_dir)
    result = subprocess.run(
        image.command("train"), cwd=program, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "this is a serving image" in result.stderr
    assert "ModuleNotFoundError" not in result.stderr
    assert "`train` target" in (base_dir / "output" / "failure").read_text()


# The first line of /proc/driver/nvidia/version with NVIDIA's proprietary kernel modules, and
# with its open ones (the default from driver 560 on).
PROPRIETARY_MODULE = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Release Build  "
OPEN_MODULE = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {}  Release Build  "
UNKNOWN_WORDING = "NVRM version: some future wording {} "
NVIDIA_SMI_FAILED = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)


def write_driver_files(
    tmp_path: Path,
    host_driver: str | None,
    *,
    version_line: str = PROPRIETARY_MODULE,
    nvidia_smi: str | None = None,
) -> dict[str, str]:
    """A cuda-compat folder as the nvidia/cuda images ship it, the kernel's version file, and
    an nvidia-smi that prints ``nvidia_smi`` (none when it is None)."""
    compat = tmp_path / "cuda-compat"
    compat.mkdir()
    (compat / "libcuda.so.560.35.05").write_bytes(b"")
    (compat / "libcuda.so.1").symlink_to("libcuda.so.560.35.05")
    version_file = tmp_path / "nvidia-version"
    if host_driver is not None:
        version_file.write_text(
            version_line.format(host_driver) + "(dvs-builder@U16-I3-A14-3-1)  Thu Oct 10 2024\n"
            "GCC version:  gcc version 7.3.1 20180712 (Red Hat 7.3.1-17) (GCC)\n"
        )
    smi = tmp_path / "nvidia-smi"
    if nvidia_smi is not None:
        # Answers only the query the entrypoint makes.
        smi.write_text(
            '#!/bin/sh\n[ "$*" = "--query-gpu=driver_version --format=csv,noheader" ] || exit 64\n'
            f"{nvidia_smi}\n"
        )
        smi.chmod(0o755)
    return {
        "CUDA_COMPAT_DIR": str(compat),
        "NVIDIA_DRIVER_VERSION_FILE": str(version_file),
        "NVIDIA_SMI": str(smi),
    }


@pytest.mark.parametrize(
    ("host_driver", "compat_on"),
    [
        ("470.256.02", True),  # g4dn/g5 default AMI: older than the image's CUDA 12.6
        ("535.54.03", True),  # al2-ami-sagemaker-inference-gpu-2(-1)
        ("560.35.05", False),  # the very driver the compat libraries come from
        ("575.57.08", False),  # newer: the host's own libcuda must win
        (None, False),  # no GPU (docker compose on a laptop, a CPU instance)
    ],
)
def test_cuda_compat_only_when_the_host_driver_is_older(
    tmp_path: Path, host_driver: str | None, compat_on: bool
) -> None:
    files = write_driver_files(tmp_path, host_driver)
    result, seen = run_with_fake_python(tmp_path, "serve", "serve", **files)
    assert result.returncode == 0, result.stderr
    library_path = seen["LD_LIBRARY_PATH"].split(":")
    assert (files["CUDA_COMPAT_DIR"] in library_path) is compat_on


@pytest.mark.parametrize(
    ("version_line", "nvidia_smi", "found"),
    [
        pytest.param(PROPRIETARY_MODULE, None, "535.54.03", id="proprietary-module"),
        # e.g. 550.144.03 on SageMaker's inference AMIs
        pytest.param(OPEN_MODULE, None, "535.54.03", id="open-module"),
        # The version file unreadable or in a form not known here: nvidia-smi says it.
        pytest.param(
            UNKNOWN_WORDING, "echo 535.54.03; echo 535.54.03", "535.54.03", id="nvidia-smi"
        ),  # one line per GPU
        pytest.param(UNKNOWN_WORDING, "exit 127", None, id="no-nvidia-smi"),
        # What nvidia-smi prints (on stdout) when it cannot talk to the driver.
        pytest.param(
            UNKNOWN_WORDING, f"echo {NVIDIA_SMI_FAILED!r}; exit 9", None, id="nvidia-smi-fails"
        ),
    ],
)
def test_the_host_driver_is_read_from_either_kernel_module_or_nvidia_smi(
    tmp_path: Path, version_line: str, nvidia_smi: str | None, found: str | None
) -> None:
    files = write_driver_files(
        tmp_path, "535.54.03", version_line=version_line, nvidia_smi=nvidia_smi
    )
    result, seen = run_with_fake_python(tmp_path, "serve", "serve", **files)
    assert result.returncode == 0, result.stderr
    library_path = seen["LD_LIBRARY_PATH"].split(":")
    if found is None:
        assert "no NVIDIA driver found" in result.stderr
        assert files["CUDA_COMPAT_DIR"] not in library_path
    else:
        assert f"host driver {found} is older than 560.35.05" in result.stderr
        assert files["CUDA_COMPAT_DIR"] in library_path


def test_nvidia_smi_is_asked_only_when_the_kernel_module_says_nothing(tmp_path: Path) -> None:
    files = write_driver_files(tmp_path, "575.57.08", nvidia_smi="echo 470.256.02")
    result, seen = run_with_fake_python(tmp_path, "serve", "serve", **files)
    assert "host driver 575.57.08 is not older" in result.stderr
    assert files["CUDA_COMPAT_DIR"] not in seen["LD_LIBRARY_PATH"].split(":")
    Path(files["NVIDIA_DRIVER_VERSION_FILE"]).unlink()  # a container without /proc/driver/nvidia
    result, seen = run_with_fake_python(tmp_path / "again", "serve", "serve", **files)
    assert "host driver 470.256.02 is older than 560.35.05" in result.stderr


def test_no_compat_package_no_change(tmp_path: Path) -> None:
    # The CPU image has no /usr/local/cuda/compat.
    result, seen = run_with_fake_python(
        tmp_path, "serve-cpu", "serve", CUDA_COMPAT_DIR=str(tmp_path / "absent")
    )
    assert result.returncode == 0, result.stderr
    assert seen["LD_LIBRARY_PATH"] == ""


def fake_jemalloc(tmp_path: Path) -> Path:
    """Where the test says jemalloc is; the loader skips a preload that is not a library."""
    library = tmp_path / "libjemalloc.so.2"
    library.write_bytes(b"")
    return library


@pytest.mark.parametrize("target", ["serve", "serve-cpu"])
def test_the_server_runs_with_jemalloc(tmp_path: Path, target: str) -> None:
    library = fake_jemalloc(tmp_path)
    result, seen = run_with_fake_python(
        tmp_path, target, "serve", JEMALLOC_LIBRARY=str(library), LD_PRELOAD="/other.so"
    )
    assert result.returncode == 0, result.stderr
    assert seen["LD_PRELOAD"] == f"{library}:/other.so"
    assert f"model server with jemalloc ({library})" in result.stderr


def test_training_keeps_glibc_malloc(tmp_path: Path) -> None:
    library = fake_jemalloc(tmp_path)
    result, seen = run_with_fake_python(tmp_path, "train", "train", JEMALLOC_LIBRARY=str(library))
    assert result.returncode == 0, result.stderr
    assert seen["LD_PRELOAD"] == ""


def test_serve_allocator_glibc_opts_out(tmp_path: Path) -> None:
    library = fake_jemalloc(tmp_path)
    result, seen = run_with_fake_python(
        tmp_path, "serve", "serve", JEMALLOC_LIBRARY=str(library), SERVE_ALLOCATOR="glibc"
    )
    assert result.returncode == 0, result.stderr
    assert seen["LD_PRELOAD"] == ""


def test_a_missing_jemalloc_is_reported_not_fatal(tmp_path: Path) -> None:
    absent = tmp_path / "absent.so"
    result, seen = run_with_fake_python(
        tmp_path, "serve-cpu", "serve", JEMALLOC_LIBRARY=str(absent)
    )
    assert result.returncode == 0, result.stderr
    assert seen["LD_PRELOAD"] == ""
    assert f"jemalloc not found at {absent}" in result.stderr


def test_an_unknown_allocator_is_refused(tmp_path: Path) -> None:
    result, seen = run_with_fake_python(tmp_path, "serve", "serve", SERVE_ALLOCATOR="tcmalloc")
    assert result.returncode == 2
    assert "SERVE_ALLOCATOR must be jemalloc or glibc, not 'tcmalloc'" in result.stderr
    assert seen == {}


# -- the real thing ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_serve_answers_ping_and_invocations(
    tmp_path: Path,
    tiny_model_dir: Path,
    tiny_onnx_model_dir: Path,
    serve_venv: Path,
    runtime: str,
) -> None:
    """`docker run IMAGE serve` with the serving image's dependencies only, for an artifact
    without and with model.onnx (which the server then runs with ONNX Runtime)."""
    image = Image.load("serve")
    program = image.lay_out_program(tmp_path / "program")
    base_dir = tmp_path / "opt_ml"
    base_dir.mkdir()
    artifact = tiny_onnx_model_dir if runtime == "onnx" else tiny_model_dir
    shutil.copytree(artifact, base_dir / "model")  # what SageMaker unpacks there
    port = free_port()
    env = image.environment(serve_venv, program)
    env.update(SAGEMAKER_BASE_DIR=str(base_dir), SAGEMAKER_BIND_TO_PORT=str(port))
    log_path = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            image.command("serve"), cwd=program, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_ping(url, process, timeout=60, log_path=log_path)
            response = httpx.post(
                f"{url}/invocations", json={"inputs": "Fed raises interest rates"}, timeout=30
            )
            assert response.status_code == 200, response.text
            [prediction] = response.json()
            assert prediction["label"] in LABELS

            # The image's HEALTHCHECK command, with the same environment.
            healthcheck = healthcheck_command(image)
            assert subprocess.run(healthcheck, env=env, timeout=30).returncode == 0
        finally:
            process.terminate()
            process.wait(timeout=30)
    # `exec`: the process the container starts is the server itself (PID 1 in the container),
    # so SageMaker's SIGTERM reaches it; a shell in between would swallow it.
    log_text = log_path.read_text()
    assert f"Started server process [{process.pid}]" in log_text
    assert "Application shutdown complete" in log_text
    assert f'"runtime":"{runtime}"' in log_text


def healthcheck_command(image: Image) -> list[str]:
    assert image.healthcheck is not None
    argv: list[str] = json.loads(image.healthcheck.split(" CMD ", 1)[1])
    return [part if not part.startswith("/usr/") else str(image.source_of(part)) for part in argv]


def lay_out_training_job(base_dir: Path, hyperparameters: dict[str, str]) -> None:
    config = base_dir / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )


def test_train_without_data_fails_with_a_reason(tmp_path: Path, train_venv: Path) -> None:
    """`docker run IMAGE train` on a job with no train channel: exit 1 and output/failure."""
    image = Image.load("train")
    program = image.lay_out_program(tmp_path / "program")
    base_dir = tmp_path / "opt_ml"
    lay_out_training_job(base_dir, {})
    (base_dir / "input" / "config" / "inputdataconfig.json").write_text("{}")
    env = image.environment(train_venv, program)
    env["SAGEMAKER_BASE_DIR"] = str(base_dir)
    result = subprocess.run(
        image.command("train"), cwd=program, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failure = (base_dir / "output" / "failure").read_text()
    assert "'train' input channel" in failure
    assert not (base_dir / "model" / "artifact.json").exists()


def test_train_writes_a_model_artifact(
    tmp_path: Path, tiny_model_dir: Path, train_venv: Path
) -> None:
    """A whole (tiny) training job through the image's entrypoint, as SageMaker runs it."""
    image = Image.load("train")
    program = image.lay_out_program(tmp_path / "program")
    base_dir = tmp_path / "opt_ml"
    lay_out_training_job(base_dir, TINY_JOB)
    (base_dir / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}})
    )
    train_channel = base_dir / "input" / "data" / "train"
    train_channel.mkdir(parents=True)
    shutil.copy2(SAMPLE_DATA, train_channel)
    # The base model as the `pretrained` channel: no Hub, as with network isolation.
    shutil.copytree(tiny_model_dir, base_dir / "input" / "data" / "pretrained")
    env = image.environment(train_venv, program)
    env["SAGEMAKER_BASE_DIR"] = str(base_dir)
    result = subprocess.run(
        image.command("train"), cwd=program, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    info = json.loads((base_dir / "model" / "artifact.json").read_text())
    assert tuple(info["labels"]) == LABELS
    assert not (base_dir / "output" / "failure").exists()
    # export_onnx defaults to true: the training image's packages export and check it, and
    # the exporter's hundred lines of graph rewrites stay out of the job's log.
    assert (base_dir / "model" / "model.onnx").stat().st_size > 0
    output = result.stdout + result.stderr
    assert "model_artifact.onnx: wrote" in output
    assert "onnxscript" not in output and "onnx_ir" not in output
