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


class ServerNotReadyError(RuntimeError):
    """A server process exited, or did not answer ``/ping`` with 200 in time."""


def wait_for_ping(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    *,
    timeout: float,
    log_path: Path | None = None,
    interval: float = 0.1,
) -> float:
    """Poll ``GET {url}/ping`` until it answers 200; the seconds that took.

    Raises ``ServerNotReadyError`` (with the tail of ``log_path``, when given) as soon as
    ``process`` exits, or after ``timeout`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise ServerNotReadyError(
                f"the server exited with status {process.returncode}{_log_tail(log_path)}"
            )
        try:
            if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(interval)
    raise ServerNotReadyError(
        f"no /ping 200 from {url} within {timeout:.0f} s{_log_tail(log_path)}"
    )


def _log_tail(log_path: Path | None, lines: int = 40) -> str:
    if log_path is None or not log_path.is_file():
        return ""
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"; the end of {log_path}:\n" + "\n".join(tail)


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

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
    cwd: str | Path = REPO_ROOT,
    timeout: float = 120.0,
) -> ServerProcess:
    """Start a server process that listens on ``port`` of 127.0.0.1, its output in
    ``log_path``, and wait for its /ping == 200 (stopping it if that never comes)."""
    # The child keeps its own handle on the log; ours is closed at once.
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = ServerProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        wait_for_ping(server.url, process, timeout=timeout, log_path=log_path)
    except ServerNotReadyError:
        stop_model_server(server)
        raise
    return server


def start_model_server(
    base_dir: Path,
    log_path: Path,
    timeout: float = 120.0,
    *,
    cwd: str | Path = REPO_ROOT,
    **env: str,
) -> ServerProcess:
    """Start ``python -m app`` (what the image's ``serve`` runs) on a free port of 127.0.0.1,
    its output in ``log_path``, and wait for /ping == 200; ``env`` adds to the environment.

    It listens on 127.0.0.1 only (``SERVE_HOST``; the image's contract is 0.0.0.0), unless
    ``env`` says otherwise."""
    port = free_port()
    child_env = offline_env(
        **{
            "SERVE_HOST": "127.0.0.1",
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            **env,
        }
    )
    return start_server(
        [sys.executable, "-m", "app"], log_path, port, env=child_env, cwd=cwd, timeout=timeout
    )


def stop_model_server(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
