"""``deploy``: model, endpoint config, endpoint and autoscaling; updates are blue/green.

Creation runs against the moto server. moto has no UpdateEndpoint, so the update cases stub
the SageMaker client with botocore's ``Stubber`` (which also fails on any call it was not told
to expect, such as a delete) while Application Auto Scaling still runs on moto.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from deploy import cli, endpoint, training_job
from deploy.aws import AwsClients
from deploy.errors import AwsError, ConfigError, DeployError, JobFailedError, NotFoundError
from tests.deploy.support import (
    ACCOUNT,
    BUCKET,
    IMAGE_TAG,
    REGION,
    ROLE_ARN,
    Recorded,
    common_flags,
    factory,
    make_settings,
)

SERVE_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-serve"
MODEL_DATA = f"s3://{BUCKET}/news-classifier/models/job/output/model.tar.gz"
# moto checks instance types against an old list (no g5/g6): the GPU tests use g4dn.
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
NEW_NAME = "news-classifier-20260304-050607"


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


def _endpoint_description(config: str, status: str = "InService") -> dict[str, Any]:
    return {
        "EndpointName": "news-classifier",
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/news-classifier",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }


OLD_NAME = "news-classifier-20260101-000000"


def _stub_update(
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
    stub.add_response("describe_endpoint", _endpoint_description(OLD_NAME), {"EndpointName": ANY})
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": OLD_NAME,
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{OLD_NAME}",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": OLD_NAME,
                    "InstanceType": old_instance_type,
                }
            ],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": OLD_NAME},
    )
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
        "update_endpoint", {"EndpointArn": _endpoint_description(OLD_NAME)["EndpointArn"]},
        update_params,
    )  # fmt: skip


def _stub_outcome(stub: Stubber, described: dict[str, Any]) -> None:
    """The waiter's poll, then the check of which config is live, both answering ``described``."""
    stub.add_response("describe_endpoint", described, {"EndpointName": "news-classifier"})
    stub.add_response("describe_endpoint", described, {"EndpointName": "news-classifier"})


def _scaling(aws: AwsClients) -> tuple[list[tuple[str, int, int]], list[str]]:
    targets = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    policies = aws.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    return (
        [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]],
        [p["PolicyName"] for p in policies["ScalingPolicies"]],
    )


@pytest.mark.parametrize("new_instance_type", ["ml.g5.xlarge", "ml.g6.xlarge"])
def test_update_swaps_the_config_blue_green_and_keeps_autoscaling(
    recorded: Recorded, new_instance_type: str
) -> None:
    aws = recorded.aws
    settings = make_settings(instance_type=new_instance_type, max_capacity=4)
    endpoint.attach_autoscaling(aws.autoscaling, make_settings(max_capacity=2))
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        _stub_update(stub, old_instance_type="ml.g5.xlarge")
        _stub_outcome(stub, _endpoint_description(NEW_NAME))

        result = endpoint.deploy_endpoint(
            sagemaker, aws.autoscaling, settings,
            image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
        )  # fmt: skip

        stub.assert_no_pending_responses()
    assert (result.action, result.endpoint_config_name) == ("updated", NEW_NAME)
    assert result.previous_config_name == OLD_NAME
    sent_config = recorded.calls.params("CreateEndpointConfig")
    assert sent_config["ProductionVariants"][0]["InstanceType"] == new_instance_type
    (target,) = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert target["MaxCapacity"] == 4
    ops = recorded.calls.operations()
    if new_instance_type == "ml.g5.xlarge":
        assert "DeregisterScalableTarget" not in ops
    else:
        # Application Auto Scaling refuses an instance-type change on a scaled variant.
        assert ops.index("DeregisterScalableTarget") < ops.index("UpdateEndpoint")
        assert ops.index("UpdateEndpoint") < ops.index(
            "RegisterScalableTarget", ops.index("UpdateEndpoint")
        )
    assert not [op for op in ops if op.startswith("Delete") and op != "DeleteScalingPolicy"]


def test_a_failed_endpoint_is_not_updated(aws: AwsClients) -> None:
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    failed = {**_endpoint_description("old", "Failed"), "FailureReason": "ping timed out"}
    with Stubber(sagemaker) as stub:  # any create or update call would fail the test
        stub.add_response("describe_endpoint", failed, {"EndpointName": ANY})
        with pytest.raises(DeployError, match=r"Failed \(ping timed out\).*teardown"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(), image_uri="img", model_data=MODEL_DATA
            )


