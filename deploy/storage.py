"""Put the dataset into S3 under one clear layout, and find the training channels there.

Layout under ``s3://<bucket>/<prefix>/``::

    data/raw/newsCorpora.csv[.xz]            the UCI file as downloaded  -> channel train
    data/prepared/{train,validation,test}/   prepared splits             -> one channel each
    pretrained/                              an optional saved base model -> channel pretrained
    checkpoints/<job>/                       managed spot checkpoints
    models/<job>/output/model.tar.gz         training output
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from boto3.exceptions import S3UploadFailedError

from deploy.errors import AwsError, ConfigError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

DataKind = Literal["raw", "prepared", "pretrained"]
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Uploaded:
    """What ``upload-data`` wrote: object count, bytes, and the channel URIs to train from."""

    objects: int
    size_bytes: int
    channels: dict[str, str]


def data_prefix(settings: DeploySettings, kind: DataKind) -> str:
    """The key prefix (ending in ``/``) of one kind of data."""
    folder = "pretrained" if kind == "pretrained" else f"data/{kind}"
    return "/".join(part for part in (settings.s3_prefix, folder) if part) + "/"


def detect_kind(path: Path) -> DataKind:
    """A file is the raw UCI dump; a folder with split sub-folders is prepared data."""
    if path.is_file():
        return "raw"
    if path.is_dir() and any((path / split).is_dir() for split in SPLITS):
        return "prepared"
    if path.is_dir() and (path / "config.json").is_file():
        return "pretrained"
    raise ConfigError(
        f"{path}: expected the UCI file, a folder with train/validation/test sub-folders, "
        "or a saved pretrained model (a folder with config.json)"
    )


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def upload_dataset(
    s3: S3Client, settings: DeploySettings, path: Path, kind: DataKind | None = None
) -> Uploaded:
    """Upload ``path`` under its kind's prefix; files keep their relative paths."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    bucket = settings.require_bucket()
    kind = kind or detect_kind(path)
    prefix = data_prefix(settings, kind)
    files = _files(path)
    size = 0
    for file in files:
        key = prefix + (file.name if path.is_file() else file.relative_to(path).as_posix())
        logger.info("uploading %s to s3://%s/%s", file, bucket, key)
        try:
            s3.upload_file(str(file), bucket, key)
        except S3UploadFailedError as error:
            # boto3's transfer manager wraps the ClientError; its text names the AWS code.
            raise AwsError("S3 upload", "S3UploadFailed", str(error)) from error
        size += file.stat().st_size
    return Uploaded(objects=len(files), size_bytes=size, channels=_channels(bucket, prefix, kind))


def _channels(bucket: str, prefix: str, kind: DataKind) -> dict[str, str]:
    base = f"s3://{bucket}/{prefix}"
    if kind == "raw":
        return {"train": base}
    if kind == "pretrained":
        return {"pretrained": base}
    return {split: f"{base}{split}/" for split in SPLITS}


def _has_objects(s3: S3Client, bucket: str, prefix: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) > 0


def discover_channels(s3: S3Client, settings: DeploySettings) -> dict[str, str]:
    """The channels ``upload-data`` left: prepared splits if present, else the raw file."""
    bucket = settings.require_bucket()
    prepared = data_prefix(settings, "prepared")
    channels = {
        split: f"s3://{bucket}/{prepared}{split}/"
        for split in SPLITS
        if _has_objects(s3, bucket, f"{prepared}{split}/")
    }
    if "train" not in channels:
        raw = data_prefix(settings, "raw")
        if not _has_objects(s3, bucket, raw):
            raise NotFoundError(
                f"no training data under s3://{bucket}/{settings.s3_prefix}/data/: "
                "run `python -m deploy upload-data <path>` first or pass --channel train=s3://..."
            )
        channels = {"train": f"s3://{bucket}/{raw}"}
    pretrained = data_prefix(settings, "pretrained")
    if _has_objects(s3, bucket, pretrained):
        channels["pretrained"] = f"s3://{bucket}/{pretrained}"
    return channels
