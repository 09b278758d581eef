"""Build the images with the docker CLI, check their CPU architecture, push them to ECR.

The docker CLI sits behind a small protocol (``DockerRunner``) so that tests drive the push
logic with a fake; the real runner calls ``docker`` through ``subprocess`` without a shell.
ECR login uses ``get_authorization_token`` (the old ``aws ecr get-login`` no longer exists).

SageMaker pulls only Docker image manifests, v2 schema 2: an OCI manifest, or the OCI image
index that BuildKit's default provenance attestation wraps a single-platform image in, fails
``CreateModel``/``CreateTrainingJob`` with "Unsupported manifest media type". So the build
turns attestations off and asks for Docker media types, and ``push`` reads each pushed tag's
``imageManifestMediaType`` back from ECR before it reports success.
"""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from deploy.errors import AwsError, ImageError, error_code

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

# Dockerfile targets and the ECR repository and tag suffix each one is pushed under.
TARGETS = ("train", "serve", "serve-cpu")
# The one manifest media type SageMaker pulls (Docker Image Manifest V2, Schema 2).
SAGEMAKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
# buildx flags for it: no provenance or SBOM attestations (they turn the image into an OCI
# image index) and Docker, not OCI, media types in the image loaded into the local engine.
BUILD_OUTPUT_FLAGS = (
    "--provenance=false",
    "--sbom=false",
    "--output",
    "type=docker,oci-mediatypes=false",
)


class DockerRunner(Protocol):
    """The docker CLI operations ``push`` needs."""

    def build(
        self,
        *,
        context: Path,
        dockerfile: Path,
        target: str,
        tags: Sequence[str],
        platform: str,
        build_args: Mapping[str, str],
    ) -> None: ...

    def architecture(self, image: str) -> str:
        """``docker image inspect`` Architecture of a local image (``amd64``, ``arm64``)."""
        ...

    def login(self, registry: str, username: str, password: str) -> None: ...

    def push(self, image: str) -> None: ...


class SubprocessDocker:
    """``DockerRunner`` over the real docker CLI."""

    def __init__(self, executable: str = "docker") -> None:
        self._docker = executable

    def _run(self, *args: str, stdin: str | None = None) -> str:
        # build and push stream their progress to the terminal; the rest is parsed.
        streamed = args[0] in ("build", "push")
        logger.info("running docker %s", " ".join(args[:2]))
        try:
            result = subprocess.run(
                [self._docker, *args],
                input=stdin,
                capture_output=not streamed,
                text=True,
                check=False,
            )
        except FileNotFoundError as error:
            raise ImageError(f"the docker CLI ({self._docker}) is not installed") from error
        if result.returncode != 0:
            detail = (result.stderr or "").strip().splitlines()[-1:] or ["see the output above"]
            raise ImageError(f"docker {args[0]} failed ({result.returncode}): {detail[0]}")
        return result.stdout or ""

    def build(
        self,
        *,
        context: Path,
        dockerfile: Path,
        target: str,
        tags: Sequence[str],
        platform: str,
        build_args: Mapping[str, str],
    ) -> None:
        args = ["build", "--file", str(dockerfile), "--target", target, "--platform", platform]
        args += BUILD_OUTPUT_FLAGS
        for key, value in sorted(build_args.items()):
            args += ["--build-arg", f"{key}={value}"]
        for tag in tags:
            args += ["--tag", tag]
        self._run(*args, str(context))

    def architecture(self, image: str) -> str:
        return self._run("image", "inspect", "--format", "{{.Architecture}}", image).strip()

    def login(self, registry: str, username: str, password: str) -> None:
        # --password-stdin keeps the token out of the process list and shell history.
        self._run("login", "--username", username, "--password-stdin", registry, stdin=password)

    def push(self, image: str) -> None:
        self._run("push", image)


