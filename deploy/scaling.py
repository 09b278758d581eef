"""Application Auto Scaling of an endpoint's variant: attach, remove, snapshot, restore.

A real-time endpoint scales by target tracking on invocations per instance. An update that
changes the instance type takes the scaling off first (Application Auto Scaling refuses it
otherwise) and, from a snapshot, puts it back as it was. Asynchronous endpoints scale on
their queue instead (deploy/async_inference.py), on the same scalable target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from deploy.errors import AwsError
from deploy.names import VARIANT_NAME

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import (
        PutScalingPolicyRequestTypeDef,
        ScalableTargetTypeDef,
        ScalingPolicyTypeDef,
    )

    from deploy.settings import DeploySettings

SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint_name: str) -> str:
    """Application Auto Scaling's id of the endpoint's one variant."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}"


def policy_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-invocations-per-instance"


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
