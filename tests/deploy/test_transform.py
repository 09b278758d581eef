"""``transform``: a Batch Transform job on moto's server, the request checked field by field.

moto runs CreateTransformJob and DescribeTransformJob (its jobs complete at once); botocore
validates every request against SageMaker's service model before it is sent.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from deploy import cli, transform
from deploy.aws import AwsClients
from deploy.errors import ConfigError, JobFailedError
from tests.deploy.support import (
    ACCOUNT,
    BUCKET,
    IMAGE_TAG,
    REGION,
    Recorded,
    common_flags,
    factory,
)

SERVE_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/news-classifier-serve"
MODEL_DATA = f"s3://{BUCKET}/news-classifier/models/job/output/model.tar.gz"
INPUT = f"s3://{BUCKET}/archive/headlines/"
OUTPUT = f"s3://{BUCKET}/archive/classified/"


def test_transform_cli_runs_a_cpu_job_over_lines_and_reports_the_output(
    recorded: Recorded, moto_url: str
) -> None:
    out = io.StringIO()
    argv = [
        "transform", INPUT, OUTPUT, *common_flags(moto_url), "--model-data", MODEL_DATA,
        "--instance-type", "ml.c5.xlarge", "--instance-count", "2", "--input-format", "csv",
        "--max-payload-mb", "20", "--max-concurrent-transforms", "4", "--env", "LOG_LEVEL=debug",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(recorded.aws), stdout=out) == 0

    job = recorded.calls.params("CreateTransformJob")
    name = job["TransformJobName"]
    assert name.startswith("news-classifier-transform-")
    assert job["ModelName"] == name
    assert job["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": INPUT}},
        "ContentType": "text/csv",
        "SplitType": "Line",
        "CompressionType": "None",
    }
    assert job["TransformOutput"] == {
        "S3OutputPath": OUTPUT,
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert (job["BatchStrategy"], job["MaxPayloadInMB"], job["MaxConcurrentTransforms"]) == (
        "MultiRecord", 20, 4,
    )  # fmt: skip
    # The server learns the job's limits from its environment, not from a guess.
    assert job["Environment"] == {
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
        "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4",
        "LOG_LEVEL": "debug",
    }
    model = recorded.aws.sagemaker.describe_model(ModelName=name)
    assert model["PrimaryContainer"]["Image"] == f"{SERVE_REPO}:{IMAGE_TAG}-cpu"
    assert model["PrimaryContainer"]["ModelDataUrl"] == MODEL_DATA
    lines = out.getvalue().splitlines()
    assert f"transform job {name}: Completed" in lines
    assert f"output {OUTPUT} (<input file name>.out per input file)" in lines


def test_a_gpu_transform_uses_the_cuda_image_and_a_driver_it_supports(
    recorded: Recorded, moto_url: str
) -> None:
    argv = [
        "transform", INPUT, OUTPUT, *common_flags(moto_url), "--model-data", MODEL_DATA,
        "--instance-type", "ml.g4dn.xlarge", "--batch-strategy", "SingleRecord",
        "--output-format", "csv", "--no-wait",
    ]  # fmt: skip

    assert cli.main(argv, aws=factory(recorded.aws), stdout=io.StringIO()) == 0

    job = recorded.calls.params("CreateTransformJob")
    assert job["TransformResources"]["TransformAmiVersion"] == "al2-ami-sagemaker-batch-gpu-535"
    assert job["Environment"]["SAGEMAKER_BATCH_STRATEGY"] == "SINGLE_RECORD"
    assert job["TransformOutput"]["Accept"] == "text/csv"
    image = recorded.aws.sagemaker.describe_model(ModelName=job["ModelName"])["PrimaryContainer"]
    assert image["Image"] == f"{SERVE_REPO}:{IMAGE_TAG}"
    assert "DescribeTransformJob" not in recorded.calls.operations()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-payload-mb", "101"], "1..100 MB"),
        (["--max-payload-mb", "30", "--max-concurrent-transforms", "4"], "exceeds"),
    ],
)
def test_limits_sagemaker_would_refuse_are_refused_before_any_call(
    aws: AwsClients,
    moto_url: str,
    flags: list[str],
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    argv = ["transform", INPUT, OUTPUT, *common_flags(moto_url), *flags]
    with caplog.at_level("ERROR", logger="deploy"):
        code = cli.main(argv, aws=factory(aws), stdout=io.StringIO())
    assert code == ConfigError.exit_code
    assert message in caplog.text
    assert aws.sagemaker.list_models()["Models"] == []


def test_the_output_must_not_be_the_input(aws: AwsClients, moto_url: str) -> None:
    argv = ["transform", INPUT, INPUT.rstrip("/"), *common_flags(moto_url)]
    assert cli.main(argv, aws=factory(aws), stdout=io.StringIO()) == ConfigError.exit_code


def _described(status: str, **extra: object) -> dict[str, object]:
    """DescribeTransformJob's answer with its required fields (the Stubber checks them)."""
    return {
        "TransformJobName": "job",
        "TransformJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/job",
        "TransformJobStatus": status,
        "ModelName": "job",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": INPUT}}},
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
        "TransformOutput": {"S3OutputPath": OUTPUT},
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        **extra,
    }  # fmt: skip


def test_a_failed_job_raises_with_its_reason_after_reporting_progress(aws: AwsClients) -> None:
    # moto's jobs always complete; a failure is SageMaker's documented answer, stubbed.
    sagemaker = aws.session.client("sagemaker", region_name=REGION)
    lines: list[str] = []
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_transform_job", _described("InProgress"))
        stub.add_response("describe_transform_job", _described("InProgress"))
        reason = "ClientError: See job logs for more information"
        stub.add_response("describe_transform_job", _described("Failed", FailureReason=reason))
        with pytest.raises(JobFailedError, match="See job logs") as raised:
            transform.wait_for_transform(sagemaker, "job", write=lines.append, sleep=lambda _: None)
    assert lines == ["transform job job: InProgress", "transform job job: Failed"]
    assert OUTPUT in str(raised.value)
