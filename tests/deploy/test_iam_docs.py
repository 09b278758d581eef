"""docs/aws.md's execution-role permissions cover what the training job does to S3."""

from __future__ import annotations

import re

from devtools.paths import REPO_ROOT
from training.checkpoint import KEEP

AWS_DOC = REPO_ROOT / "docs" / "aws.md"


def test_the_execution_role_may_delete_pruned_checkpoints() -> None:
    # The job keeps KEEP checkpoints and deletes older ones; SageMaker's sync then deletes
    # them in S3 too ("If a checkpoint is deleted in the SageMaker AI container, it will also
    # be deleted in the S3 folder", "Checkpoints in Amazon SageMaker AI"): s3:DeleteObject.
    assert KEEP >= 1
    text = AWS_DOC.read_text()
    role = re.search(r"The SageMaker execution role \(`role_arn`.*?\n\n", text, re.S)
    assert role is not None
    paragraph = " ".join(role.group(0).split())
    assert re.search(r"`s3:DeleteObject` on `<bucket>/<prefix>/checkpoints/\*`", paragraph)
