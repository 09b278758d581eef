"""A SageMaker endpoint from a model artifact: model, endpoint config, endpoint, autoscaling.

Every deploy creates a new model and a new endpoint config named ``<endpoint>-<timestamp>``.
A new endpoint is created; an existing one is switched to the new config with
``update_endpoint``, which SageMaker runs blue/green: the new fleet is provisioned and
health-checked before traffic moves, and the old one keeps serving until then. Nothing is
deleted first. Old configs and models stay for a rollback until ``teardown``.

An update keeps the variant's current instance count (``RetainAllVariantProperties``), so an
endpoint that autoscaling has grown is not shrunk to ``InitialInstanceCount`` by a deploy.
SageMaker rolls a failed update back and reports the endpoint ``InService`` on the old
config with a ``FailureReason``; that is a failed deploy here, not a success.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal, cast

from botocore.exceptions import ClientError, WaiterError

from deploy import async_inference, rollout
from deploy.capture import data_capture_config
from deploy.errors import AwsError, ConfigError, DeployError, JobFailedError, error_code
from deploy.names import timestamped_name

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import (
        PutScalingPolicyRequestTypeDef,
        ScalableTargetTypeDef,
        ScalingPolicyTypeDef,
    )
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.literals import (
        ProductionVariantInferenceAmiVersionType,
        ProductionVariantInstanceTypeType,
    )
    from mypy_boto3_sagemaker.type_defs import (
        ContainerDefinitionTypeDef,
        CreateEndpointConfigInputTypeDef,
        CreateModelInputTypeDef,
        DeploymentConfigTypeDef,
        DescribeEndpointConfigOutputTypeDef,
        DescribeEndpointOutputTypeDef,
        ProductionVariantTypeDef,
        UpdateEndpointInputTypeDef,
    )

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

VARIANT_NAME = "AllTraffic"
SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


def resource_id(endpoint_name: str) -> str:
    """Application Auto Scaling's id of the endpoint's one variant."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}"


def policy_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-invocations-per-instance"


def resource_name(settings: DeploySettings, now: datetime | None = None) -> str:
    """``<endpoint>-YYYYmmdd-HHMMSS``, the name of one deploy's model and endpoint config."""
    return timestamped_name(settings.endpoint_name, now)


def model_request(
    settings: DeploySettings, *, name: str, image_uri: str, model_data: str
) -> CreateModelInputTypeDef:
    # SageMaker downloads and unpacks model.tar.gz into /opt/ml/model before start-up.
    container: ContainerDefinitionTypeDef = {
        "Image": image_uri,
        "ModelDataUrl": model_data,
        "Mode": "SingleModel",
    }
    if settings.hosting == "async":
        # Async requests come from S3, up to 1 GB, with up to 900 s each: the server raises
        # its body limit and deadline to match (docs/serving.md, SERVE_ASYNC_INFERENCE).
        container["Environment"] = {"SERVE_ASYNC_INFERENCE": "true"}
    return {
        "ModelName": name,
        "ExecutionRoleArn": settings.require_role(),
        "PrimaryContainer": container,
        "Tags": [{"Key": "project", "Value": settings.name}],
    }