def test_an_endpoint_that_fails_to_start_is_reported_with_the_reason(aws: AwsClients) -> None:
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    failed = {
        **_endpoint_description(NEW_NAME, "Failed"),
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


ROLLED_BACK = {
    **_endpoint_description(OLD_NAME),
    "FailureReason": "The primary container for production variant AllTraffic did not pass "
    "the ping health check.",
}


def test_an_update_sagemaker_rolled_back_fails_the_deploy_with_the_reason(
    aws: AwsClients, moto_url: str
) -> None:
    # The CLI path: the recorded clients with SageMaker's answers from the Stubber.
    endpoint.attach_autoscaling(aws.autoscaling, make_settings())
    out = io.StringIO()
    argv = [
        "deploy", *common_flags(moto_url), "--model-data", MODEL_DATA, "--image", "img:2",
    ]  # fmt: skip
    with Stubber(aws.sagemaker) as stub:
        # The new names come from the clock here: any name, as long as it is the same one.
        _stub_update(stub, old_instance_type="ml.g5.xlarge", new_name=ANY)
        # The waiter sees InService: the old fleet, serving again after the rollback.
        _stub_outcome(stub, ROLLED_BACK)
        code = cli.main(argv, aws=factory(aws), stdout=out)
        stub.assert_no_pending_responses()

    assert code == JobFailedError.exit_code
    assert "updated" not in out.getvalue()
    assert _scaling(aws) == (
        [("endpoint/news-classifier/variant/AllTraffic", 1, 2)],
        ["news-classifier-invocations-per-instance"],
    )


def test_a_rolled_back_update_names_the_live_config_and_the_reason(aws: AwsClients) -> None:
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        _stub_update(stub, old_instance_type="ml.g5.xlarge")
        _stub_outcome(stub, ROLLED_BACK)
        with pytest.raises(JobFailedError, match="rolled it back") as raised:
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(),
                image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
            )  # fmt: skip
    assert OLD_NAME in str(raised.value)
    assert "did not pass the ping health check" in str(raised.value)


@pytest.mark.parametrize("failure", ["update refused", "rolled back"])
def test_scaling_removed_for_an_instance_type_change_comes_back_when_the_update_fails(
    recorded: Recorded, failure: str
) -> None:
    aws = recorded.aws
    # The endpoint's scaling as an earlier deploy left it: 1..2 instances.
    endpoint.attach_autoscaling(aws.autoscaling, make_settings(max_capacity=2))
    before = _scaling(aws)
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    settings = make_settings(instance_type="ml.g6.xlarge", max_capacity=4)
    with Stubber(sagemaker) as stub:
        if failure == "update refused":
            _stub_update(stub, old_instance_type="ml.g5.xlarge", update_error="ValidationException")
            expected: type[Exception] = AwsError
        else:
            _stub_update(stub, old_instance_type="ml.g5.xlarge")
            _stub_outcome(stub, ROLLED_BACK)
            expected = JobFailedError
        with pytest.raises(expected):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, settings,
                image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
            )  # fmt: skip
        stub.assert_no_pending_responses()

    ops = recorded.calls.operations("application-autoscaling")
    assert "DeregisterScalableTarget" in ops  # it was removed for the update...
    assert _scaling(aws) == before  # ...and is back as it was, not as this deploy asked


def test_no_wait_refuses_an_instance_type_change_on_an_autoscaled_endpoint(
    aws: AwsClients,
) -> None:
    endpoint.attach_autoscaling(aws.autoscaling, make_settings())
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:  # nothing is created: the stub expects no create call
        stub.add_response(
            "describe_endpoint", _endpoint_description(OLD_NAME), {"EndpointName": ANY}
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": OLD_NAME,
                "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/x",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ModelName": OLD_NAME,
                     "InstanceType": "ml.g5.xlarge"}
                ],
                "CreationTime": NOW,
            },
        )  # fmt: skip
        with pytest.raises(ConfigError, match="--no-wait"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(instance_type="ml.g6.xlarge"),
                image_uri="img:2", model_data=MODEL_DATA, wait=False,
            )  # fmt: skip
    assert _scaling(aws)[0], "scaling must stay attached"


# --- guarded rollout: traffic shifting, bake time, alarms that roll back ------------------


ALARM_ROLLED_BACK = {
    **_endpoint_description(OLD_NAME),
    "FailureReason": "Rolled back: alarm news-classifier-AllTraffic-5xx-errors went into ALARM.",
}


