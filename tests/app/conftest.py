"""Fixtures of the serving tests: the real app with the tiny model, started and ready."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.support import started_client, tiny_settings


@pytest.fixture(scope="session")
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """The real app with the tiny model and default settings."""
    client = started_client(tiny_settings(tiny_model_dir))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def strict_client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """The real app with small limits, to reach 413 cheaply."""
    settings = tiny_settings(tiny_model_dir, max_instances=4, queue_size=16, max_body_bytes=2048)
    client = started_client(settings)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def flood_client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """The real app with a 16-text queue and one text per model call: easy to flood."""
    settings = tiny_settings(tiny_model_dir, max_instances=16, queue_size=16, max_batch_size=1)
    client = started_client(settings)
    yield client
    client.__exit__(None, None, None)