def endpoint_config_request(
    settings: DeploySettings, *, name: str, model_name: str
) -> CreateEndpointConfigInputTypeDef:
    """One variant: instances (real-time or async) or Serverless Inference's memory size."""
    variant: ProductionVariantTypeDef = {"VariantName": VARIANT_NAME, "ModelName": model_name}
    if settings.hosting == "serverless":
        # No instance type, count, health-check or download timeouts: SageMaker refuses them
        # next to ServerlessConfig, and bills memory x seconds of requests only.
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": settings.serverless_memory_mb,
            "MaxConcurrency": settings.serverless_max_concurrency,
        }
    else:
        variant.update(
            {
                "InstanceType": cast("ProductionVariantInstanceTypeType", settings.instance_type),
                "InitialInstanceCount": settings.initial_instance_count,
                "InitialVariantWeight": 1.0,
                # Loading the model (and CUDA) takes a while; /ping answers 200 only when ready.
                "ContainerStartupHealthCheckTimeoutInSeconds": (
                    settings.startup_health_check_timeout_s
                ),
                "ModelDataDownloadTimeoutInSeconds": settings.model_download_timeout_s,
            }
        )
    if settings.gpu_endpoint:
        # Pins the host's NVIDIA driver so the CUDA 12 image finds one that supports it.
        variant["InferenceAmiVersion"] = cast(
            "ProductionVariantInferenceAmiVersionType", settings.inference_ami_version
        )
    request: CreateEndpointConfigInputTypeDef = {
        "EndpointConfigName": name,
        "ProductionVariants": [variant],
        "Tags": [{"Key": "project", "Value": settings.name}],
    }
    if settings.hosting == "async":
        request["AsyncInferenceConfig"] = async_inference.async_inference_config(settings)
    capture = data_capture_config(settings)
    if capture is not None:
        request["DataCaptureConfig"] = capture
    return request


def hosting_of(config: DescribeEndpointConfigOutputTypeDef) -> str:
    """``realtime``, ``serverless`` or ``async``: how an existing endpoint config hosts."""
    if config.get("AsyncInferenceConfig"):
        return "async"
    if any("ServerlessConfig" in v for v in config["ProductionVariants"]):
        return "serverless"
    return "realtime"


def describe_endpoint(
    sagemaker: SageMakerClient, endpoint_name: str
) -> DescribeEndpointOutputTypeDef | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if error_code(error) == "ValidationException":
            return None  # SageMaker's answer for "Could not find endpoint"
        raise AwsError.from_client_error(error) from error


@dataclass(frozen=True)
class DeployResult:
    endpoint_name: str
    action: Literal["created", "updated"]
    model_name: str
    endpoint_config_name: str
    previous_config_name: str | None
    status: str
    autoscaling: bool
    rollout: str | None = None  # how an update shifted traffic, for the output


