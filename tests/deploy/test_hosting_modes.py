"""``deploy --serverless``, ``deploy --async``, ``invoke --async`` and ``--capture-percent``.

Creation runs on moto's server (endpoint configs, Application Auto Scaling, CloudWatch,
sagemaker-runtime's InvokeEndpointAsync, which writes its result object to moto's S3). An
update across hosting modes is refused before anything is created; its SageMaker answers
come from botocore's Stubber.
"""

from __future__ import annotations

import io
import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from app.settings import Settings as ServerSettings
from deploy import async_inference, cli, endpoint
from deploy.aws import AwsClients
from deploy.errors import ConfigError, DeployError, JobFailedError
from tests.deploy.support import (
    ACCOUNT,
    BUCKET,
    IMAGE_TAG,
    REGION,
    Recorded,
    common_flags,
    factory,
    make_settings,
)

SERVE_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-serve"
MODEL_DATA = f"s3://{BUCKET}/news-classifier/models/job/output/model.tar.gz"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _live_config(aws: AwsClients) -> dict[str, Any]:
    name = aws.sagemaker.describe_endpoint(EndpointName="news-classifier")["EndpointConfigName"]
    return dict(aws.sagemaker.describe_endpoint_config(EndpointConfigName=name))


def test_serverless_endpoint_runs_the_cpu_image_with_memory_and_concurrency(
    recorded: Recorded, moto_url: str
) -> None:
    out = io.StringIO()
    argv = [
        "deploy", *common_flags(moto_url), "--model-data", MODEL_DATA,
        "--serverless", "--memory-mb", "4096", "--max-concurrency", "8",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(recorded.aws), stdout=out) == 0

    sent = recorded.calls.params("CreateEndpointConfig")["ProductionVariants"]
    assert sent == [
        {
            "VariantName": "AllTraffic",
            "ModelName": sent[0]["ModelName"],
            "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 8},
        }
    ]
    model = recorded.aws.sagemaker.describe_model(ModelName=sent[0]["ModelName"])
    assert model["PrimaryContainer"]["Image"] == f"{SERVE_REPO}:{IMAGE_TAG}-cpu"
    # Serverless scales itself: nothing is registered with Application Auto Scaling.
    assert not [op for op in recorded.calls.operations("application-autoscaling")]
    assert "serverless 4096 MB, max concurrency 8" in out.getvalue()
    assert "autoscaling" not in out.getvalue()


@pytest.mark.parametrize(
    "flags",
    [
        ["--memory-mb", "1536"],  # not one of Serverless's six sizes
        ["--max-concurrency", "201"],
        ["--capture-percent", "10"],  # Serverless does not capture data
    ],
)
def test_serverless_limits_are_refused_before_any_aws_call(moto_url: str, flags: list[str]) -> None:
    def no_aws(_settings: Any) -> AwsClients:
        raise AssertionError("no AWS client may be created")

    argv = ["deploy", *common_flags(moto_url), "--model-data", MODEL_DATA, "--serverless", *flags]
    assert cli.main(argv, aws=no_aws, stdout=io.StringIO()) == ConfigError.exit_code


def test_a_real_time_endpoint_is_not_updated_into_a_serverless_one(aws: AwsClients) -> None:
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:  # any create or update call would fail the test
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "news-classifier",
                "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/news-classifier",
                "EndpointConfigName": "old",
                "EndpointStatus": "InService",
                "CreationTime": NOW,
                "LastModifiedTime": NOW,
            },
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "old",
                "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/old",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ModelName": "old",
                     "InstanceType": "ml.g5.xlarge"}
                ],
                "CreationTime": NOW,
            },
        )  # fmt: skip
        with pytest.raises(ConfigError, match=r"realtime endpoint.*serverless"):
            endpoint.deploy_endpoint(
                sagemaker, aws.autoscaling, make_settings(hosting="serverless"),
                image_uri="img", model_data=MODEL_DATA,
            )  # fmt: skip


