"""What the image tests share: the switch that runs them, and the tiny training job.

`make images-test` runs tests/docker/images (IMAGES_TEST=1); a plain `pytest` skips them,
since they build every target (minutes). tests/docker/engine.py says how the images are built
on a machine without a Docker engine, and what is swapped for what (the bases, the torch
index). The fixtures that build the images and train the model once per session are in
conftest.py beside this module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.paths import SAMPLE_DATA
from tests.docker.engine import Engine, image_name

# Every test module here sets `pytestmark = needs_images`.
needs_images = pytest.mark.skipif(
    os.environ.get("IMAGES_TEST") != "1",
    reason="builds every image (minutes): `make images-test` runs these",
)


def lay_out_training_job(base_dir: Path, pretrained: Path, hyperparameters: dict[str, str]) -> Path:
    """A small /opt/ml as SageMaker lays it out: config files, the train and pretrained
    channels (the base model as a channel: no Hub, as with network isolation)."""
    config = base_dir / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    (base_dir / "input" / "data" / "train").mkdir(parents=True)
    shutil.copy2(SAMPLE_DATA, base_dir / "input" / "data" / "train")
    shutil.copytree(pretrained, base_dir / "input" / "data" / "pretrained")
    for folder in ("model", "output", "checkpoints"):
        (base_dir / folder).mkdir()
    return base_dir


def run_training(
    engine: Engine, base_dir: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return engine.run(
        "run", "--rm", "--network", "none", "--volume", f"{base_dir}:/opt/ml",
        image_name("train"), *arguments,
        timeout=600, check=False,
    )  # fmt: skip
