"""Where the SageMaker SDK goes: into the ``aws`` extra (the CLI), never into an image.

The closures are resolved as the Dockerfile's installs resolve them (tests/docker/support.py:
the requirement lines docker/requirements.py writes, through the installed distributions'
metadata).
"""

from __future__ import annotations

from tests.docker.support import dependency_closure, image_requirements

SDK_PARTS = {"sagemaker-core", "sagemaker-train", "sagemaker-mlops"}


def _sdk(names: set[str]) -> set[str]:
    return {name for name in names if name == "sagemaker" or name.startswith("sagemaker-")}


def test_the_aws_extra_has_the_sdk_parts_the_pipeline_uses_and_no_torch() -> None:
    closure = set(dependency_closure(image_requirements("aws")))
    assert closure >= SDK_PARTS
    assert "sagemaker" not in closure  # the meta-package is not needed
    assert "torch" not in closure


def test_the_serving_and_training_images_get_no_sagemaker_sdk() -> None:
    for extra in ("serve", "train"):
        closure = set(dependency_closure([*image_requirements(extra), "torch"]))
        assert "transformers" in closure  # the resolution works, so the next line can fail
        assert not _sdk(closure), extra