def deploy_endpoint(
    sagemaker: SageMakerClient,
    autoscaling: ApplicationAutoScalingClient,
    settings: DeploySettings,
    *,
    image_uri: str,
    model_data: str,
    cloudwatch: CloudWatchClient | None = None,
    wait: bool = True,
    poll_s: float = 30.0,
    now: datetime | None = None,
) -> DeployResult:
    """Create or blue/green-update the endpoint, wait for it, then attach autoscaling.

    An update of a real-time or async endpoint shifts traffic as ``settings.rollout`` says,
    watched by the named alarms or by two created in ``cloudwatch`` (without it and without
    named alarms, nothing rolls back on metrics). A failed or rolled-back update raises
    ``JobFailedError`` with SageMaker's reason, and the scaling the endpoint had before is
    registered again on the fleet still serving.
    """
    endpoint = settings.endpoint_name
    if settings.hosting == "async" and cloudwatch is None:
        raise ConfigError("an async endpoint's scaling from zero needs a CloudWatch client")
    existing = describe_endpoint(sagemaker, endpoint)
    if existing is not None and existing["EndpointStatus"] in BUSY_STATUSES:
        raise DeployError(
            f"endpoint {endpoint} is {existing['EndpointStatus']}; wait for it to settle first"
        )
    if existing is not None and existing["EndpointStatus"] == "Failed":
        # SageMaker cannot update a failed endpoint; it serves nothing, so removing it is safe.
        raise DeployError(
            f"endpoint {endpoint} is Failed ({existing.get('FailureReason', 'no reason given')}); "
            "run `python -m deploy teardown` and deploy again"
        )
    current = None
    if existing is not None:
        current = sagemaker.describe_endpoint_config(
            EndpointConfigName=existing["EndpointConfigName"]
        )
        _check_same_hosting(endpoint, current, settings)
    detached: ScalingSnapshot | None = None
    if current is not None and _instance_type_changes(current, settings):
        # Application Auto Scaling refuses an update that changes a scaled variant's
        # instance type: scaling is removed for the update and registered again after it.
        detached = snapshot_autoscaling(autoscaling, endpoint)
        if detached.targets and not wait:
            raise ConfigError(
                f"endpoint {endpoint} is autoscaled and the instance type changes: scaling is "
                "detached during such an update, so deploy without --no-wait"
            )
    deployment = None
    if existing is not None and settings.hosting != "serverless":
        # Deployment guardrails exist for real-time and async endpoints only.
        deployment = guarded_rollout(cloudwatch, settings)
    name = resource_name(settings, now)
    removed: ScalingSnapshot | None = None  # what to register again if the update fails
    try:
        sagemaker.create_model(
            **model_request(settings, name=name, image_uri=image_uri, model_data=model_data)
        )
        sagemaker.create_endpoint_config(
            **endpoint_config_request(settings, name=name, model_name=name)
        )
        if existing is None:
            logger.info("creating endpoint %s with config %s", endpoint, name)
            sagemaker.create_endpoint(
                EndpointName=endpoint,
                EndpointConfigName=name,
                Tags=[{"Key": "project", "Value": settings.name}],
            )
        else:
            if detached is not None:
                removed = detached
                remove_autoscaling(autoscaling, endpoint)
            logger.info(
                "updating endpoint %s to config %s (blue/green, %s)",
                endpoint,
                name,
                "all at once" if deployment is None else settings.rollout,
            )
            update: UpdateEndpointInputTypeDef = {
                "EndpointName": endpoint,
                "EndpointConfigName": name,
            }
            if settings.hosting != "serverless":
                # Keep the instance count autoscaling chose (and the weight); without it the
                # new fleet starts at InitialInstanceCount whatever the current load. (On
                # Serverless it would keep the old memory size and concurrency.)
                update["RetainAllVariantProperties"] = True
            if deployment is not None:
                update["DeploymentConfig"] = deployment
            sagemaker.update_endpoint(**update)
    except ClientError as error:
        _restore_after_failure(autoscaling, removed)
        raise AwsError.from_client_error(error) from error

    status = "Updating" if existing else "Creating"
    if wait:
        try:
            within_s = rollout.expected_duration_s(settings) if deployment else None
            status = wait_in_service(sagemaker, endpoint, poll_s=poll_s, within_s=within_s)
            if existing is not None:
                live = _check_update_took(sagemaker, endpoint, name)
                _warn_if_capture_differs(live, settings)
        except DeployError:
            _restore_after_failure(autoscaling, removed)
            raise
        _attach_scaling(autoscaling, cloudwatch, settings)
    elif settings.hosting != "serverless":
        logger.warning("not waiting: autoscaling is attached only by a deploy that waits")
    return DeployResult(
        endpoint_name=endpoint,
        action="updated" if existing else "created",
        model_name=name,
        endpoint_config_name=name,
        previous_config_name=existing["EndpointConfigName"] if existing else None,
        status=status,
        autoscaling=wait and settings.hosting != "serverless",
        rollout=rollout.summary(settings, deployment) if deployment else None,
    )


def guarded_rollout(
    cloudwatch: CloudWatchClient | None, settings: DeploySettings
) -> DeploymentConfigTypeDef:
    """The update's DeploymentConfig, with the named alarms or two created for it."""
    rollout.check_rollout(settings)  # before any alarm is created
    alarms = list(settings.rollback_alarms)
    if not alarms and cloudwatch is not None:
        alarms = rollout.put_rollback_alarms(cloudwatch, settings, VARIANT_NAME)
    return rollout.deployment_config(settings, alarms)


def _attach_scaling(
    autoscaling: ApplicationAutoScalingClient,
    cloudwatch: CloudWatchClient | None,
    settings: DeploySettings,
) -> None:
    if settings.hosting == "realtime":
        attach_autoscaling(autoscaling, settings)
    elif settings.hosting == "async" and cloudwatch is not None:  # checked before creating
        async_inference.attach_autoscaling(autoscaling, cloudwatch, settings)
    # Serverless Inference scales itself (up to MaxConcurrency); nothing to attach.


