"""``train``: the CreateTrainingJob request SageMaker receives, log streaming, the result."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from botocore.stub import ANY, Stubber

from deploy import cli, training_job
from deploy.aws import AwsClients
from deploy.errors import ConfigError, JobFailedError, NotFoundError
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
from training.sagemaker_env import format_metric_line

TRAIN_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-train:{IMAGE_TAG}"


def test_train_cli_creates_the_job_sagemaker_would_run(recorded: Recorded, moto_url: str) -> None:
    aws = recorded.aws
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_object(Bucket=BUCKET, Key="news-classifier/data/raw/newsCorpora.csv", Body=b"x")
    out = io.StringIO()
    argv = [
        "train", *common_flags(moto_url),
        "--instance-type", "ml.g5.2xlarge", "--instance-count", "1",
        "--max-runtime", "3600", "--max-wait", "7200",
        "--hp", "epochs=2", "--hp", "model_name_or_path=/opt/ml/input/data/pretrained",
        "--channel", "pretrained=s3://elsewhere/minilm/",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(aws), stdout=out) == 0

    name = out.getvalue().splitlines()[0].removeprefix("training job ")
    job = aws.sagemaker.describe_training_job(TrainingJobName=name)
    assert job["AlgorithmSpecification"]["TrainingImage"] == TRAIN_IMAGE
    assert job["RoleArn"] == ROLE_ARN
    assert job["HyperParameters"] == {
        "epochs": "2",
        "model_name_or_path": "/opt/ml/input/data/pretrained",
    }
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]
    }
    assert channels == {
        "train": f"s3://{BUCKET}/news-classifier/data/raw/",
        "pretrained": "s3://elsewhere/minilm/",
    }
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert job["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/news-classifier/checkpoints/{name}/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/news-classifier/models/"
    # moto replaces MetricDefinitions in its answer, so assert on the request that was sent.
    (sent,) = recorded.sent.bodies["CreateTrainingJob"]
    sent_metrics = {m["Name"] for m in sent["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"train:loss", "validation:macro_f1", "test:accuracy"} <= sent_metrics
    # The job "completes" at once on moto: the artifact and final metrics are printed.
    artifact = f"s3://{BUCKET}/news-classifier/models/{name}/output/model.tar.gz"
    assert f"model artifact {artifact}" in out.getvalue()
    assert "metric train:progress 100" in out.getvalue()


def test_on_demand_training_has_no_spot_or_checkpoint_settings() -> None:
    request = training_job.build_request(
        make_settings(spot=False),
        name="news-classifier-1",
        image_uri=TRAIN_IMAGE,
        channels={"train": "s3://b/p/"},
        hyperparameters={"seed": "1"},
    )
    assert "EnableManagedSpotTraining" not in request
    assert "CheckpointConfig" not in request
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 4 * 3600}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("train:loss", "train_loss"),
        ("validation:accuracy", "validation_accuracy"),
        ("validation:macro_f1", "validation_macro_f1"),
        ("test:macro_f1", "test_macro_f1"),
    ],
)
def test_metric_definitions_match_the_lines_training_prints(name: str, key: str) -> None:
    line = format_metric_line({"step": 120, key: 0.8125, "learning_rate": 2e-05})
    (definition,) = [m for m in training_job.METRIC_DEFINITIONS if m["Name"] == name]
    match = re.search(definition["Regex"], line)
    assert match is not None and float(match.group(1)) == pytest.approx(0.8125)


def test_wait_streams_every_instance_log_and_returns_the_result(aws: AwsClients) -> None:
    settings = make_settings()
    aws.s3.create_bucket(Bucket=BUCKET)
    name = training_job.job_name(settings, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert name == "news-classifier-20260102-030405"
    request = training_job.build_request(
        settings, name=name, image_uri=TRAIN_IMAGE, channels={"train": "s3://b/p/"},
        hyperparameters={},
    )  # fmt: skip
    training_job.start_training_job(aws.sagemaker, request)
    group = training_job.LOG_GROUP
    now_ms = int(time.time() * 1000)  # CloudWatch (and moto) reject events older than 14 days
    aws.logs.create_log_group(logGroupName=group)
    for host, lines in (
        ("algo-1", ["starting", "METRIC step=1 train_loss=0.5"]),
        ("algo-2", ["ok"]),
    ):
        stream = f"{name}/{host}-1700000000"
        aws.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        aws.logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(lines)],
        )
    written: list[str] = []

    result = training_job.wait_for_training_job(
        aws.sagemaker, aws.logs, name, write=written.append, sleep=lambda _: None
    )

    assert written == [
        "[algo-1-1700000000] starting",
        "[algo-1-1700000000] METRIC step=1 train_loss=0.5",
        "[algo-2-1700000000] ok",
    ]
    assert result.model_artifact.endswith(f"/{name}/output/model.tar.gz")


def test_latest_completed_job_is_found_and_missing_ones_are_not_found_errors(
    aws: AwsClients,
) -> None:
    settings = make_settings()
    with pytest.raises(NotFoundError, match="no completed training job"):
        training_job.latest_training_job(aws.sagemaker, settings)
    for when in (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)):
        name = training_job.job_name(settings, when)
        training_job.start_training_job(
            aws.sagemaker,
            training_job.build_request(
                settings, name=name, image_uri=TRAIN_IMAGE, channels={"train": "s3://b/p/"},
                hyperparameters={},
            ),
        )  # fmt: skip
    # moto sets CreationTime to "now", so the job created last is the newest.
    assert training_job.latest_training_job(aws.sagemaker, settings) == name


def test_latest_job_is_never_another_deployments_job(aws: AwsClients) -> None:
    ours = make_settings()
    name = training_job.job_name(ours, datetime(2026, 1, 1, tzinfo=UTC))
    # Created after ours, so newer; NameContains="news-classifier" lists both.
    staging = make_settings(name="news-classifier-staging")
    other = training_job.job_name(staging, datetime(2026, 3, 1, tzinfo=UTC))
    for settings, job in ((ours, name), (staging, other)):
        training_job.start_training_job(
            aws.sagemaker,
            training_job.build_request(
                settings, name=job, image_uri=TRAIN_IMAGE, channels={"train": "s3://b/p/"},
                hyperparameters={},
            ),
        )  # fmt: skip

    assert training_job.latest_training_job(aws.sagemaker, ours) == name


def test_train_without_a_role_exits_with_the_config_error_code(
    aws: AwsClients, moto_url: str
) -> None:
    argv = ["train", "--region", REGION, "--endpoint-url", moto_url, "--bucket", BUCKET]
    assert cli.main(argv, aws=factory(aws), stdout=io.StringIO()) == ConfigError.exit_code


def test_importing_the_cli_pulls_in_no_training_dependency() -> None:
    code = (
        "import sys, deploy.cli; sys.exit(any(m in sys.modules for m in ('torch', 'transformers')))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_failed_job_raises_with_sagemakers_reason(aws: AwsClients) -> None:
    # moto completes every job at once, so the failure comes from botocore's Stubber.
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    described = {
        "TrainingJobName": "news-classifier-1",
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/news-classifier-1",
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "SecondaryStatus": "Failed",
        "TrainingJobStatus": "Failed",
        "FailureReason": "AlgorithmError: DataError: no rows in the train channel",
    }
    with Stubber(sagemaker) as stub:
        for _ in range(2):  # the wait loop's describe, then describe_result's
            stub.add_response("describe_training_job", described, {"TrainingJobName": ANY})
        with pytest.raises(JobFailedError, match="ended Failed: AlgorithmError: DataError"):
            training_job.wait_for_training_job(
                sagemaker, aws.logs, "news-classifier-1", write=lambda _: None,
                sleep=lambda _: None,
            )  # fmt: skip


def test_a_mistyped_hyperparameter_fails_before_any_job_is_created(
    recorded: Recorded, moto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["train", *common_flags(moto_url), "--hp", "epoch=2", "--channel", "train=s3://b/p/"]

    assert cli.main(argv, aws=factory(recorded.aws), stdout=io.StringIO()) == ConfigError.exit_code

    assert "Did you mean 'epochs'" in caplog.text
    assert "CreateTrainingJob" not in recorded.calls.operations()