def git_commit(repo: Path) -> str:
    """The short commit id of ``repo``'s HEAD, ``-dirty`` when tracked files changed."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(repo), "diff", "--quiet", "HEAD"],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        )
    except (OSError, subprocess.CalledProcessError) as error:
        raise ImageError(
            "cannot read the git commit to tag the images with; commit first or pass --image-tag"
        ) from error
    return f"{commit}-dirty" if dirty else commit


def default_image_tag(version: str, commit: str) -> str:
    return f"{version}-{commit}"


def target_tag(tag: str, target: str) -> str:
    """The CPU serving image shares the serving repository, with a ``-cpu`` suffix."""
    return f"{tag}-cpu" if target == "serve-cpu" else tag


def repository_for(settings: DeploySettings, target: str) -> str:
    return settings.train_repository if target == "train" else settings.serve_repository


def registry_host(account_id: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account_id}.dkr.ecr.{region}.{suffix}"


def image_uri(settings: DeploySettings, account_id: str, region: str, target: str, tag: str) -> str:
    repository = repository_for(settings, target)
    return f"{registry_host(account_id, region)}/{repository}:{target_tag(tag, target)}"


def ensure_repository(ecr: ECRClient, name: str) -> str:
    """The repository's URI, creating it (scan on push, immutable tags off) when missing."""
    try:
        found = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        return found["repositoryUri"]
    except ClientError as error:
        if error_code(error) != "RepositoryNotFoundException":
            raise AwsError.from_client_error(error) from error
    logger.info("creating ECR repository %s", name)
    created = ecr.create_repository(
        repositoryName=name,
        imageScanningConfiguration={"scanOnPush": True},
        tags=[{"Key": "project", "Value": "news-classifier"}],
    )
    return created["repository"]["repositoryUri"]


@dataclass(frozen=True)
class RegistryLogin:
    registry: str
    username: str
    password: str


def registry_credentials(ecr: ECRClient) -> RegistryLogin:
    """Decode ``get_authorization_token``'s base64 ``user:password`` for ``docker login``."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].removeprefix("https://")
    return RegistryLogin(registry=registry, username=username, password=password)


@dataclass(frozen=True)
class PushedImage:
    target: str
    uris: tuple[str, ...]


def push_images(
    *,
    settings: DeploySettings,
    ecr: ECRClient,
    docker: DockerRunner,
    targets: Sequence[str],
    tags: Sequence[str],
    expected_architecture: str = "amd64",
) -> list[PushedImage]:
    """Build each target, refuse a wrong architecture, create the repository, log in, push."""
    credentials = registry_credentials(ecr)
    logged_in = False
    pushed: list[PushedImage] = []
    for target in targets:
        repository_uri = ensure_repository(ecr, repository_for(settings, target))
        uris = tuple(f"{repository_uri}:{target_tag(tag, target)}" for tag in tags)
        docker.build(
            context=settings.build_context,
            dockerfile=settings.dockerfile,
            target=target,
            tags=uris,
            platform=settings.platform,
            build_args=settings.build_args,
        )
        architecture = docker.architecture(uris[0])
        if architecture != expected_architecture:
            raise ImageError(
                f"image {uris[0]} is built for {architecture}, but SageMaker runs "
                f"{expected_architecture}; build with --platform linux/{expected_architecture}"
            )
        if not logged_in:
            docker.login(credentials.registry, credentials.username, credentials.password)
            logged_in = True
        for uri in uris:
            docker.push(uri)
        check_manifest_media_types(
            ecr, repository_for(settings, target), [target_tag(tag, target) for tag in tags]
        )
        pushed.append(PushedImage(target=target, uris=uris))
    return pushed


def check_manifest_media_types(ecr: ECRClient, repository: str, tags: Sequence[str]) -> None:
    """Refuse pushed tags whose manifest SageMaker would not pull (ECR's stored media type)."""
    try:
        details = ecr.describe_images(
            repositoryName=repository, imageIds=[{"imageTag": tag} for tag in tags]
        )["imageDetails"]
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    for detail in details:
        media_type = detail.get("imageManifestMediaType", "unknown")
        if media_type != SAGEMAKER_MANIFEST_MEDIA_TYPE:
            tagged = ", ".join(detail.get("imageTags", [])) or detail["imageDigest"]
            raise ImageError(
                f"{repository}:{tagged} was pushed as {media_type}, which SageMaker refuses "
                f"(it pulls only {SAGEMAKER_MANIFEST_MEDIA_TYPE}); build with Docker's buildx "
                f"and {' '.join(BUILD_OUTPUT_FLAGS)}, as `python -m deploy push` does, and push "
                "again"
            )
