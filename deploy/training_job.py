"""SageMaker training jobs from the training image: create, wait with logs, read the result.

boto3's ``create_training_job`` rather than the SDK's ``ModelTrainer``: the image is a
bring-your-own container with its own entry point, so ModelTrainer's source-code upload and
driver scripts add nothing, while its staging-bucket resolution (STS, the default bucket,
``iam:SimulatePrincipalPolicy``) adds calls and permissions. The request below is exactly
what SageMaker receives, and what the tests assert on against a local AWS-compatible server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from deploy.errors import AwsError, ConfigError, JobFailedError, NotFoundError, error_code
from deploy.names import is_timestamped_name, timestamped_name
from training.errors import HyperparameterError
from training.hyperparameters import parse_hyperparameters
from training.sagemaker_env import METRIC_DEFINITIONS as TRAINING_METRICS
from training.sagemaker_env import decode_hyperparameter

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.literals import TrainingInstanceTypeType
    from mypy_boto3_sagemaker.type_defs import (
        CreateTrainingJobRequestTypeDef,
        DescribeTrainingJobResponseTypeDef,
        MetricDefinitionTypeDef,
        ResourceConfigTypeDef,
    )

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})

# SageMaker scrapes these regexes from the container's stdout into CloudWatch metrics and
# FinalMetricDataList. The training side owns them next to the code that prints the lines;
# that module is standard library only, so importing it pulls in no training dependency.
METRIC_DEFINITIONS: tuple[MetricDefinitionTypeDef, ...] = tuple(
    {"Name": metric["Name"], "Regex": metric["Regex"]} for metric in TRAINING_METRICS
)


def check_hyperparameters(hyperparameters: Mapping[str, str]) -> None:
    """Validate them as the training container will, before paying for an instance.

    The same parser the job runs (pydantic only, no training dependency): a typo fails here
    in a second instead of after the instance has been provisioned.
    """
    try:
        parse_hyperparameters({k: decode_hyperparameter(v) for k, v in hyperparameters.items()})
    except HyperparameterError as error:
        raise ConfigError(str(error)) from error


def job_name(settings: DeploySettings, now: datetime | None = None) -> str:
    """``<name>-YYYYmmdd-HHMMSS``: unique per second, sortable, within the 63-char limit."""
    return timestamped_name(settings.name, now)


def build_request(
    settings: DeploySettings,
    *,
    name: str,
    image_uri: str,
    channels: Mapping[str, str],
    hyperparameters: Mapping[str, str],
) -> CreateTrainingJobRequestTypeDef:
    """The CreateTrainingJob request: every knob comes from the settings."""
    resources: ResourceConfigTypeDef = {
        "InstanceType": cast("TrainingInstanceTypeType", settings.train_instance_type),
        "InstanceCount": settings.train_instance_count,
        "VolumeSizeInGB": settings.train_volume_gb,
    }
    request: CreateTrainingJobRequestTypeDef = {
        "TrainingJobName": name,
        "RoleArn": settings.require_role(),
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": list(METRIC_DEFINITIONS),
        },
        # SageMaker hands hyperparameters to the container as strings in hyperparameters.json.
        "HyperParameters": {key: str(value) for key, value in hyperparameters.items()},
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
            for channel, uri in sorted(channels.items())
        ],
        "OutputDataConfig": {"S3OutputPath": settings.s3_uri("models", "")},
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_s},
        "Tags": [{"Key": "project", "Value": settings.name}],
    }
    if settings.spot:
        request["EnableManagedSpotTraining"] = True
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = settings.max_wait_s
        # Per job: a spot interruption restarts the same job, which resumes from here.
        request["CheckpointConfig"] = {
            "S3Uri": settings.s3_uri("checkpoints", name, ""),
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        }
    return request


def start_training_job(sagemaker: SageMakerClient, request: CreateTrainingJobRequestTypeDef) -> str:
    try:
        return sagemaker.create_training_job(**request)["TrainingJobArn"]
    except ClientError as error:
        raise AwsError.from_client_error(error) from error


@dataclass(frozen=True)
class TrainingResult:
    job_name: str
    status: str
    model_artifact: str
    metrics: dict[str, float]
    billable_seconds: int | None


def describe_result(sagemaker: SageMakerClient, name: str) -> TrainingResult:
    """The artifact URI and final metrics of a finished job; a failed job raises."""
    described = _describe(sagemaker, name)
    status = described["TrainingJobStatus"]
    if status != "Completed":
        reason = described.get("FailureReason", "no reason given")
        raise JobFailedError(f"training job {name} ended {status}: {reason}")
    return TrainingResult(
        job_name=name,
        status=status,
        model_artifact=described["ModelArtifacts"]["S3ModelArtifacts"],
        metrics={m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])},
        billable_seconds=described.get("BillableTimeInSeconds"),
    )


def _describe(sagemaker: SageMakerClient, name: str) -> DescribeTrainingJobResponseTypeDef:
    try:
        return sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        if error_code(error) == "ValidationException":
            raise NotFoundError(f"training job {name} not found") from error
        raise AwsError.from_client_error(error) from error


def latest_training_job(sagemaker: SageMakerClient, settings: DeploySettings) -> str:
    """The newest Completed job named ``<name>-YYYYmmdd-HHMMSS``; the default source of
    ``deploy``. ``NameContains`` also finds ``<name>-staging-...``: those are not ours."""
    newest: tuple[datetime, str] | None = None
    paginator = sagemaker.get_paginator("list_training_jobs")
    pages = paginator.paginate(
        NameContains=settings.name,
        StatusEquals="Completed",
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    for page in pages:
        for summary in page["TrainingJobSummaries"]:
            name = summary["TrainingJobName"]
            if not is_timestamped_name(settings.name, name):
                continue
            if newest is None or summary["CreationTime"] > newest[0]:
                newest = (summary["CreationTime"], name)
    if newest is None:
        raise NotFoundError(
            f"no completed training job named {settings.name}-YYYYmmdd-HHMMSS: run "
            "`python -m deploy train` or pass --model-data s3://.../model.tar.gz"
        )
    return newest[1]


class LogStreamer:
    """Follows every CloudWatch log stream of one training job (one per instance)."""

    def __init__(self, logs: CloudWatchLogsClient, job: str, write: Callable[[str], None]) -> None:
        self._logs = logs
        self._job = job
        self._write = write
        self._tokens: dict[str, str | None] = {}

    def poll(self) -> int:
        """Write the lines that arrived since the last poll; return how many."""
        written = 0
        for stream in self._streams():
            while True:
                token = self._tokens.get(stream)
                if token:
                    page = self._logs.get_log_events(
                        logGroupName=LOG_GROUP, logStreamName=stream, nextToken=token
                    )
                else:
                    page = self._logs.get_log_events(
                        logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
                    )
                for event in page["events"]:
                    self._write(f"[{stream.rsplit('/', 1)[-1]}] {event['message']}")
                    written += 1
                self._tokens[stream] = page["nextForwardToken"]
                if not page["events"] or page["nextForwardToken"] == token:
                    break
        return written

    def _streams(self) -> list[str]:
        try:
            described = self._logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self._job}/"
            )
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return []  # the group appears with the first job's first line
            raise AwsError.from_client_error(error) from error
        return sorted(stream["logStreamName"] for stream in described["logStreams"])


def wait_for_training_job(
    sagemaker: SageMakerClient,
    logs: CloudWatchLogsClient,
    name: str,
    *,
    write: Callable[[str], None],
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainingResult:
    """Stream the job's logs until it ends, then return (or raise for) its result."""
    streamer = LogStreamer(logs, name, write)
    last_status = ""
    while True:
        described = _describe(sagemaker, name)
        status = f"{described['TrainingJobStatus']}/{described['SecondaryStatus']}"
        if status != last_status:
            logger.info("training job %s: %s", name, status)
            last_status = status
        streamer.poll()
        if described["TrainingJobStatus"] in TERMINAL_STATUSES:
            streamer.poll()  # lines flushed between the describe and the first poll
            return describe_result(sagemaker, name)
        sleep(poll_s)