def test_a_linear_rollout_watched_by_created_alarms_fails_when_an_alarm_rolls_it_back(
    recorded: Recorded, moto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    aws = recorded.aws
    endpoint.attach_autoscaling(aws.autoscaling, make_settings())
    argv = [
        "deploy", *common_flags(moto_url), "--model-data", MODEL_DATA, "--image", "img:2",
        "--rollout", "linear", "--linear-step-percent", "50", "--bake-seconds", "120",
        "--max-5xx", "3", "--max-latency-ms", "800",
    ]  # fmt: skip
    errors_alarm = "news-classifier-AllTraffic-5xx-errors"
    latency_alarm = "news-classifier-AllTraffic-model-latency-p99"
    expected = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                "WaitIntervalInSeconds": 120,
            },
            "TerminationWaitInSeconds": 120,
            # 30 min to provision, then two shifts and the final bake of 120 s each.
            "MaximumExecutionTimeoutInSeconds": 1800 + 3 * 120,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": errors_alarm}, {"AlarmName": latency_alarm}]
        },
    }
    out = io.StringIO()
    with Stubber(aws.sagemaker) as stub, caplog.at_level("ERROR", logger="deploy"):
        _stub_update(stub, old_instance_type="ml.g5.xlarge", new_name=ANY, deployment=expected)
        # SageMaker rolled back on the alarm: InService again, on the old config.
        _stub_outcome(stub, ALARM_ROLLED_BACK)
        code = cli.main(argv, aws=factory(aws), stdout=out)
        stub.assert_no_pending_responses()

    assert code == JobFailedError.exit_code
    assert "updated" not in out.getvalue()
    assert "rolled it back" in caplog.text and "5xx-errors went into ALARM" in caplog.text
    alarms = {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {errors_alarm, latency_alarm}
    variant = [
        {"Name": "EndpointName", "Value": "news-classifier"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    errors, latency = alarms[errors_alarm], alarms[latency_alarm]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/SageMaker", "Invocation5XXErrors")
    assert (errors["Statistic"], errors["Threshold"]) == ("Sum", 3.0)
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["Threshold"] == 800_000.0  # ModelLatency is in microseconds
    for alarm in (errors, latency):
        assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == variant
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    assert _scaling(aws)[0], "autoscaling stays attached"


def test_a_canary_rollout_uses_the_named_alarms_and_creates_none(recorded: Recorded) -> None:
    aws = recorded.aws
    settings = make_settings(
        rollout="canary", canary_percent=20, bake_s=600, rollback_alarms=["team-5xx"]
    )
    expected = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
                "WaitIntervalInSeconds": 600,
            },
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 1800 + 3 * 600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "team-5xx"}]},
    }
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        _stub_update(stub, old_instance_type="ml.g5.xlarge", deployment=expected)
        _stub_outcome(stub, _endpoint_description(NEW_NAME))
        result = endpoint.deploy_endpoint(
            sagemaker, aws.autoscaling, settings, cloudwatch=aws.cloudwatch,
            image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert result.action == "updated"
    assert result.rollout == "canary 20% then the rest, bake 600 s, rollback alarms team-5xx"
    assert "PutMetricAlarm" not in recorded.calls.operations()


def test_a_rollout_longer_than_sagemaker_allows_is_refused_before_anything_is_created(
    aws: AwsClients,
) -> None:
    # 100 steps of 1 % and the final bake, 10 min each: far over the 8 h of one update.
    settings = make_settings(rollout="linear", linear_step_percent=1, bake_s=600)
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:  # any create call would fail the test
        stub.add_response("describe_endpoint", _endpoint_description(OLD_NAME))
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": OLD_NAME,
                "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/x",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ModelName": OLD_NAME,
                     "InstanceType": "ml.g5.xlarge"}
                ],
                "CreationTime": NOW,
            },
        )  # fmt: skip
        with pytest.raises(ConfigError, match="28800"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, settings, cloudwatch=aws.cloudwatch,
                image_uri="img:2", model_data=MODEL_DATA,
            )  # fmt: skip
    assert aws.cloudwatch.describe_alarms()["MetricAlarms"] == []


@pytest.mark.parametrize(("asked", "warned"), [(20, False), (50, True), (None, True)])
def test_an_update_says_so_when_the_live_data_capture_is_not_the_one_asked_for(
    aws: AwsClients, caplog: pytest.LogCaptureFixture, asked: int | None, warned: bool
) -> None:
    live = {
        **_endpoint_description(NEW_NAME),
        "DataCaptureConfig": {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 20,
            "DestinationS3Uri": f"s3://{BUCKET}/news-classifier/capture",
            "KmsKeyId": "",
        },
    }
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub, caplog.at_level("WARNING", logger="deploy"):
        extra = {"DataCaptureConfig": ANY} if asked is not None else None
        _stub_update(stub, old_instance_type="ml.g5.xlarge", config_extra=extra)
        _stub_outcome(stub, live)
        endpoint.deploy_endpoint(
            sagemaker, aws.autoscaling, make_settings(capture_percent=asked),
            image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
        )  # fmt: skip
    assert ("kept the old data capture" in caplog.text) is warned
