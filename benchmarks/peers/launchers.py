"""Start the peer model servers as their users run them, each on a free 127.0.0.1 port.

- The Hugging Face SageMaker inference toolkit, as its inference container's entry point does
  (``serving.main()``: multi-model-server with the toolkit's handler service, its default
  workers), with ``HF_TASK=text-classification`` and the model under
  ``$SAGEMAKER_BASE_DIR/model``.
- TorchServe with its documented batching: a model archive of
  :mod:`torchserve_handler` (``benchmarks/peers/``) whose model-config.yaml sets
  ``batchSize``, ``maxBatchDelay`` and the workers.

Each runs from its own venv (``benchmarks/peers/setup.sh``) in a session of its own, so
that stopping it stops its Java front end and its Python workers together. Both answer
SageMaker's ``GET /ping`` and ``POST /invocations``, which is all the load generator sends.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from devtools.processes import free_port, offline_env

HERE = Path(__file__).resolve().parent
DEFAULT_VENVS = Path.home() / ".cache" / "news-classifier" / "peers"
# What a pipeline or TorchServe handler loads: the Hugging Face files of the artifact, not
# its ONNX variants (the peers never read them; copying them would only cost disk).
HF_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "artifact.json",
)
READY_TEXT = b'{"inputs": "Stocks rally as the central bank holds rates"}'


@dataclass
class PeerProcess:
    """A server started in its own session; :meth:`stop` ends the whole session."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """SIGTERM to the session's process group (the session we started, nothing else),
        SIGKILL to what is left of it after 30 s; the Java front end outlives its launcher."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _group_alive(self.process):
                time.sleep(0.2)
            if not _group_alive(self.process):
                break
        self.process.wait(timeout=10)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader, or its zombie keeps the group alive
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_short_port() -> int:
    """A free 127.0.0.1 port below 32767: multi-model-server refuses any port from 32767 up
    (its ``Connector`` keeps ports in a Java ``short``), and the kernel hands out ephemeral
    ports from 32768, so :func:`devtools.processes.free_port` never fits it."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32767)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32767")


def venv_python(venvs: Path, name: str) -> Path:
    python = venvs / name / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"no {python}: run benchmarks/peers/setup.sh {venvs} first")
    return python


def copy_hf_model(model_dir: Path, out: Path) -> Path:
    """``out`` with the Hugging Face files of the artifact in ``model_dir`` (hard links where
    the file system allows, copies otherwise)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in HF_MODEL_FILES:
        source, target = model_dir / name, out / name
        if not source.is_file() or target.exists():
            continue
        try:
            target.hardlink_to(source)
        except OSError:
            target.write_bytes(source.read_bytes())
    return out


def _launch(name: str, args: list[str], env: dict[str, str], cwd: Path, port: int) -> PeerProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = cwd / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    peer = PeerProcess(name, port, process, log_path)
    try:
        wait_until_classifying(peer, timeout=300)
    except BaseException:
        peer.stop()
        raise
    return peer


def wait_until_classifying(peer: PeerProcess, timeout: float) -> None:
    """Until ``/invocations`` answers 200: a multi-model-server answers ``/ping`` before its
    workers have loaded the model."""
    url = f"http://127.0.0.1:{peer.port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise RuntimeError(f"{peer.name} exited:\n{peer.log_path.read_text()[-4000:]}")
        try:
            response = httpx.post(
                f"{url}/invocations",
                content=READY_TEXT,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{peer.name} did not classify in {timeout} s:\n{peer.log_path}")


def _peer_env(venvs: Path, venv: str, work: Path, **extra: str) -> dict[str, str]:
    bin_dir = venvs / venv / "bin"
    return offline_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(venvs / venv),
        TMPDIR=str(work),  # pid files and Java's temporary files stay in our folder
        **extra,
    )


def start_hf_toolkit(model_dir: Path, work: Path, venvs: Path = DEFAULT_VENVS) -> PeerProcess:
    """The toolkit's container entry point (``dockerd-entrypoint.py serve``) in-process:
    ``serving.main()``, which writes /etc/sagemaker-mms.properties and runs
    multi-model-server with the model at ``$SAGEMAKER_BASE_DIR/model``."""
    python = venv_python(venvs, "hf-toolkit")
    base = work / "opt_ml"
    copy_hf_model(model_dir, base / "model")
    port = free_short_port()
    env = _peer_env(
        venvs,
        "hf-toolkit",
        work,
        SAGEMAKER_BASE_DIR=str(base),
        SAGEMAKER_BIND_TO_PORT=str(port),
        HF_TASK="text-classification",
    )
    code = "from sagemaker_huggingface_inference_toolkit import serving; serving.main()"
    return _launch("hf-toolkit", [str(python), "-c", code], env, work, port)


@dataclass(frozen=True)
class TorchServeConfig:
    """TorchServe's batching and workers (model-config.yaml), and the handler's threads."""

    batch_size: int = 16
    max_batch_delay_ms: int = 5
    workers: int = 2  # physical cores / 2 and up, with one thread each (performance guide)
    torch_threads: int = 1
    job_queue_size: int = 0  # requests waiting per model before 503; 0: TorchServe's (100)

    def model_config_yaml(self) -> str:
        return "\n".join(
            [
                f"minWorkers: {self.workers}",
                f"maxWorkers: {self.workers}",
                f"batchSize: {self.batch_size}",
                f"maxBatchDelay: {self.max_batch_delay_ms}",
                "responseTimeout: 120",
                "handler:",
                f"  torch_threads: {self.torch_threads}",
                "",
            ]
        )


def start_torchserve(
    model_dir: Path, work: Path, config: TorchServeConfig, venvs: Path = DEFAULT_VENVS
) -> PeerProcess:
    """Archive the model with :mod:`torchserve_handler` (no-archive format: a folder) and
    serve it with ``torchserve --foreground``."""
    python = venv_python(venvs, "torchserve")
    bin_dir = python.parent
    files = copy_hf_model(model_dir, work / "hf_model")
    store = work / "model_store"
    store.mkdir(parents=True, exist_ok=True)
    (work / "model-config.yaml").write_text(config.model_config_yaml(), encoding="utf-8")
    subprocess.run(
        [
            str(bin_dir / "torch-model-archiver"),
            "--model-name=classifier",
            "--version=1.0",
            f"--handler={HERE / 'torchserve_handler.py'}",
            "--extra-files=" + ",".join(str(p) for p in sorted(files.iterdir())),
            f"--config-file={work / 'model-config.yaml'}",
            f"--export-path={store}",
            "--archive-format=no-archive",
            "--force",
        ],
        check=True,
        env=_peer_env(venvs, "torchserve", work),
    )
    port = free_port()
    properties = {
        "inference_address": f"http://127.0.0.1:{port}",
        "management_address": f"http://127.0.0.1:{free_port()}",
        "metrics_address": f"http://127.0.0.1:{free_port()}",
        # The per-minute system-metrics probe is a Python process of its own: on 2 shared
        # cores it would land in the other servers' measurements.
        "disable_system_metrics": "true",
    }
    if config.job_queue_size:
        properties["job_queue_size"] = str(config.job_queue_size)
    config_path = work / "config.properties"
    config_path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
    args = [
        str(bin_dir / "torchserve"),
        "--foreground",
        "--ncs",
        "--disable-token-auth",
        f"--ts-config={config_path}",
        f"--model-store={store}",
        "--models",
        "classifier=classifier",
    ]
    return _launch("torchserve", args, _peer_env(venvs, "torchserve", work), work, port)
