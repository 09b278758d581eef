"""SageMaker's answers for the endpoint tests: a live endpoint's description and the calls of
a blue/green update, for botocore's ``Stubber`` (moto has no UpdateEndpoint)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.stub import ANY, Stubber

from deploy.aws import AwsClients
from tests.deploy.support import ACCOUNT, BUCKET, REGION, ROLE_ARN

MODEL_DATA = f"s3://{BUCKET}/news-classifier/models/job/output/model.tar.gz"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
NEW_NAME = "news-classifier-20260304-050607"
OLD_NAME = "news-classifier-20260101-000000"


def endpoint_description(config: str, status: str = "InService") -> dict[str, Any]:
    return {
        "EndpointName": "news-classifier",
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/news-classifier",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }


def stub_live_endpoint(stub: Stubber, *, instance_type: str) -> None:
    """The endpoint as it serves before a deploy: InService on ``OLD_NAME``'s config."""
    stub.add_response("describe_endpoint", endpoint_description(OLD_NAME), {"EndpointName": ANY})
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": OLD_NAME,
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{OLD_NAME}",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": OLD_NAME,
                    "InstanceType": instance_type,
                }
            ],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": OLD_NAME},
    )


def stub_update(
    stub: Stubber,
    *,
    old_instance_type: str,
    update_error: str | None = None,
    new_name: Any = NEW_NAME,
    deployment: Any = ANY,
    config_extra: dict[str, Any] | None = None,
) -> None:
    """The exact SageMaker calls of a blue/green update, up to UpdateEndpoint; nothing is
    deleted. ``update_error``: UpdateEndpoint fails with this AWS error code."""
    stub_live_endpoint(stub, instance_type=old_instance_type)
    stub.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{NEW_NAME}"},
        {
            "ModelName": new_name,
            "ExecutionRoleArn": ROLE_ARN,
            "PrimaryContainer": {
                "Image": "img:2",
                "ModelDataUrl": MODEL_DATA,
                "Mode": "SingleModel",
            },
            "Tags": ANY,
        },
    )
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{NEW_NAME}"},
        {
            "EndpointConfigName": new_name,
            "ProductionVariants": ANY,
            "Tags": ANY,
            **(config_extra or {}),
        },
    )
    # The instance count autoscaling reached is kept: without RetainAllVariantProperties
    # SageMaker starts the new fleet at InitialInstanceCount (UpdateEndpoint reference).
    update_params = {
        "EndpointName": "news-classifier",
        "EndpointConfigName": new_name,
        "RetainAllVariantProperties": True,
        "DeploymentConfig": deployment,
    }
    if update_error:
        stub.add_client_error(
            "update_endpoint", update_error, "update refused", expected_params=update_params
        )
        return
    stub.add_response(
        "update_endpoint", {"EndpointArn": endpoint_description(OLD_NAME)["EndpointArn"]},
        update_params,
    )  # fmt: skip


def stub_outcome(stub: Stubber, described: dict[str, Any]) -> None:
    """The waiter's poll, then the check of which config is live, both answering ``described``."""
    stub.add_response("describe_endpoint", described, {"EndpointName": "news-classifier"})
    stub.add_response("describe_endpoint", described, {"EndpointName": "news-classifier"})


def scaling_state(aws: AwsClients) -> tuple[list[tuple[str, int, int]], list[str]]:
    targets = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    policies = aws.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    return (
        [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]],
        [p["PolicyName"] for p in policies["ScalingPolicies"]],
    )
