"""The deploy CLI's exception tree; each error carries the process exit code it maps to."""

from __future__ import annotations

from botocore.exceptions import ClientError


class DeployError(Exception):
    """Base class: a failure the CLI reports in one line, without a traceback."""

    exit_code = 1


class ConfigError(DeployError):
    """A required setting is missing or invalid (role ARN, bucket, region, ...)."""

    exit_code = 2


class NotFoundError(DeployError):
    """Something the command builds on does not exist (training job, endpoint, image)."""

    exit_code = 3


class AwsError(DeployError):
    """An AWS API call failed; the message names the operation and AWS's error code."""

    exit_code = 4

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code

    @classmethod
    def from_client_error(cls, error: ClientError) -> AwsError:
        details = error.response.get("Error", {})
        return cls(
            error.operation_name,
            str(details.get("Code", "Unknown")),
            str(details.get("Message", "")),
        )


class ImageError(DeployError):
    """Building, inspecting or pushing a container image failed, or it has the wrong CPU."""

    exit_code = 5


class JobFailedError(DeployError):
    """A training job or an endpoint ended in a failed state."""

    exit_code = 6


def error_code(error: ClientError) -> str:
    """AWS's error code of a ``ClientError`` (``ValidationException``, ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))
