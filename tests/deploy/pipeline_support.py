"""Keeping the SageMaker SDK on this machine while the pipeline tests build definitions."""

from __future__ import annotations

from typing import Any

import pytest


def keep_sdk_local(patch: pytest.MonkeyPatch) -> None:
    """No IAM role check, no instance-metadata lookups, no usage telemetry.

    The SDK checks the execution role with IAM's policy simulator unless
    ``SAGEMAKER_VALIDATE_ROLE`` is false, makes boto3 clients of its own at import (whose
    credential chain would try the instance metadata service), and sends telemetry to an
    AWS-hosted URL from a thread; the tests use 127.0.0.1 only.
    """
    from sagemaker.core.telemetry import telemetry_logging

    patch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    patch.setattr(telemetry_logging, "_send_telemetry_request", _no_telemetry)


def _no_telemetry(*_args: Any, **_kwargs: Any) -> None:
    return None
