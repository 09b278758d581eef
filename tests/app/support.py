"""Helpers of the serving tests: settings pointing at the tiny artifact, and a started app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import Settings


def tiny_settings(model_dir: Path, **overrides: Any) -> Settings:
    """Settings for the tiny artifact; ``model_dir`` must be ``<base>/model``."""
    assert model_dir.name == "model"
    # Limits set, as they were before they were derived: derived ones follow the measured
    # speed of a busy machine, and tests must not (test_inference checks the derivation).
    values: dict[str, Any] = {
        "base_dir": model_dir.parent,
        "max_wait_ms": 1.0,
        "queue_size": 4096,
        "max_instances": 2048,
    }
    values.update(overrides)
    return Settings(**values)


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/ping").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("the app did not become ready")
        time.sleep(0.02)


def started_client(settings: Settings, **app_kwargs: Any) -> TestClient:
    """A TestClient whose app has run its start-up and answers /ping with 200."""
    client = TestClient(create_app(settings, **app_kwargs), raise_server_exceptions=False)
    client.__enter__()
    wait_ready(client)
    return client
