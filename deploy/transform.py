"""Batch Transform: classify every line of the files under an S3 prefix, without an endpoint.

SageMaker starts the serving image on the job's instances, splits each input file into lines
(``SplitType=Line``), packs lines into requests of at most ``MaxPayloadInMB`` (``MultiRecord``)
or sends one line per request (``SingleRecord``), posts them to ``/invocations``, and writes
``<input file name>.out`` under the output prefix with the answers joined by lines
(``AssembleWith=Line``), in input order.

What this assumes of the model server (app/): it answers a JSON Lines body (one
``{"inputs": ...}`` or JSON string per line) or a CSV body (one text per line) with one
output line per input line, in order, for any body up to ``SAGEMAKER_MAX_PAYLOAD_IN_MB``; it
reads that variable, ``SAGEMAKER_BATCH_STRATEGY`` (``MULTI_RECORD``/``SINGLE_RECORD``) and
``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``, which the job's ``Environment`` sets to the job's own
values so the server and SageMaker agree whatever ``/execution-parameters`` says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal, cast

from botocore.exceptions import ClientError

from deploy.endpoint_config import model_request
from deploy.errors import AwsError, ConfigError, JobFailedError
from deploy.names import timestamped_name
from deploy.settings import is_gpu_instance

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.literals import TransformInstanceTypeType
    from mypy_boto3_sagemaker.type_defs import (
        CreateTransformJobRequestTypeDef,
        TransformResourcesTypeDef,
    )

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

DataFormat = Literal["jsonl", "csv"]
BatchStrategy = Literal["MultiRecord", "SingleRecord"]
MEDIA_TYPES: Final[dict[str, str]] = {"jsonl": "application/jsonlines", "csv": "text/csv"}
# CreateTransformJob: MaxPayloadInMB <= 100 and MaxConcurrentTransforms x MaxPayloadInMB <= 100.
MAX_PAYLOAD_MB: Final = 100
# TransformAmiVersion: NVIDIA driver 535 (CUDA 12.2) runs the CUDA 12 image through CUDA's
# minor-version compatibility (docs/containers.md); the other choice, 470, would need the
# forward-compatibility libraries.
GPU_TRANSFORM_AMI: Final = "al2-ami-sagemaker-batch-gpu-535"
TERMINAL_STATUSES: Final = frozenset({"Completed", "Failed", "Stopped"})
# Environment variables the job sets for the model server (TransformEnvironmentMap: <= 16).
MAX_ENVIRONMENT: Final = 16


@dataclass(frozen=True)
class TransformOptions:
    """One job's data and batching choices (the settings object holds the account ones)."""

    input_uri: str
    output_uri: str
    input_format: DataFormat = "jsonl"
    output_format: DataFormat = "jsonl"
    instance_count: int = 1
    max_payload_mb: int = 6
    batch_strategy: BatchStrategy = "MultiRecord"
    max_concurrent_transforms: int = 1
    environment: Mapping[str, str] | None = None

    def check(self) -> None:
        """Refuse what CreateTransformJob would refuse, before anything is created."""
        for name, uri in (("input", self.input_uri), ("output", self.output_uri)):
            if not uri.startswith("s3://") or len(uri) <= len("s3://"):
                raise ConfigError(f"the {name} must be an s3://bucket/prefix URI, got {uri!r}")
        if self.input_uri.rstrip("/") == self.output_uri.rstrip("/"):
            raise ConfigError("write the output under another prefix than the input")
        if not 1 <= self.max_payload_mb <= MAX_PAYLOAD_MB:
            raise ConfigError(f"max payload must be 1..{MAX_PAYLOAD_MB} MB")
        if self.max_concurrent_transforms < 1 or self.instance_count < 1:
            raise ConfigError("instance count and concurrent transforms must be at least 1")
        if self.max_concurrent_transforms * self.max_payload_mb > MAX_PAYLOAD_MB:
            raise ConfigError(
                f"concurrent transforms x max payload = {self.max_concurrent_transforms} x "
                f"{self.max_payload_mb} MB exceeds SageMaker's {MAX_PAYLOAD_MB} MB"
            )
        if len(self.server_environment()) > MAX_ENVIRONMENT:
            raise ConfigError(f"at most {MAX_ENVIRONMENT} environment variables in all")

    def server_environment(self) -> dict[str, str]:
        """What the model server reads to size its body limit and batching to the job's."""
        strategy = "MULTI_RECORD" if self.batch_strategy == "MultiRecord" else "SINGLE_RECORD"
        return {
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(self.max_payload_mb),
            "SAGEMAKER_BATCH_STRATEGY": strategy,
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(self.max_concurrent_transforms),
            **(self.environment or {}),
        }


