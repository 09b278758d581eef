"""The model server reads the variables docs/serving.md documents, and no others."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import DEFAULT_MAX_BATCH_SIZE, Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No server variable from the caller's environment."""
    for name in ("SAGEMAKER_BASE_DIR", "SAGEMAKER_BIND_TO_PORT", "PORT", "BASE_DIR", "HOST"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_generic_variable_names_are_not_read(clean_env: pytest.MonkeyPatch) -> None:
    # PORT is what many platforms (and shells) set for their own purposes.
    clean_env.setenv("PORT", "1234")
    clean_env.setenv("BASE_DIR", "/somewhere/else")
    settings = Settings()
    assert settings.port == 8080
    assert settings.base_dir == Path("/opt/ml")


def test_the_sagemaker_names_are_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("SAGEMAKER_BIND_TO_PORT", "1234")
    clean_env.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    settings = Settings()
    assert (settings.port, settings.base_dir) == (1234, tmp_path)
    # Code (tests, tools) still passes the fields by name.
    assert Settings(port=9000, base_dir=tmp_path).port == 9000


def test_a_transform_jobs_variables_size_the_server(clean_env: pytest.MonkeyPatch) -> None:
    # What SageMaker sets in a Batch Transform container (Custom Inference Code with Batch
    # Transform): SAGEMAKER_BATCH always, the other three when the job names them.
    clean_env.setenv("SAGEMAKER_BATCH", "true")
    clean_env.setenv("SAGEMAKER_BATCH_STRATEGY", "SINGLE_RECORD")
    clean_env.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", "20")
    clean_env.setenv("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "3")
    settings = Settings()
    assert settings.records_in_chunks
    assert settings.max_body_bytes == 20 * 1024 * 1024
    assert settings.request_timeout_s == 600  # InvocationsTimeoutInSeconds' default
    assert (settings.batch_strategy, settings.max_concurrent_transforms) == ("SINGLE_RECORD", 3)
    # The operator's own values win.
    clean_env.setenv("SERVE_REQUEST_TIMEOUT_S", "3600")
    clean_env.setenv("SERVE_MAX_BODY_BYTES", "1048576")
    assert (Settings().request_timeout_s, Settings().max_body_bytes) == (3600, 1048576)


def test_async_inference_takes_large_bodies(clean_env: pytest.MonkeyPatch) -> None:
    assert not Settings().records_in_chunks
    assert Settings().max_body_bytes == 6 * 1024 * 1024
    clean_env.setenv("SERVE_ASYNC_INFERENCE", "true")
    settings = Settings()
    assert settings.records_in_chunks
    assert (settings.max_body_bytes, settings.request_timeout_s) == (100 * 1024**2, 900)
    clean_env.setenv("SERVE_MAX_BODY_BYTES", str(1024**3))  # Asynchronous Inference's limit
    assert Settings().max_body_bytes == 1024**3


def test_a_batch_size_of_zero_reads_as_the_default(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().max_batch_size == DEFAULT_MAX_BATCH_SIZE == 64
    clean_env.setenv("SERVE_MAX_BATCH_SIZE", "0")  # what "0: 64" configurations still say
    assert Settings().max_batch_size == 64
    clean_env.setenv("SERVE_MAX_BATCH_SIZE", "16")
    assert Settings().max_batch_size == 16


def test_model_threads_are_read_and_bounded(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().model_threads == 0  # derived from the usable CPUs at start-up
    clean_env.setenv("SERVE_MODEL_THREADS", "3")
    assert Settings().model_threads == 3
    clean_env.setenv("SERVE_MODEL_THREADS", "-1")
    with pytest.raises(ValidationError, match="model_threads"):
        Settings()
