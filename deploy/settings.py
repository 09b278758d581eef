"""The one settings object of the deploy CLI.

Every value comes, highest priority first, from a command-line flag, a ``NEWSCLF_*``
environment variable, a config file (``--config`` / ``NEWSCLF_CONFIG_FILE``, TOML or JSON,
``deploy.toml`` in the working directory when present) or the default below. Nothing about an
account (region, account id, role, bucket) has a default: commands that need one say so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from deploy.errors import ConfigError

ENV_PREFIX = "NEWSCLF_"
DEFAULT_CONFIG_FILE = Path("deploy.toml")
# A CUDA 12 serving image needs a host driver that supports it: driver 550 / CUDA 12.4.
DEFAULT_INFERENCE_AMI = "al2-ami-sagemaker-inference-gpu-3-1"
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
# Serverless Inference's memory sizes (ServerlessConfig.MemorySizeInMB, API reference).
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
_GPU_FAMILIES = ("ml.g", "ml.p")
# Jobs, models and configs are named <name>-YYYYmmdd-HHMMSS, within SageMaker's 63 characters.
_RESOURCE_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,46}$")


class DeploySettings(BaseSettings):
    """Where and what to deploy. Field names are also the flag names (``--role-arn``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    config_file: Path | None = Field(
        default=None, description="TOML or JSON file with these settings"
    )

    # The account.
    region: str | None = Field(
        default=None, description="AWS region; default: the AWS SDK's own chain"
    )
    profile: str | None = Field(default=None, description="AWS shared-config profile")
    endpoint_url: str | None = Field(
        default=None, description="an AWS-compatible endpoint for every service (LocalStack, moto)"
    )
    account_id: str | None = Field(default=None, description="AWS account id; default: from STS")
    role_arn: str | None = Field(default=None, description="SageMaker execution role ARN")
    bucket: str | None = Field(
        default=None, description="S3 bucket for data, checkpoints and models"
    )
    s3_prefix: str = Field(default="news-classifier", description="key prefix inside the bucket")
    name: str = Field(
        default="news-classifier", description="base name of jobs, models and configs"
    )

    # Images.
    train_repository: str = Field(default="news-classifier-train", description="ECR repo, training")
    serve_repository: str = Field(default="news-classifier-serve", description="ECR repo, serving")
    image_tag: str | None = Field(
        default=None, description="image tag; default: <version>-<commit>"
    )
    dockerfile: Path = Field(
        default=Path("docker/Dockerfile"), description="the multi-target Dockerfile"
    )
    build_context: Path = Field(default=Path(), description="docker build context")
    platform: str = Field(default="linux/amd64", description="target platform of the images")
    build_args: dict[str, str] = Field(
        default_factory=dict, description="docker --build-arg values (CUDA/torch versions)"
    )

    # Training job.
    train_instance_type: str = Field(default="ml.g5.xlarge", description="training instance type")
    train_instance_count: int = Field(default=1, ge=1, description="training instance count")
    train_volume_gb: int = Field(default=30, ge=1, description="training ML storage volume")
    max_runtime_s: int = Field(default=4 * 3600, ge=60, description="training time limit")
    spot: bool = Field(default=True, description="managed spot training (resumes from checkpoints)")
    max_wait_s: int = Field(
        default=8 * 3600, ge=60, description="spot: runtime plus waiting for capacity"
    )
    hyperparameters: dict[str, str] = Field(
        default_factory=dict, description="training hyperparameters (values are strings)"
    )

    # Endpoint.
    endpoint_name: str = Field(default="news-classifier", description="SageMaker endpoint name")
    instance_type: str = Field(
        default="ml.g5.xlarge", description="endpoint instance type (GPU or CPU)"
    )
    initial_instance_count: int = Field(default=1, ge=1, description="instances at creation")
    min_capacity: int = Field(default=1, ge=1, description="autoscaling minimum instances")
    max_capacity: int = Field(default=2, ge=1, description="autoscaling maximum instances")
    target_invocations: float = Field(
        default=300.0,
        gt=0,
        description="target SageMakerVariantInvocationsPerInstance (per minute)",
    )
    scale_in_cooldown_s: int = Field(default=300, ge=0, description="autoscaling scale-in cooldown")
    scale_out_cooldown_s: int = Field(
        default=60, ge=0, description="autoscaling scale-out cooldown"
    )
    inference_ami_version: str = Field(
        default=DEFAULT_INFERENCE_AMI, description="InferenceAmiVersion used on GPU instances"
    )
    startup_health_check_timeout_s: int = Field(
        default=600, ge=60, le=3600, description="ContainerStartupHealthCheckTimeoutInSeconds"
    )
    model_download_timeout_s: int = Field(
        default=600, ge=60, le=3600, description="ModelDataDownloadTimeoutInSeconds"
    )

    # Hosting mode (docs/aws.md, "Hosting modes and safe rollout").
    hosting: Literal["realtime", "serverless", "async"] = Field(
        default="realtime", description="real-time instances, Serverless Inference or async"
    )
    serverless_memory_mb: int = Field(
        default=3072, description="Serverless MemorySizeInMB: 1024, 2048, ... 6144"
    )
    serverless_max_concurrency: int = Field(
        default=5, ge=1, le=200, description="Serverless MaxConcurrency (1-200)"
    )
    async_output: str | None = Field(
        default=None, description="async: s3:// prefix SageMaker writes the results to"
    )
    async_failure_output: str | None = Field(
        default=None, description="async: s3:// prefix for error results (default: output)"
    )
    async_success_topic: str | None = Field(default=None, description="async: SNS topic ARN")
    async_error_topic: str | None = Field(default=None, description="async: SNS topic ARN")
    async_max_concurrent_invocations: int | None = Field(
        default=None, ge=1, le=1000, description="async: requests in flight per instance"
    )
    async_target_backlog: float = Field(
        default=5.0, gt=0, description="async: target ApproximateBacklogSizePerInstance"
    )

    # Guarded rollout of an update (deployment guardrails).
    rollout: Literal["all-at-once", "canary", "linear"] = Field(
        default="canary", description="traffic shifting of a blue/green update"
    )
    canary_percent: int = Field(
        default=10, ge=1, le=99, description="canary: share of the new fleet's capacity first"
    )
    linear_step_percent: int = Field(
        default=25, ge=1, le=99, description="linear: share of capacity moved per step"
    )
    bake_s: int = Field(
        default=300, ge=0, le=3600, description="watch the alarms this long after each shift"
    )
    rollback_alarms: list[str] = Field(
        default_factory=list,
        description="CloudWatch alarms that roll an update back (default: create two)",
    )
    rollback_max_5xx: int = Field(
        default=5, ge=1, description="created alarm: Invocation5XXErrors per minute"
    )
    rollback_max_latency_ms: int = Field(
        default=1000, ge=1, description="created alarm: p99 ModelLatency per minute"
    )

    # Data capture (Model Monitor's format).
    capture_percent: int | None = Field(
        default=None, ge=0, le=100, description="share of requests captured to S3"
    )
    capture_destination: str | None = Field(
        default=None, description="s3:// prefix of captured data (default: <prefix>/capture)"
    )

    # The API in front (infra/ template) and teardown.
    stack_name: str | None = Field(
        default=None, description="CloudFormation stack of the API front"
    )
    api_url: str | None = Field(default=None, description="the API's base URL (invoke via HTTPS)")
    api_key: SecretStr | None = Field(default=None, description="the API key (x-api-key header)")

    # The MLOps pipeline (deploy/pipeline.py) and its Model Registry group.
    pipeline_name: str = Field(default="news-classifier", description="SageMaker Pipeline name")
    model_package_group: str = Field(
        default="news-classifier", description="Model Registry package group"
    )
    processing_instance_type: str = Field(
        default="ml.m5.xlarge", description="instance of the prepare and evaluate steps"
    )
    auto_approve: bool = Field(
        default=False, description="register a candidate that beats both as Approved"
    )
    gpu_inference_instances: list[str] = Field(
        default_factory=lambda: ["ml.g5.xlarge", "ml.g5.2xlarge", "ml.g6.xlarge"],
        description="GPU instance types a registered model supports (GPU serving image)",
    )
    cpu_inference_instances: list[str] = Field(
        default_factory=lambda: ["ml.c6i.xlarge", "ml.c6i.2xlarge", "ml.m5.xlarge"],
        description="CPU instance types a registered model supports (CPU serving image)",
    )

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError("must look like arn:aws:iam::<12-digit account>:role/<name>")
        return value

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _stringify_hyperparameters(cls, value: Any) -> Any:
        # SageMaker passes every hyperparameter as a string; accept TOML/JSON numbers too.
        if not isinstance(value, dict):
            return value
        return {
            str(key): str(item).lower() if isinstance(item, bool) else str(item)
            for key, item in value.items()
        }

    @field_validator("name", "endpoint_name")
    @classmethod
    def _check_resource_name(cls, value: str) -> str:
        # SageMaker's name pattern; lower case also suits the API template's IAM policy.
        if not _RESOURCE_NAME.match(value):
            raise ValueError("use lower-case letters, digits and hyphens, at most 47 characters")
        return value

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("s3://") or "/" in value):
            raise ValueError("give the bucket name only, without s3:// or a key")
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _strip_prefix(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("serverless_memory_mb")
    @classmethod
    def _check_serverless_memory(cls, value: int) -> int:
        if value not in SERVERLESS_MEMORY_MB:
            raise ValueError(f"must be one of {', '.join(map(str, SERVERLESS_MEMORY_MB))}")
        return value

    @field_validator("async_output", "async_failure_output", "capture_destination")
    @classmethod
    def _check_s3_uri(cls, value: str | None) -> str | None:
        if value is not None and not _S3_URI.match(value):
            raise ValueError("must be an s3://bucket/prefix URI")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.min_capacity > self.max_capacity:
            raise ValueError("min_capacity must not exceed max_capacity")
        if not self.min_capacity <= self.initial_instance_count <= self.max_capacity:
            raise ValueError("initial_instance_count must lie within [min_capacity, max_capacity]")
        if self.spot and self.max_wait_s < self.max_runtime_s:
            raise ValueError("max_wait_s must be at least max_runtime_s for spot training")
        if self.hosting == "serverless" and self.capture_percent is not None:
            # Serverless Inference's feature exclusions list data capture (Model Monitor).
            raise ValueError("Serverless Inference does not support data capture")
        if self.hosting != "async" and (self.async_output or self.async_success_topic):
            raise ValueError("async_output and SNS topics apply to async endpoints only (--async)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _ConfigFileSource(settings_cls, init_settings, env_settings),
        )

    # Values derived from the settings, each in one place.

    def require_role(self) -> str:
        if not self.role_arn:
            raise ConfigError(
                "no SageMaker execution role: pass --role-arn or set NEWSCLF_ROLE_ARN "
                "(an IAM role SageMaker can assume, see docs/aws.md)"
            )
        return self.role_arn

    def require_bucket(self) -> str:
        if not self.bucket:
            raise ConfigError("no S3 bucket: pass --bucket or set NEWSCLF_BUCKET")
        return self.bucket

    def s3_uri(self, *parts: str) -> str:
        """``s3://<bucket>/<prefix>/<parts...>`` (a trailing ``/`` when the last part is empty)."""
        return "s3://" + "/".join([self.require_bucket(), self.s3_prefix, *parts])

    @property
    def gpu_endpoint(self) -> bool:
        """Whether the endpoint runs the CUDA image (Serverless Inference is CPU only)."""
        return self.hosting != "serverless" and is_gpu_instance(self.instance_type)


def is_gpu_instance(instance_type: str) -> bool:
    """NVIDIA GPU instance families (g4dn, g5, g6, p3, p4d, p5, ...)."""
    return instance_type.startswith(_GPU_FAMILIES)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the config file named by the flag or the environment, else ``deploy.toml``."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init_settings = init_settings
        self._env_settings = env_settings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        path = self._config_path()
        if path is None:
            return {}
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        source: PydanticBaseSettingsSource
        if path.suffix == ".json":
            source = JsonConfigSettingsSource(self.settings_cls, json_file=path)
        elif path.suffix == ".toml":
            source = TomlConfigSettingsSource(self.settings_cls, toml_file=path)
        else:
            raise ConfigError(f"config file {path}: use a .toml or .json file")
        values = source()
        values.pop("config_file", None)
        return values

    def _config_path(self) -> Path | None:
        named: Any = None
        if isinstance(self._init_settings, InitSettingsSource):
            named = self._init_settings.init_kwargs.get("config_file")
        if named is None and isinstance(self._env_settings, EnvSettingsSource):
            named = self._env_settings().get("config_file")
        if named is not None:
            return Path(named)
        return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
