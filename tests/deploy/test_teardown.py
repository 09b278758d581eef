"""``teardown``: dry run lists, the real run deletes endpoint, configs, models, scaling, stack,
and never another deployment's resources. All against the moto server: its ListEndpointConfigs
and ListModels filter by ``NameContains`` like SageMaker's, so ``news-classifier-staging-...``
comes back from the listing and has to be told apart by the code under test."""

from __future__ import annotations

import io
import json

import pytest
from botocore.exceptions import ClientError

from deploy import cli, endpoint_config, rollout, scaling, teardown
from deploy.aws import AwsClients
from deploy.teardown import NotOursError
from tests.deploy.support import BUCKET, Recorded, common_flags, factory, make_settings

STACK = "news-classifier-api"
# A stand-in for infra/template.yaml with its EndpointName parameter, which teardown checks.
TEMPLATE = json.dumps(
    {
        "Parameters": {"EndpointName": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "newsclf"}}},
    }
)
PROJECT_TAG = [{"Key": "project", "Value": "news-classifier"}]


def _deploy_twice(aws: AwsClients) -> None:
    """An endpoint with two deploys' worth of configs and models, plus an unrelated model."""
    settings = make_settings(instance_type="ml.c5.xlarge")
    for i in range(2):
        name = f"news-classifier-2026010{i}-000000"
        aws.sagemaker.create_model(**endpoint_config.model_request(
            settings, name=name, image_uri="img", model_data=f"s3://{BUCKET}/m.tar.gz"
        ))  # fmt: skip
        aws.sagemaker.create_endpoint_config(
            **endpoint_config.endpoint_config_request(settings, name=name, model_name=name)
        )
    aws.sagemaker.create_endpoint(
        EndpointName="news-classifier",
        EndpointConfigName="news-classifier-20260101-000000",
        Tags=PROJECT_TAG,
    )
    scaling.attach_autoscaling(aws.autoscaling, settings)
    aws.sagemaker.create_model(
        ModelName="someone-elses-model", ExecutionRoleArn=settings.require_role(),
        PrimaryContainer={"Image": "img"},
    )  # fmt: skip
    _create_stack(aws, "news-classifier")


def _create_stack(aws: AwsClients, fronted_endpoint: str) -> None:
    aws.cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "EndpointName", "ParameterValue": fronted_endpoint}],
    )


def _other_deployments(aws: AwsClients) -> list[str]:
    """Configs and models that NameContains=news-classifier lists but that are not ours:
    other endpoints' deploys, and a generated name without the project tag."""
    role = make_settings().require_role()
    names = [
        "news-classifier-staging-20260101-000000",
        "news-classifier-v2-20260101-000000",
    ]
    for name in names:
        aws.sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=role, PrimaryContainer={"Image": "img"},
            Tags=PROJECT_TAG,
        )  # fmt: skip
        aws.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.c5.xlarge",
                 "InitialInstanceCount": 1}
            ],
            Tags=PROJECT_TAG,
        )  # fmt: skip
    untagged = "news-classifier-20250101-000000"
    aws.sagemaker.create_model(
        ModelName=untagged, ExecutionRoleArn=role, PrimaryContainer={"Image": "img"}
    )
    return [*names, untagged]


def _existing(aws: AwsClients) -> tuple[list[str], list[str]]:
    configs = aws.sagemaker.list_endpoint_configs()["EndpointConfigs"]
    models = aws.sagemaker.list_models()["Models"]
    return (
        sorted(c["EndpointConfigName"] for c in configs),
        sorted(m["ModelName"] for m in models),
    )


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
    argv = ["teardown", "--yes", "--stack-name", STACK, *common_flags(moto_url)]

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


def test_teardown_leaves_other_deployments_and_untagged_resources(
    aws: AwsClients, moto_url: str
) -> None:
    _deploy_twice(aws)
    others = _other_deployments(aws)
    out = io.StringIO()
    argv = ["teardown", "--yes", *common_flags(moto_url)]

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    configs, models = _existing(aws)
    assert configs == sorted(n for n in others if "-20250101-" not in n)
    assert models == sorted([*others, "someone-elses-model"])
    assert not [line for line in out.getvalue().splitlines() if "staging" in line or "v2" in line]


