"""``deploy``: model, endpoint config, endpoint and autoscaling of a new endpoint.

Creation runs against the moto server; the failure to start is SageMaker's answer through
botocore's ``Stubber``. Updates are in test_endpoint_update.py, guarded rollouts in
test_rollout.py.
"""

from __future__ import annotations

import io

import pytest
from botocore.stub import Stubber

from deploy import cli, endpoint, training_job
from deploy.aws import AwsClients
from deploy.errors import JobFailedError, NotFoundError
from tests.deploy.endpoint_support import MODEL_DATA, NEW_NAME, NOW, endpoint_description
from tests.deploy.support import (
    ACCOUNT,
    BUCKET,
    IMAGE_TAG,
    REGION,
    ROLE_ARN,
    common_flags,
    factory,
    make_settings,
)

SERVE_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-serve"


def _train_once(aws: AwsClients) -> str:
    settings = make_settings()
    name = training_job.job_name(settings)
    training_job.start_training_job(
        aws.sagemaker,
        training_job.build_request(
            settings, name=name, image_uri="img", channels={"train": "s3://b/p/"},
            hyperparameters={},
        ),
    )  # fmt: skip
    return f"s3://{BUCKET}/news-classifier/models/{name}/output/model.tar.gz"


# moto checks instance types against an old list (no g5/g6): the GPU tests use g4dn.
def test_deploy_cli_creates_a_gpu_endpoint_from_the_latest_training_job(
    aws: AwsClients, moto_url: str
) -> None:
    artifact = _train_once(aws)
    out = io.StringIO()
    argv = [
        "deploy", *common_flags(moto_url),
        "--instance-type", "ml.g4dn.xlarge", "--min-capacity", "1", "--max-capacity", "3",
        "--target-invocations", "250", "--startup-health-check-timeout", "900",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    described = aws.sagemaker.describe_endpoint(EndpointName="news-classifier")
    assert described["EndpointStatus"] == "InService"
    config = aws.sagemaker.describe_endpoint_config(
        EndpointConfigName=described["EndpointConfigName"]
    )
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.g4dn.xlarge"
    assert variant["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-gpu-3-1"
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["InitialInstanceCount"] == 1
    model = aws.sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == f"{SERVE_REPO}:{IMAGE_TAG}"
    assert model["PrimaryContainer"]["ModelDataUrl"] == artifact
    assert model["ExecutionRoleArn"] == ROLE_ARN

    resource = "endpoint/news-classifier/variant/AllTraffic"
    (target,) = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (resource, 1, 3)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    (policy,) = aws.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert tracking["TargetValue"] == 250
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert "endpoint news-classifier created (InService)" in out.getvalue()


def test_cpu_endpoint_uses_the_cpu_image_and_no_inference_ami(aws: AwsClients) -> None:
    settings = make_settings(instance_type="ml.c5.xlarge")

    endpoint.deploy_endpoint(
        aws.sagemaker, aws.autoscaling, settings,
        image_uri=f"{SERVE_REPO}:{IMAGE_TAG}-cpu", model_data=MODEL_DATA, poll_s=1,
    )  # fmt: skip

    config_name = aws.sagemaker.describe_endpoint(EndpointName="news-classifier")[
        "EndpointConfigName"
    ]
    (variant,) = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)[
        "ProductionVariants"
    ]
    assert variant["InstanceType"] == "ml.c5.xlarge"
    assert "InferenceAmiVersion" not in variant


def test_deploy_without_any_training_job_is_a_not_found_error(
    aws: AwsClients, moto_url: str
) -> None:
    code = cli.main(["deploy", *common_flags(moto_url)], aws=factory(aws), stdout=io.StringIO())
    assert code == NotFoundError.exit_code


def test_an_endpoint_that_fails_to_start_is_reported_with_the_reason(aws: AwsClients) -> None:
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    failed = {
        **endpoint_description(NEW_NAME, "Failed"),
        "FailureReason": "The primary container did not pass the ping health check",
    }
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:::model/m"})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:::c"})
        stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:::e"})
        stub.add_response("describe_endpoint", failed)  # the waiter's first poll
        stub.add_response("describe_endpoint", failed)  # for the reason
        with pytest.raises(JobFailedError, match="did not pass the ping health check"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(), image_uri="img",
                model_data=MODEL_DATA, now=NOW,
            )  # fmt: skip
    # No autoscaling on an endpoint that never came up.
    assert (
        aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        == []
    )