def test_async_endpoint_writes_to_s3_and_scales_to_zero_and_back(
    recorded: Recorded, moto_url: str
) -> None:
    aws = recorded.aws
    out = io.StringIO()
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:inference-done"
    argv = [
        "deploy", *common_flags(moto_url), "--model-data", MODEL_DATA,
        "--instance-type", "ml.g4dn.xlarge", "--max-capacity", "3",
        "--async", "--output", f"s3://{BUCKET}/async/out", "--success-topic", topic,
        "--max-concurrent-invocations", "4", "--target-backlog", "8",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    assert recorded.calls.params("CreateEndpointConfig")["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": f"s3://{BUCKET}/async/out",
            "S3FailurePath": f"s3://{BUCKET}/async/out-failures",
            "NotificationConfig": {"SuccessTopic": topic},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    # The model tells the server it is async: larger bodies and the async deadline, as the
    # server reads its own environment (app.settings), not as this test assumes it does.
    environment = recorded.calls.params("CreateModel")["PrimaryContainer"]["Environment"]
    server = ServerSettings()  # defaults, for comparison
    with pytest.MonkeyPatch.context() as env:
        for key, value in environment.items():
            env.setenv(key, value)
        async_server = ServerSettings()
    assert async_server.max_body_bytes > server.max_body_bytes
    assert async_server.request_timeout_s > server.request_timeout_s
    (target,) = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    policies = {
        p["PolicyName"]: p
        for p in aws.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
            "ScalingPolicies"
        ]
    }
    tracking = policies["news-classifier-backlog-per-instance"][
        "TargetTrackingScalingPolicyConfiguration"
    ]
    assert tracking["TargetValue"] == 8
    assert tracking["CustomizedMetricSpecification"]["MetricName"] == (
        "ApproximateBacklogSizePerInstance"
    )
    step = policies["news-classifier-scale-from-zero"]
    assert step["PolicyType"] == "StepScaling"
    (adjustment,) = step["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert adjustment == {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}
    (alarm,) = aws.cloudwatch.describe_alarms()["MetricAlarms"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "news-classifier"}]
    # The alarm wakes a fleet of zero through the step policy.
    assert alarm["AlarmActions"] == [step["PolicyARN"]]
    assert "autoscaling 0..3 instances" in out.getvalue()


def _queue_async_result(moto_url: str, data: str, *, failure: bool = False) -> None:
    """moto's documented way to set what InvokeEndpointAsync writes to S3."""
    payload = {
        "account_id": ACCOUNT,
        "region": REGION,
        "results": [{"data": data, "is_failure": failure}],
    }
    request = urllib.request.Request(
        f"{moto_url}/moto-api/static/sagemaker/async-endpoint-results",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_invoke_async_uploads_the_input_and_prints_the_output(
    recorded: Recorded, moto_url: str
) -> None:
    aws = recorded.aws
    aws.s3.create_bucket(Bucket=BUCKET)
    predictions = [{"label": "business", "score": 0.9}, {"label": "health", "score": 0.8}]
    _queue_async_result(moto_url, json.dumps(predictions))
    out = io.StringIO()
    argv = ["invoke", "Fed raises rates", "New vaccine", *common_flags(moto_url), "--async"]

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    sent = recorded.calls.params("InvokeEndpointAsync")
    assert sent["InputLocation"].startswith(f"s3://{BUCKET}/news-classifier/async/")
    key = sent["InputLocation"].removeprefix(f"s3://{BUCKET}/")
    body = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert body == {"inputs": ["Fed raises rates", "New vaccine"], "parameters": {"top_k": 1}}
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("async output s3://")
    assert [json.loads(line)["prediction"] for line in lines[1:]] == predictions


def test_invoke_async_reports_the_failure_object(aws: AwsClients, moto_url: str) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    _queue_async_result(moto_url, '{"error": {"code": "bad_request"}}', failure=True)
    with pytest.raises(JobFailedError, match="bad_request"):
        async_inference.invoke_async(
            aws.runtime, aws.s3, make_settings(), b'{"inputs": "x"}',
            poll_s=0, sleep=lambda _: None,
        )  # fmt: skip


def test_invoke_async_gives_up_after_its_timeout(aws: AwsClients, moto_url: str) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.create_bucket(Bucket="out")
    # InvokeEndpointAsync answered with locations nobody has written to yet.
    runtime = aws.session.client("sagemaker-runtime", region_name=REGION)
    ticks = iter(range(100))
    with Stubber(runtime) as stub:
        stub.add_response(
            "invoke_endpoint_async",
            {
                "InferenceId": "abc",
                "OutputLocation": "s3://out/abc.out",
                "FailureLocation": "s3://out/abc-failure.out",
            },
        )
        with pytest.raises(DeployError, match=r"no answer at s3://out/abc\.out after 3 s"):
            async_inference.invoke_async(
                runtime, aws.s3, make_settings(), b"{}", timeout_s=3, poll_s=1,
                sleep=lambda _: None, clock=lambda: float(next(ticks)),
            )  # fmt: skip


def test_capture_percent_records_json_bodies_as_json(recorded: Recorded, moto_url: str) -> None:
    argv = [
        "deploy", *common_flags(moto_url), "--model-data", MODEL_DATA,
        "--instance-type", "ml.c5.xlarge", "--capture-percent", "25",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(recorded.aws), stdout=io.StringIO()) == 0

    assert recorded.calls.params("CreateEndpointConfig")["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": f"s3://{BUCKET}/news-classifier/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": ["application/json", "application/jsonlines"],
            "CsvContentTypes": ["text/csv"],
        },
    }
    assert _live_config(recorded.aws)["DataCaptureConfig"]["InitialSamplingPercentage"] == 25


def test_a_serverless_update_takes_the_new_memory_size_without_guardrails(
    recorded: Recorded,
) -> None:
    aws = recorded.aws
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/news-classifier"
    described = {
        "EndpointName": "news-classifier",
        "EndpointArn": endpoint_arn,
        "EndpointConfigName": "news-classifier-20260304-050607",
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_endpoint", {**described, "EndpointConfigName": "old"})
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "old",
                "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/old",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ModelName": "old",
                     "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
                ],
                "CreationTime": NOW,
            },
        )  # fmt: skip
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:::model/m"})
        stub.add_response(
            "create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:::config/c"}
        )
        # Exactly these parameters: RetainAllVariantProperties would keep the old memory
        # size, and deployment guardrails do not apply to Serverless endpoints.
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": endpoint_arn},
            {"EndpointName": "news-classifier", "EndpointConfigName": described[
                "EndpointConfigName"]},
        )  # fmt: skip
        stub.add_response("describe_endpoint", described)
        stub.add_response("describe_endpoint", described)
        result = endpoint.deploy_endpoint(
            sagemaker, aws.autoscaling,
            make_settings(hosting="serverless", serverless_memory_mb=6144),
            cloudwatch=aws.cloudwatch, image_uri="img", model_data=MODEL_DATA, poll_s=1, now=NOW,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert (result.action, result.autoscaling) == ("updated", False)
    assert not recorded.calls.operations("cloudwatch")


def test_an_async_update_is_guarded_and_scales_from_zero_again(recorded: Recorded) -> None:
    aws = recorded.aws
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/news-classifier"
    new_name = "news-classifier-20260304-050607"
    described = {
        "EndpointName": "news-classifier",
        "EndpointArn": endpoint_arn,
        "EndpointConfigName": new_name,
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_endpoint", {**described, "EndpointConfigName": "old"})
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "old",
                "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/old",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ModelName": "old",
                     "InstanceType": "ml.g5.xlarge"}
                ],
                "AsyncInferenceConfig": {
                    "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/async/out"}
                },
                "CreationTime": NOW,
            },
        )  # fmt: skip
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:::model/m"})
        stub.add_response(
            "create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:::c/c"}
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": endpoint_arn},
            {"EndpointName": "news-classifier", "EndpointConfigName": new_name,
             "RetainAllVariantProperties": True, "DeploymentConfig": ANY},
        )  # fmt: skip
        stub.add_response("describe_endpoint", described)
        stub.add_response("describe_endpoint", described)
        result = endpoint.deploy_endpoint(
            sagemaker, aws.autoscaling, make_settings(hosting="async", rollout="linear"),
            cloudwatch=aws.cloudwatch, image_uri="img", model_data=MODEL_DATA, poll_s=1, now=NOW,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    sent = recorded.calls.params("UpdateEndpoint")["DeploymentConfig"]
    assert sent["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "LINEAR"
    assert len(sent["AutoRollbackConfiguration"]["Alarms"]) == 2
    assert result.autoscaling
    (target,) = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert target["MinCapacity"] == 0
