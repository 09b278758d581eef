"""Fixtures of the container tests: virtual environments holding one image's dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docker.support import build_closure_venv, dependency_closure, image_requirements


@pytest.fixture(scope="session")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serving images' /opt/venv: the `serve` extra's closure plus torch, nothing else."""
    closure = dependency_closure([*image_requirements("serve"), "torch"])
    return build_closure_venv(tmp_path_factory.mktemp("serve-image") / "venv", closure)


@pytest.fixture(scope="session")
def train_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training image's /opt/venv: the `train` extra's closure plus torch."""
    closure = dependency_closure([*image_requirements("train"), "torch"])
    return build_closure_venv(tmp_path_factory.mktemp("train-image") / "venv", closure)
