"""``deploy pipeline upsert|start|status|approve`` and ``deploy --model-package`` against AWS.

moto's server has pipelines (create/update, start, describe, parameters) and the Model
Registry (groups, packages, approval), so those run there. It has no
ListPipelineExecutionSteps, so following an execution's steps uses botocore's ``Stubber``,
which checks every request and canned response against botocore's service model.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from deploy import cli, pipeline_run
from deploy.aws import AwsClients
from deploy.errors import JobFailedError
from tests.deploy.pipeline_support import keep_sdk_local
from tests.deploy.support import (
    ACCOUNT,
    BUCKET,
    REGION,
    Recorded,
    common_flags,
    factory,
)

GROUP = "news-classifier"
PIPELINE = "news-classifier"
MODEL_DATA = f"s3://{BUCKET}/news-classifier/models/pipeline/job/output/model.tar.gz"
GPU_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-serve:7"
CPU_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-serve:7-cpu"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/abc123"


@pytest.fixture(autouse=True)
def _sdk_stays_local(monkeypatch: pytest.MonkeyPatch) -> None:
    keep_sdk_local(monkeypatch)


@pytest.fixture
def bucket(aws: AwsClients) -> str:
    aws.s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def _run(aws: AwsClients, moto_url: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main([*args, *common_flags(moto_url)], aws=factory(aws), stdout=out)
    return code, out.getvalue()


def _register(aws: AwsClients, status: str, model_data: str = MODEL_DATA) -> str:
    sagemaker = aws.sagemaker
    with contextlib.suppress(ClientError):  # created by an earlier call of this test
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,  # type: ignore[arg-type]
        InferenceSpecification={
            "Containers": [{"Image": GPU_IMAGE, "ModelDataUrl": model_data}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.g4dn.xlarge"],
        },
        AdditionalInferenceSpecifications=[
            {
                "Name": "cpu",
                "Containers": [{"Image": CPU_IMAGE, "ModelDataUrl": model_data}],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.c5.xlarge"],
            }
        ],
    )["ModelPackageArn"]


def test_upsert_creates_the_sdk_definition_then_updates_it(
    recorded: Recorded, moto_url: str, bucket: str
) -> None:
    aws = recorded.aws
    code, out = _run(aws, moto_url, "pipeline", "upsert")
    assert code == 0, out
    assert f"created model package group {GROUP}" in out
    described = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    definition = json.loads(described["PipelineDefinition"])
    assert [s["Name"] for s in definition["Steps"]] == [
        "Prepare", "Train", "Evaluate", "CheckNotWorseThanBaseline",
    ]  # fmt: skip
    assert described["RoleArn"].endswith(":role/NewsClassifierSageMaker")
    # The images are the pushed ones of this version: train runs every job step.
    prepare = definition["Steps"][0]["Arguments"]
    assert prepare["AppSpecification"]["ImageUri"].endswith("/news-classifier-train:0.1.0-abc123")
    # The "no approved model yet" input exists, so the evaluate step's S3 input is valid.
    marker = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="news-classifier/pipeline/")
    assert [o["Key"] for o in marker["Contents"]] == [
        "news-classifier/pipeline/no-approved-model/NONE"
    ]
    aws.sagemaker.describe_model_package_group(ModelPackageGroupName=GROUP)

    code, out = _run(aws, moto_url, "pipeline", "upsert")
    assert code == 0, out
    assert "created model package group" not in out
    assert "UpdatePipeline" in recorded.calls.operations("sagemaker")


def test_definition_prints_the_json_and_creates_nothing(recorded: Recorded, moto_url: str) -> None:
    code, out = _run(recorded.aws, moto_url, "pipeline", "definition")
    assert code == 0
    assert json.loads(out)["Version"] == "2020-12-01"
    assert recorded.calls.operations("sagemaker") == []


def test_start_passes_the_approved_model_and_the_hyperparameters(
    recorded: Recorded, moto_url: str, bucket: str
) -> None:
    aws = recorded.aws
    assert _run(aws, moto_url, "pipeline", "upsert")[0] == 0
    _register(aws, "Approved", MODEL_DATA)
    pending = _register(aws, "PendingManualApproval", MODEL_DATA.replace("job", "newer"))
    code, out = _run(
        aws, moto_url, "pipeline", "start", "--no-wait", "--hp", "epochs=3",
        "--raw-data", f"s3://{BUCKET}/raw/", "--auto-approve",
    )  # fmt: skip
    assert code == 0, out
    assert pending not in out  # the newest Approved one, not the newest one
    execution = out.split("execution ")[1].split()[0]
    parameters = {
        p["Name"]: p["Value"]
        for p in aws.sagemaker.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=execution
        )["PipelineParameters"]
    }
    assert parameters == {
        "ApprovedModelData": MODEL_DATA,
        "AutoApprove": "true",
        "Epochs": "3",
        "RawData": f"s3://{BUCKET}/raw/",
    }


def test_start_without_an_approved_model_points_at_the_empty_marker(
    recorded: Recorded, moto_url: str, bucket: str
) -> None:
    aws = recorded.aws
    assert _run(aws, moto_url, "pipeline", "upsert")[0] == 0
    code, out = _run(aws, moto_url, "pipeline", "start", "--no-wait")
    assert code == 0, out
    assert "approved model: none yet" in out
    sent = recorded.sent.bodies["StartPipelineExecution"][0]["PipelineParameters"]
    assert {
        "Name": "ApprovedModelData",
        "Value": f"s3://{BUCKET}/news-classifier/pipeline/no-approved-model/",
    } in sent
    assert {"Name": "AutoApprove", "Value": "false"} in sent


def test_a_hyperparameter_that_is_no_parameter_is_refused(
    recorded: Recorded, moto_url: str
) -> None:
    code, _ = _run(recorded.aws, moto_url, "pipeline", "start", "--hp", "warmup_ratio=0.2")
    assert code == 2
    assert "StartPipelineExecution" not in recorded.calls.operations()


def test_approve_sets_the_newest_pending_package_approved(
    recorded: Recorded, moto_url: str
) -> None:
    aws = recorded.aws
    _register(aws, "PendingManualApproval")
    newest = _register(aws, "PendingManualApproval", MODEL_DATA.replace("job", "newer"))
    code, out = _run(aws, moto_url, "pipeline", "approve")
    assert code == 0, out
    assert f"model package {newest} Approved" in out
    described = aws.sagemaker.describe_model_package(ModelPackageName=newest)
    assert described["ModelApprovalStatus"] == "Approved"

    code, out = _run(aws, moto_url, "pipeline", "approve", "--model-package", newest, "--reject")
    assert code == 0
    assert (
        aws.sagemaker.describe_model_package(ModelPackageName=newest)["ModelApprovalStatus"]
        == "Rejected"
    )


@pytest.mark.parametrize(
    ("instance_type", "image"), [("ml.g4dn.xlarge", GPU_IMAGE), ("ml.c5.xlarge", CPU_IMAGE)]
)
def test_deploy_latest_approved_package_uses_its_artifact_and_image(
    aws: AwsClients, moto_url: str, instance_type: str, image: str
) -> None:
    _register(aws, "Approved")
    _register(aws, "PendingManualApproval", MODEL_DATA.replace("job", "newer"))
    code, out = _run(
        aws, moto_url, "deploy", "--model-package", "latest-approved",
        "--instance-type", instance_type, "--no-wait",
    )  # fmt: skip
    assert code == 0, out
    (model,) = aws.sagemaker.list_models()["Models"]
    container = aws.sagemaker.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]
    assert (container["Image"], container["ModelDataUrl"]) == (image, MODEL_DATA)


def test_deploy_refuses_a_package_that_is_not_approved(aws: AwsClients, moto_url: str) -> None:
    pending = _register(aws, "PendingManualApproval")
    code, _ = _run(aws, moto_url, "deploy", "--model-package", pending, "--no-wait")
    assert code == 2
    assert aws.sagemaker.list_models()["Models"] == []
    code, _ = _run(aws, moto_url, "deploy", "--model-package", "latest-approved", "--no-wait")
    assert code == 3  # no Approved package at all


# --- following an execution (Stubber: moto has no ListPipelineExecutionSteps) -------------


@pytest.fixture
def stubbed(aws: AwsClients) -> Iterator[tuple[AwsClients, Stubber]]:
    with Stubber(aws.sagemaker) as stubber:
        yield aws, stubber
        stubber.assert_no_pending_responses()


def _step(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"StepName": name, "StepStatus": status, **extra}


def _expect_poll(
    stubber: Stubber, status: str, steps: list[dict[str, Any]], reason: str | None = None
) -> None:
    described: dict[str, Any] = {
        "PipelineExecutionArn": EXECUTION,
        "PipelineExecutionStatus": status,
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
    }
    if reason:
        described["FailureReason"] = reason
    stubber.add_response(
        "describe_pipeline_execution", described, {"PipelineExecutionArn": EXECUTION}
    )
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps},
        {"PipelineExecutionArn": EXECUTION, "SortOrder": ANY},
    )


def test_follow_prints_each_step_change_once_until_the_end(
    stubbed: tuple[AwsClients, Stubber],
) -> None:
    aws, stubber = stubbed
    training = {"TrainingJob": {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/t"}}
    _expect_poll(stubber, "Executing", [_step("Prepare", "Executing")])
    _expect_poll(
        stubber,
        "Executing",
        [_step("Prepare", "Succeeded"), _step("Train", "Executing", Metadata=training)],
    )
    _expect_poll(
        stubber,
        "Succeeded",
        [
            _step("Prepare", "Succeeded"),
            _step("Train", "Succeeded", Metadata=training),
            _step("RegisterApproved", "Succeeded"),
        ],
    )
    lines: list[str] = []
    sleeps: list[float] = []
    final = pipeline_run.follow_execution(
        aws.sagemaker, EXECUTION, lines.append, poll_s=5, sleep=sleeps.append
    )
    assert final.status == "Succeeded"
    assert lines == [
        "step Prepare Executing",
        "step Prepare Succeeded",
        f"step Train Executing TrainingJob {training['TrainingJob']['Arn']}",
        f"step Train Succeeded TrainingJob {training['TrainingJob']['Arn']}",
        "step RegisterApproved Succeeded",
    ]
    assert sleeps == [5, 5]


def test_status_of_a_failed_execution_is_exit_6_with_the_gate_reason(
    stubbed: tuple[AwsClients, Stubber], moto_url: str
) -> None:
    aws, stubber = stubbed
    reason = "the candidate is worse than the TF-IDF baseline; see s3://b/evaluation.json"
    _expect_poll(
        stubber,
        "Failed",
        [_step("WorseThanBaseline", "Failed", FailureReason=reason)],
        reason=reason,
    )
    code, out = _run(aws, moto_url, "pipeline", "status", "--execution-arn", EXECUTION, "--wait")
    assert code == JobFailedError.exit_code
    assert f"step WorseThanBaseline Failed: {reason}" in out
    assert "status Failed" in out
