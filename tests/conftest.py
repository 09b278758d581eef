"""Fixtures shared across the suite: a tiny real model artifact and a real model server.

The helpers behind them live in ``devtools`` (shared with the benchmarks and the demo); test
modules import them from there, never from this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.artifacts import build_tiny_artifact
from devtools.paths import FULL_DATA, SAMPLE_DATA
from devtools.processes import ServerProcess, start_model_server, stop_model_server


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
