"""Model Registry: the package group the pipeline registers into, on SageMaker or in a folder.

SageMaker side (boto3): find the newest package of a status, read what deploying one needs
(model data, GPU and CPU images), approve or reject one. Local side: :class:`LocalRegistry`,
the folder the local pipeline registers into, with the same statuses and fields.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from deploy.errors import ConfigError, NotFoundError, error_code
from deploy.pipeline_gate import APPROVED, PENDING, REJECTED

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

LATEST_APPROVED = "latest-approved"
CPU_SPECIFICATION = "cpu"
STATUSES = (APPROVED, PENDING, REJECTED)


@dataclass(frozen=True)
class RegisteredModel:
    """What deploying a model package needs, read from DescribeModelPackage."""

    arn: str
    status: str
    model_data: str
    gpu_image: str
    cpu_image: str | None
    created: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def image_for(self, *, gpu: bool) -> str:
        if gpu:
            return self.gpu_image
        if self.cpu_image is None:
            raise ConfigError(
                f"model package {self.arn} names no CPU image: deploy it to a GPU instance type"
            )
        return self.cpu_image


def ensure_group(sagemaker: SageMakerClient, group: str, description: str) -> bool:
    """Create the package group when it is missing; ``True`` when it was created."""
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        return False
    except ClientError as error:
        if error_code(error) not in {"ValidationException", "ResourceNotFound"}:
            raise
    sagemaker.create_model_package_group(
        ModelPackageGroupName=group, ModelPackageGroupDescription=description
    )
    return True


def latest_package_arn(sagemaker: SageMakerClient, group: str, status: str = APPROVED) -> str:
    """The newest package of ``status`` in ``group``."""
    response = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,  # type: ignore[arg-type]
        ModelPackageType="Versioned",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    packages = response.get("ModelPackageSummaryList", [])
    if not packages:
        raise NotFoundError(f"no {status} model package in the group {group!r}")
    return packages[0]["ModelPackageArn"]


def describe_package(sagemaker: SageMakerClient, arn: str) -> RegisteredModel:
    try:
        response = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as error:
        if error_code(error) in {"ValidationException", "ResourceNotFound"}:
            raise NotFoundError(f"no model package {arn}") from error
        raise
    containers = response.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl"):
        raise NotFoundError(f"model package {arn} has no container with model data")
    cpu_image = None
    for spec in response.get("AdditionalInferenceSpecifications", []):
        if spec["Name"] == CPU_SPECIFICATION and spec["Containers"]:
            cpu_image = spec["Containers"][0]["Image"]
    metadata = dict(response.get("CustomerMetadataProperties", {}))
    cpu_image = cpu_image or metadata.get("cpu_image")
    created = response.get("CreationTime")
    return RegisteredModel(
        arn=response["ModelPackageArn"],
        status=str(response.get("ModelApprovalStatus", "")),
        model_data=containers[0]["ModelDataUrl"],
        gpu_image=containers[0]["Image"],
        cpu_image=cpu_image,
        created=created.isoformat() if created else "",
        metadata=metadata,
    )


def resolve_package(sagemaker: SageMakerClient, group: str, ref: str) -> RegisteredModel:
    """``latest-approved`` or a package ARN -> the package; a deploy refuses unapproved ones."""
    arn = latest_package_arn(sagemaker, group) if ref == LATEST_APPROVED else ref
    package = describe_package(sagemaker, arn)
    if package.status != APPROVED:
        raise ConfigError(
            f"model package {arn} is {package.status}, not Approved: approve it first "
            "(python -m deploy pipeline approve --model-package ARN)"
        )
    return package


def set_status(
    sagemaker: SageMakerClient, arn: str, status: str, description: str | None = None
) -> None:
    if status not in STATUSES:
        raise ConfigError(f"status must be one of {', '.join(STATUSES)}")
    request: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
    if description:
        request["ApprovalDescription"] = description
    sagemaker.update_model_package(**request)


# --- the local folder registry ------------------------------------------------------------


@dataclass(frozen=True)
class LocalPackage:
    """One registered version: ``<root>/<group>/<version>/`` with ``model/`` and files."""

    version: int
    status: str
    path: Path
    created: str
    metrics: dict[str, Any]
    data_sha256: str | None
    images: dict[str, str]
    inference_instances: dict[str, list[str]]
    content_types: list[str]
    reason: str = ""

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["path"] = str(self.path)
        return payload


class LocalRegistry:
    """A Model Registry in a folder, for the local pipeline: versions 1, 2, ... per group."""

    PACKAGE_FILE = "package.json"

    def __init__(self, root: Path, group: str) -> None:
        self.root = root
        self.group = group
        self.group_dir = root / group

    def packages(self) -> list[LocalPackage]:
        if not self.group_dir.is_dir():
            return []
        found = []
        for path in self.group_dir.iterdir():
            manifest = path / self.PACKAGE_FILE
            if path.is_dir() and path.name.isdigit() and manifest.is_file():
                found.append(self._read(path))
        return sorted(found, key=lambda p: p.version)

    def latest(self, status: str = APPROVED) -> LocalPackage | None:
        matching = [p for p in self.packages() if p.status == status]
        return matching[-1] if matching else None

    def get(self, version: int) -> LocalPackage:
        path = self.group_dir / str(version)
        if not (path / self.PACKAGE_FILE).is_file():
            raise NotFoundError(f"no version {version} in the local registry {self.group_dir}")
        return self._read(path)

    def register(
        self,
        model_dir: Path,
        evaluation_file: Path,
        *,
        status: str,
        reason: str,
        images: dict[str, str],
        inference_instances: dict[str, list[str]],
        content_types: list[str],
    ) -> LocalPackage:
        """Copy the model and its evaluation in as the next version, all or nothing."""
        evaluation = json.loads(evaluation_file.read_text("utf-8"))
        self.group_dir.mkdir(parents=True, exist_ok=True)
        version = max((p.version for p in self.packages()), default=0) + 1
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.group_dir))
        try:
            shutil.copytree(model_dir, staging / "model")
            shutil.copy2(evaluation_file, staging / evaluation_file.name)
            package = LocalPackage(
                version=version,
                status=status,
                path=self.group_dir / str(version),
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                metrics=evaluation["multiclass_classification_metrics"],
                data_sha256=evaluation.get("data", {}).get("sha256"),
                images=images,
                inference_instances=inference_instances,
                content_types=content_types,
                reason=reason,
            )
            self._write(staging, package)
            staging.rename(package.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return package

    def set_status(self, version: int, status: str) -> LocalPackage:
        if status not in STATUSES:
            raise ConfigError(f"status must be one of {', '.join(STATUSES)}")
        package = self.get(version)
        updated = LocalPackage(**{**asdict(package), "path": package.path, "status": status})
        self._write(package.path, updated)
        return updated

    def _write(self, directory: Path, package: LocalPackage) -> None:
        staging = directory / f".{self.PACKAGE_FILE}.tmp"
        payload = package.to_dict()
        payload.pop("path")
        staging.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", "utf-8")
        staging.replace(directory / self.PACKAGE_FILE)

    def _read(self, path: Path) -> LocalPackage:
        raw = json.loads((path / self.PACKAGE_FILE).read_text("utf-8"))
        raw["path"] = path
        return LocalPackage(**raw)
