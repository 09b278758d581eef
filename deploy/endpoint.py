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

This module runs a deploy and waits for it; what it creates is built in
deploy/endpoint_config.py, the scaling it attaches, detaches and restores is in
deploy/scaling.py, and a guarded update's traffic shifting and alarms in deploy/rollout.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError, WaiterError

from deploy import async_inference, rollout
from deploy.endpoint_config import endpoint_config_request, hosting_of, model_request, resource_name
from deploy.errors import AwsError, ConfigError, DeployError, JobFailedError, error_code
from deploy.names import VARIANT_NAME
from deploy.scaling import (
    ScalingSnapshot,
    attach_autoscaling,
    remove_autoscaling,
    restore_autoscaling,
    snapshot_autoscaling,
)

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import (
        DeploymentConfigTypeDef,
        DescribeEndpointConfigOutputTypeDef,
        DescribeEndpointOutputTypeDef,
        UpdateEndpointInputTypeDef,
    )

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


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