def _check_same_hosting(
    endpoint: str, current: DescribeEndpointConfigOutputTypeDef, settings: DeploySettings
) -> None:
    """Refuse an update across hosting modes; AWS documents that an instance-based endpoint
    cannot be converted to Serverless, and a mixed blue/green has no guardrails."""
    live = hosting_of(current)
    if live != settings.hosting:
        raise ConfigError(
            f"endpoint {endpoint} is a {live} endpoint and this deploy asks for "
            f"{settings.hosting}: deploy it under another --endpoint-name, or tear this one "
            "down first"
        )


def _check_update_took(
    sagemaker: SageMakerClient, endpoint: str, config_name: str
) -> DescribeEndpointOutputTypeDef:
    """Raise when SageMaker rolled the update back.

    DescribeEndpoint's ``FailureReason`` is set "if the status is InService but update
    operation fails" (API reference), and the endpoint keeps its old config: the waiter's
    InService alone does not say the new config is live.
    """
    described = describe_endpoint(sagemaker, endpoint)
    if described is None:
        raise JobFailedError(f"endpoint {endpoint} disappeared during the update")
    live = described["EndpointConfigName"]
    if live != config_name:
        reason = described.get("FailureReason", "no reason given")
        raise JobFailedError(
            f"endpoint {endpoint}: the update to {config_name} failed and SageMaker rolled it "
            f"back; {live} still serves. Reason: {reason}"
        )
    return described


def _warn_if_capture_differs(
    described: DescribeEndpointOutputTypeDef, settings: DeploySettings
) -> None:
    """Say so when the live capture is not what the new config asked for.

    The API reference does not say whether ``RetainAllVariantProperties`` keeps the old
    endpoint's data capture (``ExcludeRetainedVariantProperties`` lists ``DataCaptureConfig``
    as "not currently supported"), so the endpoint's own answer is checked.
    """
    wanted = settings.capture_percent or 0
    live = described.get("DataCaptureConfig", {})
    now = live.get("CurrentSamplingPercentage", 0) if live.get("EnableCapture") else 0
    if now != wanted:
        logger.warning(
            "endpoint %s captures %s%% of requests, not the %s%% this deploy asked for; "
            "UpdateEndpoint kept the old data capture: recreate the endpoint to change it",
            settings.endpoint_name,
            now,
            wanted,
        )


def _restore_after_failure(
    autoscaling: ApplicationAutoScalingClient, detached: ScalingSnapshot | None
) -> None:
    """Put back the scaling removed for a failed update; the old fleet still serves."""
    if detached is None or not detached.targets:
        return
    try:
        restore_autoscaling(autoscaling, detached)
    except ClientError as error:
        # The deploy fails either way; say plainly that scaling is off and how to get it back.
        logger.error(
            "the endpoint's autoscaling could not be registered again (%s); it is detached "
            "until a deploy succeeds",
            AwsError.from_client_error(error),
        )
    else:
        logger.info("autoscaling of %s registered again after the failed update", detached)


def _instance_type_changes(
    current: DescribeEndpointConfigOutputTypeDef, settings: DeploySettings
) -> bool:
    if settings.hosting == "serverless":
        return False  # no instances, no scalable target
    return any(
        v.get("InstanceType") != settings.instance_type for v in current["ProductionVariants"]
    )


