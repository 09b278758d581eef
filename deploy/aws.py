"""Typed boto3 clients, created once per command from one session.

Tests hand in a session with dummy credentials and an ``endpoint_url`` pointing at a local
AWS-compatible server; nothing here knows about tests.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from deploy.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sts import STSClient

    from deploy.settings import DeploySettings

# Standard retries with a few attempts: control-plane calls are idempotent reads or
# create calls that fail cleanly on a duplicate name.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


class AwsClients:
    """The AWS clients one command needs, all from the same session and region."""

    def __init__(self, session: boto3.Session, *, endpoint_url: str | None = None) -> None:
        if session.region_name is None:
            raise ConfigError("no AWS region: pass --region or set NEWSCLF_REGION/AWS_REGION")
        self.session = session
        self.region: str = session.region_name
        self._endpoint_url = endpoint_url

    @classmethod
    def from_settings(cls, settings: DeploySettings) -> AwsClients:
        session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
        return cls(session, endpoint_url=settings.endpoint_url)

    def _client(self, service: str) -> object:
        return self.session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self._endpoint_url,
            config=_CLIENT_CONFIG,
        )

    @cached_property
    def ecr(self) -> ECRClient:
        return self._client("ecr")  # type: ignore[return-value]

    @cached_property
    def s3(self) -> S3Client:
        return self._client("s3")  # type: ignore[return-value]

    @cached_property
    def sagemaker(self) -> SageMakerClient:
        return self._client("sagemaker")  # type: ignore[return-value]

    @cached_property
    def runtime(self) -> SageMakerRuntimeClient:
        return self._client("sagemaker-runtime")  # type: ignore[return-value]

    @cached_property
    def autoscaling(self) -> ApplicationAutoScalingClient:
        return self._client("application-autoscaling")  # type: ignore[return-value]

    @cached_property
    def cloudwatch(self) -> CloudWatchClient:
        return self._client("cloudwatch")  # type: ignore[return-value]

    @cached_property
    def logs(self) -> CloudWatchLogsClient:
        return self._client("logs")  # type: ignore[return-value]

    @cached_property
    def cloudformation(self) -> CloudFormationClient:
        return self._client("cloudformation")  # type: ignore[return-value]

    @cached_property
    def sts(self) -> STSClient:
        return self._client("sts")  # type: ignore[return-value]

    def account_id(self, settings: DeploySettings) -> str:
        """The configured account id, else the caller's own (one STS call)."""
        if settings.account_id:
            return settings.account_id
        return self.sts.get_caller_identity()["Account"]
