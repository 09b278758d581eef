"""``upload-data``: the dataset lands under one clear prefix; ``train`` finds the channels."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deploy import cli, storage
from deploy.aws import AwsClients
from deploy.errors import AwsError, NotFoundError
from tests.deploy.support import BUCKET, common_flags, factory, make_settings

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "newsCorpora.sample.csv.xz"


def _keys(aws: AwsClients) -> dict[str, int]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {obj["Key"]: obj["Size"] for obj in listed}


def test_upload_raw_file_via_cli(aws: AwsClients, moto_url: str) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    out = io.StringIO()

    code = cli.main(
        ["upload-data", str(SAMPLE), *common_flags(moto_url)], aws=factory(aws), stdout=out
    )

    assert code == 0
    key = "news-classifier/data/raw/newsCorpora.sample.csv.xz"
    assert _keys(aws) == {key: SAMPLE.stat().st_size}
    body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == SAMPLE.read_bytes()
    assert f"channel train s3://{BUCKET}/news-classifier/data/raw/" in out.getvalue()


def test_prepared_splits_and_pretrained_model_become_channels(
    aws: AwsClients, tmp_path: Path
) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    settings = make_settings(s3_prefix="/team/newsclf/")
    prepared = tmp_path / "prepared"
    for split in ("train", "validation", "test"):
        (prepared / split).mkdir(parents=True)
        (prepared / split / "part-0.parquet").write_bytes(b"x" * 10)
    pretrained = tmp_path / "minilm"
    pretrained.mkdir()
    (pretrained / "config.json").write_text("{}")
    storage.upload_dataset(aws.s3, settings, SAMPLE)  # raw too: prepared wins for train

    uploaded = storage.upload_dataset(aws.s3, settings, prepared)
    storage.upload_dataset(aws.s3, settings, pretrained)

    assert uploaded.objects == 3
    assert "team/newsclf/data/prepared/validation/part-0.parquet" in _keys(aws)
    base = f"s3://{BUCKET}/team/newsclf"
    assert storage.discover_channels(aws.s3, settings) == {
        "train": f"{base}/data/prepared/train/",
        "validation": f"{base}/data/prepared/validation/",
        "test": f"{base}/data/prepared/test/",
        "pretrained": f"{base}/pretrained/",
    }


def test_no_data_uploaded_is_a_not_found_error(aws: AwsClients) -> None:
    aws.s3.create_bucket(Bucket=BUCKET)
    with pytest.raises(NotFoundError, match="upload-data"):
        storage.discover_channels(aws.s3, make_settings())


def test_missing_bucket_is_an_aws_error(aws: AwsClients, moto_url: str) -> None:
    code = cli.main(
        ["upload-data", str(SAMPLE), *common_flags(moto_url)],
        aws=factory(aws),
        stdout=io.StringIO(),
    )
    assert code == AwsError.exit_code