def wait_in_service(
    sagemaker: SageMakerClient, endpoint: str, *, poll_s: float, within_s: float | None = None
) -> str:
    """Wait until InService; a failed create or update raises with SageMaker's reason.

    ``within_s``: how long a guarded update may take (its bakes); else the waiter's hour.
    """
    waiter = sagemaker.get_waiter("endpoint_in_service")
    delay = max(1, round(poll_s))
    attempts = max(120, -(-int(within_s or 0) // delay))
    try:
        waiter.wait(
            EndpointName=endpoint,
            WaiterConfig={"Delay": delay, "MaxAttempts": attempts},
        )
    except WaiterError as error:
        described = describe_endpoint(sagemaker, endpoint)
        reason = described.get("FailureReason", str(error)) if described else str(error)
        status = described["EndpointStatus"] if described else "missing"
        raise JobFailedError(f"endpoint {endpoint} is {status}: {reason}") from error
    return "InService"


def attach_autoscaling(autoscaling: ApplicationAutoScalingClient, settings: DeploySettings) -> None:
    """Target tracking on invocations per instance, between min and max capacity."""
    endpoint = settings.endpoint_name
    try:
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=settings.min_capacity,
            MaxCapacity=settings.max_capacity,
        )
        autoscaling.put_scaling_policy(
            PolicyName=policy_name(endpoint),
            ServiceNamespace="sagemaker",
            ResourceId=resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": settings.target_invocations,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": settings.scale_in_cooldown_s,
                "ScaleOutCooldown": settings.scale_out_cooldown_s,
            },
        )
    except ClientError as error:
        raise AwsError.from_client_error(error) from error


def scaling_policies(autoscaling: ApplicationAutoScalingClient, endpoint: str) -> list[str]:
    described = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint)
    )
    return [policy["PolicyName"] for policy in described["ScalingPolicies"]]


def scalable_target_registered(autoscaling: ApplicationAutoScalingClient, endpoint: str) -> bool:
    described = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id(endpoint)]
    )
    return bool(described["ScalableTargets"])


def remove_autoscaling(autoscaling: ApplicationAutoScalingClient, endpoint: str) -> None:
    """Delete the endpoint's scaling policies, then deregister its scalable target."""
    for name in scaling_policies(autoscaling, endpoint):
        autoscaling.delete_scaling_policy(
            PolicyName=name,
            ServiceNamespace="sagemaker",
            ResourceId=resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
        )
    if scalable_target_registered(autoscaling, endpoint):
        autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
        )


@dataclass(frozen=True)
class ScalingSnapshot:
    """An endpoint's scalable target and policies as Application Auto Scaling describes them."""

    targets: tuple[ScalableTargetTypeDef, ...]
    policies: tuple[ScalingPolicyTypeDef, ...]

    def __str__(self) -> str:
        return ", ".join(t["ResourceId"] for t in self.targets) or "nothing"


def snapshot_autoscaling(
    autoscaling: ApplicationAutoScalingClient, endpoint: str
) -> ScalingSnapshot:
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id(endpoint)]
    )["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint)
    )["ScalingPolicies"]
    return ScalingSnapshot(targets=tuple(targets), policies=tuple(policies))


# The policy fields PutScalingPolicy takes back from DescribeScalingPolicies' answer.
_POLICY_CONFIGURATIONS = (
    "StepScalingPolicyConfiguration",
    "TargetTrackingScalingPolicyConfiguration",
    "PredictiveScalingPolicyConfiguration",
)


def restore_autoscaling(
    autoscaling: ApplicationAutoScalingClient, snapshot: ScalingSnapshot
) -> None:
    """Register the snapshot's targets and put its policies, as they were."""
    for target in snapshot.targets:
        autoscaling.register_scalable_target(
            ServiceNamespace=target["ServiceNamespace"],
            ResourceId=target["ResourceId"],
            ScalableDimension=target["ScalableDimension"],
            MinCapacity=target["MinCapacity"],
            MaxCapacity=target["MaxCapacity"],
        )
    for policy in snapshot.policies:
        request: PutScalingPolicyRequestTypeDef = {
            "PolicyName": policy["PolicyName"],
            "ServiceNamespace": policy["ServiceNamespace"],
            "ResourceId": policy["ResourceId"],
            "ScalableDimension": policy["ScalableDimension"],
            "PolicyType": policy["PolicyType"],
        }
        for key in _POLICY_CONFIGURATIONS:
            if key in policy:
                request[key] = policy[key]  # type: ignore[literal-required]
        autoscaling.put_scaling_policy(**request)
