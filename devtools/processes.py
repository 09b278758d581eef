"""Child processes for development: free ports, the offline environment, a real model server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from devtools.paths import REPO_ROOT


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offline_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: offline, quiet, unbuffered."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        stop_model_server(self)


def start_server(
    args: list[str],
    log_path: Path,
    port: int,
    *,
    env: dict[str, str],
    cwd: Path = REPO_ROOT,
    timeout: float = 120.0,
) -> ServerProcess:
    """Start a server process that listens on ``port`` and wait for its /ping == 200."""
    # The child keeps its own handle on the log; ours is closed at once.
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"model server exited with {process.returncode}:\n" + log_path.read_text()
            )
        try:
            if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                return ServerProcess(url=url, process=process, log_path=log_path)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("model server did not answer /ping in time:\n" + log_path.read_text())


def start_model_server(
    base_dir: Path, log_path: Path, timeout: float = 120.0, **env: str
) -> ServerProcess:
    """Start ``python -m app`` (what the image's ``serve`` runs) and wait for /ping == 200."""
    port = free_port()
    return start_server(
        [sys.executable, "-m", "app"],
        log_path,
        port,
        env=offline_env(SAGEMAKER_BASE_DIR=str(base_dir), SAGEMAKER_BIND_TO_PORT=str(port), **env),
        timeout=timeout,
    )


def stop_model_server(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
