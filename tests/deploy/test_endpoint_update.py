"""``deploy`` of an existing endpoint: blue/green, keeping its scaling, failing when
SageMaker rolls the update back.

moto has no UpdateEndpoint, so these cases stub the SageMaker client with botocore's
``Stubber`` (which also fails on any call it was not told to expect, such as a delete) while
Application Auto Scaling still runs on moto.
"""

from __future__ import annotations

import io

import pytest
from botocore.stub import ANY, Stubber

from deploy import cli, endpoint, scaling
from deploy.aws import AwsClients
from deploy.errors import AwsError, ConfigError, DeployError, JobFailedError
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
from tests.deploy.support import (
    BUCKET,
    REGION,
    Recorded,
    common_flags,
    factory,
    make_settings,
)


@pytest.mark.parametrize("new_instance_type", ["ml.g5.xlarge", "ml.g6.xlarge"])
def test_update_swaps_the_config_blue_green_and_keeps_autoscaling(
    recorded: Recorded, new_instance_type: str
) -> None:
    aws = recorded.aws
    settings = make_settings(instance_type=new_instance_type, max_capacity=4)
    scaling.attach_autoscaling(aws.autoscaling, make_settings(max_capacity=2))
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        stub_update(stub, old_instance_type="ml.g5.xlarge")
        stub_outcome(stub, endpoint_description(NEW_NAME))

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
    failed = {**endpoint_description("old", "Failed"), "FailureReason": "ping timed out"}
    with Stubber(sagemaker) as stub:  # any create or update call would fail the test
        stub.add_response("describe_endpoint", failed, {"EndpointName": ANY})
        with pytest.raises(DeployError, match=r"Failed \(ping timed out\).*teardown"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(), image_uri="img", model_data=MODEL_DATA
            )


ROLLED_BACK = {
    **endpoint_description(OLD_NAME),
    "FailureReason": "The primary container for production variant AllTraffic did not pass "
    "the ping health check.",
}


def test_an_update_sagemaker_rolled_back_fails_the_deploy_with_the_reason(
    aws: AwsClients, moto_url: str
) -> None:
    # The CLI path: the recorded clients with SageMaker's answers from the Stubber.
    scaling.attach_autoscaling(aws.autoscaling, make_settings())
    out = io.StringIO()
    argv = [
        "deploy", *common_flags(moto_url), "--model-data", MODEL_DATA, "--image", "img:2",
    ]  # fmt: skip
    with Stubber(aws.sagemaker) as stub:
        # The new names come from the clock here: any name, as long as it is the same one.
        stub_update(stub, old_instance_type="ml.g5.xlarge", new_name=ANY)
        # The waiter sees InService: the old fleet, serving again after the rollback.
        stub_outcome(stub, ROLLED_BACK)
        code = cli.main(argv, aws=factory(aws), stdout=out)
        stub.assert_no_pending_responses()

    assert code == JobFailedError.exit_code
    assert "updated" not in out.getvalue()
    assert scaling_state(aws) == (
        [("endpoint/news-classifier/variant/AllTraffic", 1, 2)],
        ["news-classifier-invocations-per-instance"],
    )


def test_a_rolled_back_update_names_the_live_config_and_the_reason(aws: AwsClients) -> None:
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        stub_update(stub, old_instance_type="ml.g5.xlarge")
        stub_outcome(stub, ROLLED_BACK)
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
    scaling.attach_autoscaling(aws.autoscaling, make_settings(max_capacity=2))
    before = scaling_state(aws)
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    settings = make_settings(instance_type="ml.g6.xlarge", max_capacity=4)
    with Stubber(sagemaker) as stub:
        if failure == "update refused":
            stub_update(stub, old_instance_type="ml.g5.xlarge", update_error="ValidationException")
            expected: type[Exception] = AwsError
        else:
            stub_update(stub, old_instance_type="ml.g5.xlarge")
            stub_outcome(stub, ROLLED_BACK)
            expected = JobFailedError
        with pytest.raises(expected):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, settings,
                image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
            )  # fmt: skip
        stub.assert_no_pending_responses()

    ops = recorded.calls.operations("application-autoscaling")
    assert "DeregisterScalableTarget" in ops  # it was removed for the update...
    assert scaling_state(aws) == before  # ...and is back as it was, not as this deploy asked


def test_no_wait_refuses_an_instance_type_change_on_an_autoscaled_endpoint(
    aws: AwsClients,
) -> None:
    scaling.attach_autoscaling(aws.autoscaling, make_settings())
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:  # nothing is created: the stub expects no create call
        stub_live_endpoint(stub, instance_type="ml.g5.xlarge")
        with pytest.raises(ConfigError, match="--no-wait"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(instance_type="ml.g6.xlarge"),
                image_uri="img:2", model_data=MODEL_DATA, wait=False,
            )  # fmt: skip
    assert scaling_state(aws)[0], "scaling must stay attached"


@pytest.mark.parametrize(("asked", "warned"), [(20, False), (50, True), (None, True)])
def test_an_update_says_so_when_the_live_data_capture_is_not_the_one_asked_for(
    aws: AwsClients, caplog: pytest.LogCaptureFixture, asked: int | None, warned: bool
) -> None:
    live = {
        **endpoint_description(NEW_NAME),
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
        stub_update(stub, old_instance_type="ml.g5.xlarge", config_extra=extra)
        stub_outcome(stub, live)
        endpoint.deploy_endpoint(
            sagemaker, aws.autoscaling, make_settings(capture_percent=asked),
            image_uri="img:2", model_data=MODEL_DATA, poll_s=1, now=NOW,
        )  # fmt: skip
    assert ("kept the old data capture" in caplog.text) is warned