def test_a_config_another_live_endpoint_uses_is_kept_with_its_model(
    aws: AwsClients, moto_url: str
) -> None:
    _deploy_twice(aws)
    # A second endpoint pointed at one of our configs (by hand, or a canary).
    aws.sagemaker.create_endpoint(
        EndpointName="news-classifier-canary",
        EndpointConfigName="news-classifier-20260100-000000",
    )
    out = io.StringIO()
    argv = ["teardown", "--yes", *common_flags(moto_url)]

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    assert _existing(aws) == (
        ["news-classifier-20260100-000000"],
        ["news-classifier-20260100-000000", "someone-elses-model"],
    )
    assert (
        "keeping endpoint-config news-classifier-20260100-000000 "
        "(used by endpoint news-classifier-canary)" in out.getvalue().splitlines()
    )
    assert aws.sagemaker.describe_endpoint(EndpointName="news-classifier-canary")


def test_a_stack_fronting_another_endpoint_is_refused_before_anything_is_deleted(
    recorded: Recorded, moto_url: str
) -> None:
    aws = recorded.aws
    _deploy_twice(aws)
    aws.cloudformation.delete_stack(StackName=STACK)
    _create_stack(aws, "news-classifier-staging")
    argv = ["teardown", "--yes", "--stack-name", STACK, *common_flags(moto_url)]

    with pytest.raises(NotOursError, match="EndpointName parameter is news-classifier-staging"):
        teardown.plan_teardown(aws, make_settings(stack_name=STACK))
    code = cli.main(argv, aws=factory(aws), stdout=io.StringIO())

    assert code == NotOursError.exit_code
    deletes = [op for op in recorded.calls.operations() if op.startswith(("Delete", "Dereg"))]
    assert deletes == ["DeleteStack"], "only the test's own DeleteStack may have run"
    assert aws.sagemaker.describe_endpoint(EndpointName="news-classifier")


def test_an_endpoint_without_the_project_tag_is_refused(aws: AwsClients, moto_url: str) -> None:
    settings = make_settings(instance_type="ml.c5.xlarge")
    name = "news-classifier-20260101-000000"
    aws.sagemaker.create_model(**endpoint_config.model_request(
        settings, name=name, image_uri="img", model_data=f"s3://{BUCKET}/m.tar.gz"
    ))  # fmt: skip
    aws.sagemaker.create_endpoint_config(
        **endpoint_config.endpoint_config_request(settings, name=name, model_name=name)
    )
    aws.sagemaker.create_endpoint(EndpointName="news-classifier", EndpointConfigName=name)

    with pytest.raises(NotOursError, match="no project=news-classifier tag"):
        teardown.plan_teardown(aws, make_settings())
    code = cli.main(["teardown", "--yes", *common_flags(moto_url)], aws=factory(aws))

    assert code == NotOursError.exit_code
    assert aws.sagemaker.describe_endpoint(EndpointName="news-classifier")
    assert _existing(aws) == ([name], [name])


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("", False)])
def test_teardown_asks_before_deleting(
    aws: AwsClients, moto_url: str, answer: str, deleted: bool
) -> None:
    _deploy_twice(aws)
    out = io.StringIO()

    code = cli.main(
        ["teardown", *common_flags(moto_url)],
        aws=factory(aws), stdout=out, stdin=io.StringIO(answer),
    )  # fmt: skip

    assert code == (0 if deleted else 1)
    remaining = aws.sagemaker.list_endpoints()["Endpoints"]
    assert (remaining == []) is deleted
    assert out.getvalue().splitlines()[-1] == ("deleted" if deleted else "nothing deleted")


def test_teardown_deletes_the_alarms_deploy_created_and_no_other(
    aws: AwsClients, moto_url: str
) -> None:
    settings = make_settings()
    rollout.put_rollback_alarms(aws.cloudwatch, settings, "AllTraffic")
    aws.cloudwatch.put_metric_alarm(
        AlarmName="news-classifier-has-backlog-without-capacity",
        MetricName="HasBacklogWithoutCapacity",
        Namespace="AWS/SageMaker", Statistic="Average", Period=60, EvaluationPeriods=2,
        Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    aws.cloudwatch.put_metric_alarm(
        AlarmName="news-classifier-team-dashboard", MetricName="Invocations",
        Namespace="AWS/SageMaker", Statistic="Sum", Period=60, EvaluationPeriods=1,
        Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    out = io.StringIO()

    assert (
        cli.main(["teardown", "--yes", *common_flags(moto_url)], aws=factory(aws), stdout=out) == 0
    )

    assert out.getvalue().splitlines()[:3] == [
        "deleting cloudwatch-alarm news-classifier-AllTraffic-5xx-errors",
        "deleting cloudwatch-alarm news-classifier-AllTraffic-model-latency-p99",
        "deleting cloudwatch-alarm news-classifier-has-backlog-without-capacity",
    ]
    left = [a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]]
    assert left == ["news-classifier-team-dashboard"]
