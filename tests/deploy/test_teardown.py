"""``teardown``: dry run lists, the real run deletes endpoint, configs, models, scaling, stack."""

from __future__ import annotations

import io
import json

from botocore.exceptions import ClientError

from deploy import cli, endpoint
from deploy.aws import AwsClients
from tests.deploy.support import BUCKET, Recorded, common_flags, factory, make_settings

STACK = "news-classifier-api"
TEMPLATE = json.dumps(
    {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "newsclf"}}}}
)


def _deploy_twice(aws: AwsClients) -> None:
    """An endpoint with two deploys' worth of configs and models, plus an unrelated model."""
    settings = make_settings(instance_type="ml.c5.xlarge")
    for i in range(2):
        name = f"news-classifier-2026010{i}-000000"
        aws.sagemaker.create_model(**endpoint.model_request(
            settings, name=name, image_uri="img", model_data=f"s3://{BUCKET}/m.tar.gz"
        ))  # fmt: skip
        aws.sagemaker.create_endpoint_config(
            **endpoint.endpoint_config_request(settings, name=name, model_name=name)
        )
    aws.sagemaker.create_endpoint(
        EndpointName="news-classifier", EndpointConfigName="news-classifier-20260101-000000"
    )
    endpoint.attach_autoscaling(aws.autoscaling, settings)
    aws.sagemaker.create_model(
        ModelName="someone-elses-model", ExecutionRoleArn=settings.require_role(),
        PrimaryContainer={"Image": "img"},
    )  # fmt: skip
    aws.cloudformation.create_stack(StackName=STACK, TemplateBody=TEMPLATE)


def test_dry_run_lists_everything_and_deletes_nothing(recorded: Recorded, moto_url: str) -> None:
    aws = recorded.aws
    _deploy_twice(aws)
    out = io.StringIO()
    argv = ["teardown", "--dry-run", "--stack-name", STACK, *common_flags(moto_url)]

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    assert out.getvalue().splitlines() == [
        f"would delete cloudformation-stack {STACK}",
        "would delete scaling-policy news-classifier-invocations-per-instance",
        "would delete scalable-target endpoint/news-classifier/variant/AllTraffic",
        "would delete endpoint news-classifier",
        "would delete endpoint-config news-classifier-20260100-000000",
        "would delete endpoint-config news-classifier-20260101-000000",
        "would delete model news-classifier-20260100-000000",
        "would delete model news-classifier-20260101-000000",
    ]
    before_delete = [op for op in recorded.calls.operations() if op.startswith(("Delete", "Dereg"))]
    assert before_delete == []
    assert aws.sagemaker.describe_endpoint(EndpointName="news-classifier")["EndpointStatus"]


def test_teardown_deletes_what_deploy_and_the_template_created(
    aws: AwsClients, moto_url: str
) -> None:
    _deploy_twice(aws)
    argv = ["teardown", "--stack-name", STACK, *common_flags(moto_url)]

    assert cli.main(argv, aws=factory(aws), stdout=io.StringIO()) == 0

    assert aws.sagemaker.list_endpoints()["Endpoints"] == []
    assert aws.sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert [m["ModelName"] for m in aws.sagemaker.list_models()["Models"]] == [
        "someone-elses-model"
    ]
    assert (
        aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        == []
    )
    assert (
        aws.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        == []
    )
    try:
        stacks = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationError"
    # A second run finds nothing left.
    out = io.StringIO()
    assert cli.main(argv, aws=factory(aws), stdout=out) == 0
    assert out.getvalue() == "nothing to delete\n"
