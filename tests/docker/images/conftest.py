"""The images, built once per session, and the model artifact the `train` image makes from
a tiny job: what every test of tests/docker/images runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docker.engine import TARGETS, BuildResult, Engine, build_images, find_engine, log
from tests.docker.images.support import lay_out_training_job, run_training
from tests.docker.support import TINY_JOB


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = find_engine()
    if found is None:
        pytest.fail(
            "no Docker engine answers and buildah + podman are not installed (as root): "
            "docker/install-build-tools.sh installs them"
        )
    log(f"engine: {found.name}")
    return found


@pytest.fixture(scope="session")
def images(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildResult]:
    """Every target, built once for the session; a failed build fails every test."""
    return build_images(engine, tmp_path_factory.mktemp("build-logs"), TARGETS)


@pytest.fixture(scope="session")
def trained_model(
    engine: Engine,
    images: dict[str, BuildResult],
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """`docker run IMAGE train` on a tiny job: the model artifact the serving tests serve."""
    base_dir = lay_out_training_job(
        tmp_path_factory.mktemp("train") / "opt_ml", tiny_model_dir, TINY_JOB
    )
    result = run_training(engine, base_dir, "train")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return base_dir / "model"
