"""The model and the endpoint config one deploy creates, named ``<endpoint>-<timestamp>``.

The endpoint config has one variant, ``AllTraffic``: instances (real-time or async, with the
GPU image's inference AMI pinned) or Serverless Inference's memory size and concurrency,
plus the async output and data capture when asked for.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

from deploy import async_inference
from deploy.capture import data_capture_config
from deploy.names import VARIANT_NAME, timestamped_name

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.literals import (
        ProductionVariantInferenceAmiVersionType,
        ProductionVariantInstanceTypeType,
    )
    from mypy_boto3_sagemaker.type_defs import (
        ContainerDefinitionTypeDef,
        CreateEndpointConfigInputTypeDef,
        CreateModelInputTypeDef,
        DescribeEndpointConfigOutputTypeDef,
        ProductionVariantTypeDef,
    )

    from deploy.settings import DeploySettings


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
