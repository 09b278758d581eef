"""The model server reads the variables docs/serving.md documents, and no others."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings


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
