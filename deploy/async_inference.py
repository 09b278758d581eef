"""Asynchronous Inference: requests queued from S3, results written to S3, scaled to zero.

A caller uploads the body to S3 and calls ``InvokeEndpointAsync`` with its location; SageMaker
queues the request, the container answers it as it would ``InvokeEndpoint``, and SageMaker
writes the answer to the output prefix (or the error to the failure prefix), optionally
publishing to SNS. Bodies may be up to 1 GB and take up to an hour.

Scaling follows AWS's "Autoscale an asynchronous endpoint" guide: target tracking on the queue
per instance (``ApproximateBacklogSizePerInstance``) between 0 and ``max_capacity`` instances,
and because a fleet of zero has no per-instance backlog to track, a step policy that adds one
instance when the ``HasBacklogWithoutCapacity`` alarm fires.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from deploy import scaling
from deploy.errors import AwsError, DeployError, JobFailedError, error_code

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import (
        TargetTrackingScalingPolicyConfigurationTypeDef,
    )
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker.type_defs import AsyncInferenceConfigTypeDef
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

NAMESPACE: Final = "AWS/SageMaker"
SCALE_IN_COOLDOWN_S: Final = 600
SCALE_OUT_COOLDOWN_S: Final = 300


def output_prefix(settings: DeploySettings) -> str:
    return settings.async_output or settings.s3_uri("async", settings.endpoint_name, "output")


def async_inference_config(settings: DeploySettings) -> AsyncInferenceConfigTypeDef:
    output = output_prefix(settings)
    config: AsyncInferenceConfigTypeDef = {
        "OutputConfig": {
            "S3OutputPath": output,
            "S3FailurePath": settings.async_failure_output or output.rstrip("/") + "-failures",
        }
    }
    topics = {
        key: value
        for key, value in (
            ("SuccessTopic", settings.async_success_topic),
            ("ErrorTopic", settings.async_error_topic),
        )
        if value
    }
    if topics:
        config["OutputConfig"]["NotificationConfig"] = topics  # type: ignore[typeddict-item]
    if settings.async_max_concurrent_invocations:
        config["ClientConfig"] = {
            "MaxConcurrentInvocationsPerInstance": settings.async_max_concurrent_invocations
        }
    return config


def backlog_policy_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-backlog-per-instance"


def scale_from_zero_policy_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-scale-from-zero"


def scale_from_zero_alarm_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-has-backlog-without-capacity"


def attach_autoscaling(
    autoscaling: ApplicationAutoScalingClient,
    cloudwatch: CloudWatchClient,
    settings: DeploySettings,
) -> None:
    """0..max_capacity instances: track the backlog, and wake a fleet of zero on a backlog."""
    endpoint = settings.endpoint_name
    resource = scaling.resource_id(endpoint)
    tracking: TargetTrackingScalingPolicyConfigurationTypeDef = {
        "TargetValue": settings.async_target_backlog,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": NAMESPACE,
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
            "Statistic": "Average",
        },
        "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
        "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
    }
    try:
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=scaling.SCALABLE_DIMENSION,
            MinCapacity=0,
            MaxCapacity=settings.max_capacity,
        )
        autoscaling.put_scaling_policy(
            PolicyName=backlog_policy_name(endpoint),
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=scaling.SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=tracking,
        )
        step = autoscaling.put_scaling_policy(
            PolicyName=scale_from_zero_policy_name(endpoint),
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=scaling.SCALABLE_DIMENSION,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": SCALE_OUT_COOLDOWN_S,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        )
        cloudwatch.put_metric_alarm(
            AlarmName=scale_from_zero_alarm_name(endpoint),
            AlarmDescription=f"{endpoint}: requests queued and no instance; adds one",
            MetricName="HasBacklogWithoutCapacity",
            Namespace=NAMESPACE,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
            Statistic="Average",
            Period=60,
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
            AlarmActions=[step["PolicyARN"]],
        )
    except ClientError as error:
        raise AwsError.from_client_error(error) from error


@dataclass(frozen=True)
class AsyncResult:
    """Where the answer is and what it says (a failure raises ``JobFailedError`` instead)."""

    inference_id: str
    location: str
    body: bytes


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _read_if_present(s3: S3Client, uri: str) -> bytes | None:
    bucket, key = _split_s3(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise


def invoke_async(
    runtime: SageMakerRuntimeClient,
    s3: S3Client,
    settings: DeploySettings,
    body: bytes,
    *,
    content_type: str = "application/json",
    timeout_s: float = 3600.0,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncResult:
    """Upload ``body``, queue it, and wait until SageMaker writes the output or the failure."""
    request_id = uuid.uuid4().hex
    input_uri = settings.s3_uri("async", settings.endpoint_name, "input", f"{request_id}.json")
    bucket, key = _split_s3(input_uri)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        queued = runtime.invoke_endpoint_async(
            EndpointName=settings.endpoint_name,
            InputLocation=input_uri,
            ContentType=content_type,
            Accept="application/json",
            InferenceId=request_id,
        )
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    output, failure = queued["OutputLocation"], queued.get("FailureLocation")
    logger.info("queued %s; waiting for %s", input_uri, output)
    deadline = clock() + timeout_s
    while True:
        try:
            answer = _read_if_present(s3, output)
            if answer is not None:
                return AsyncResult(queued["InferenceId"], output, answer)
            error_body = _read_if_present(s3, failure) if failure else None
        except ClientError as error:
            raise AwsError.from_client_error(error) from error
        if error_body is not None:
            raise JobFailedError(
                f"async inference {queued['InferenceId']} failed ({failure}): "
                + error_body.decode("utf-8", "replace")[:500]
            )
        if clock() >= deadline:
            raise DeployError(
                f"no answer at {output} after {timeout_s:g} s; the request stays queued "
                "(a fleet scaled to zero takes minutes to start)"
            )
        sleep(poll_s)
