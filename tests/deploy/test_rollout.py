"""``deploy``'s guarded rollout of an update: traffic shifting, bake time, alarms that roll
it back (SageMaker's answers through botocore's ``Stubber``, CloudWatch on moto)."""

from __future__ import annotations

import io

import pytest
from botocore.stub import ANY, Stubber

from deploy import cli, endpoint, scaling
from deploy.aws import AwsClients
from deploy.errors import ConfigError, JobFailedError
from tests.deploy.endpoint_support import (
    MODEL_DATA,
    NEW_NAME,
    NOW,
    OLD_NAME,
    endpoint_description,
    scaling_state,
    stub_live_endpoint,
    stub_outcome,
    stub_update,
)
from tests.deploy.support import REGION, Recorded, common_flags, factory, make_settings

ALARM_ROLLED_BACK = {
    **endpoint_description(OLD_NAME),
    "FailureReason": "Rolled back: alarm news-classifier-AllTraffic-5xx-errors went into ALARM.",
}


def test_a_linear_rollout_watched_by_created_alarms_fails_when_an_alarm_rolls_it_back(
    recorded: Recorded, moto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    aws = recorded.aws
    scaling.attach_autoscaling(aws.autoscaling, make_settings())
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
        stub_update(stub, old_instance_type="ml.g5.xlarge", new_name=ANY, deployment=expected)
        # SageMaker rolled back on the alarm: InService again, on the old config.
        stub_outcome(stub, ALARM_ROLLED_BACK)
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
    assert scaling_state(aws)[0], "autoscaling stays attached"


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
        stub_update(stub, old_instance_type="ml.g5.xlarge", deployment=expected)
        stub_outcome(stub, endpoint_description(NEW_NAME))
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
        stub_live_endpoint(stub, instance_type="ml.g5.xlarge")
        with pytest.raises(ConfigError, match="28800"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, settings, cloudwatch=aws.cloudwatch,
                image_uri="img:2", model_data=MODEL_DATA,
            )  # fmt: skip
    assert aws.cloudwatch.describe_alarms()["MetricAlarms"] == []