def job_name(settings: DeploySettings, now: datetime | None = None) -> str:
    """``<name>-transform-YYYYmmdd-HHMMSS``: also the name of the job's model."""
    return timestamped_name(f"{settings.name}-transform", now)


def image_target(instance_type: str) -> str:
    """The Dockerfile target that runs on the instance type: CUDA or CPU."""
    return "serve" if is_gpu_instance(instance_type) else "serve-cpu"


def build_request(
    settings: DeploySettings, options: TransformOptions, *, name: str, model_name: str
) -> CreateTransformJobRequestTypeDef:
    resources: TransformResourcesTypeDef = {
        "InstanceType": cast("TransformInstanceTypeType", settings.instance_type),
        "InstanceCount": options.instance_count,
    }
    if is_gpu_instance(settings.instance_type):
        resources["TransformAmiVersion"] = GPU_TRANSFORM_AMI
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": options.max_concurrent_transforms,
        "MaxPayloadInMB": options.max_payload_mb,
        "BatchStrategy": options.batch_strategy,
        "Environment": options.server_environment(),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": options.input_uri}},
            "ContentType": MEDIA_TYPES[options.input_format],
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": options.output_uri,
            "Accept": MEDIA_TYPES[options.output_format],
            "AssembleWith": "Line",
        },
        "TransformResources": resources,
        "Tags": [{"Key": "project", "Value": settings.name}],
    }


def start_transform(
    sagemaker: SageMakerClient,
    settings: DeploySettings,
    options: TransformOptions,
    *,
    image_uri: str,
    model_data: str,
    now: datetime | None = None,
) -> str:
    """Create the job's model and start the job; returns the job name."""
    options.check()
    name = job_name(settings, now)
    try:
        sagemaker.create_model(
            **model_request(settings, name=name, image_uri=image_uri, model_data=model_data)
        )
        sagemaker.create_transform_job(
            **build_request(settings, options, name=name, model_name=name)
        )
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    return name


@dataclass(frozen=True)
class TransformResult:
    name: str
    status: str
    output_uri: str
    seconds: float | None


def wait_for_transform(
    sagemaker: SageMakerClient,
    name: str,
    *,
    write: Callable[[str], None],
    poll_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TransformResult:
    """Poll until the job ends, writing each status change; a failed job raises with its reason."""
    last = ""
    while True:
        try:
            described = sagemaker.describe_transform_job(TransformJobName=name)
        except ClientError as error:
            raise AwsError.from_client_error(error) from error
        status = described["TransformJobStatus"]
        if status != last:
            write(f"transform job {name}: {status}")
            last = status
        if status in TERMINAL_STATUSES:
            break
        sleep(poll_s)
    output = described["TransformOutput"]["S3OutputPath"]
    if status != "Completed":
        reason = described.get("FailureReason", "no reason given")
        raise JobFailedError(
            f"transform job {name} is {status}: {reason} (the container's log: CloudWatch "
            f"/aws/sagemaker/TransformJobs, stream {name}/...; partial output under {output})"
        )
    start, end = described.get("TransformStartTime"), described.get("TransformEndTime")
    seconds = (end - start).total_seconds() if start and end else None
    return TransformResult(name=name, status=status, output_uri=output, seconds=seconds)
