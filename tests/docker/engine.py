"""Build and run the project's images for real, with or without a Docker engine.

`make images-test` (docs/containers.md, "Images, built and run") builds every target of
docker/Dockerfile and smoke-tests the images through this module:

- **engine**: `docker` (BuildKit) when a Docker engine answers; otherwise Debian's `buildah`
  (chroot isolation) to build and rootful `podman` (runc) to run, with a containers.conf
  made for this machine (podman_containers_conf). The same Dockerfile either way.
- **bases**: no registry is reachable on the project's machines, so the `python:*-slim` and
  `nvidia/cuda:*` bases are swapped, through the `PYTHON_IMAGE` and `CUDA_IMAGE` build
  arguments, for one local Debian bookworm made with `debootstrap --variant=minbase` (with
  python3, python3-venv, python-is-python3 and ca-certificates). Its root file system is
  cached in IMAGE_CACHE between runs and rebuilt when absent.
- **torch**: a local package index on 127.0.0.1 serves torch and its dependencies (what `pip
  download torch==X` finds: on these machines the CPU wheel on local disk) to the build
  through `TORCH_INDEX_URL` and `TORCH_CPU_INDEX_URL`.
- **proxy settings**: the machine's CA bundle and its pip settings reach the build's `pip
  install` steps as BuildKit secrets (`RUN --mount=type=secret`), never as a layer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
IMAGE_CACHE = Path(os.environ.get("IMAGE_CACHE", "/var/cache/news-classifier"))

TARGETS = ("serve-cpu", "tools", "train", "serve")
IMAGE_PREFIX = "news-classifier"
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
BASE_IMAGE = "localhost/news-classifier-base:bookworm"
# The secret ids docker/Dockerfile mounts in its `pip install` steps.
PIP_CONF_SECRET = "pip.conf"
TORCH_INDEX_PORT = 18741
CA_SECRET = "ca-bundle"


def log(message: str) -> None:
    sys.stderr.write(f"images: {message}\n")
    sys.stderr.flush()


def image_name(target: str) -> str:
    return f"{IMAGE_PREFIX}:{target}"


@dataclass(frozen=True)
class Engine:
    """A container CLI (`docker` or `podman`, which take the same run/inspect/rm flags) and
    the command that builds with it."""

    name: str
    cli: tuple[str, ...]
    build_command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def run(
        self, *arguments: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGUMENTS...` (or podman's), its output captured as text."""
        result = subprocess.run(
            [*self.cli, *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environment(),
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join([*self.cli, *arguments])} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        return result

    def image_exists(self, image: str) -> bool:
        return self.run("image", "inspect", image, check=False).returncode == 0


def docker_engine() -> Engine | None:
    """Docker, if a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        return None
    return Engine(
        name="docker",
        cli=("docker",),
        build_command=("docker", "build", "--network", "host"),
        env={"DOCKER_BUILDKIT": "1"},
    )


def podman_containers_conf() -> str:
    """containers.conf for rootful podman and buildah on machines like the project's CI.

    crun refuses their hybrid cgroup layout: runc with cgroupfs. No journald: events go to a
    file. Rootful podman gives containers more open files and processes than these machines
    let a process have (1048576 and 4194304, against a hard limit of 20000 files, and a
    process limit that runc can only set up to kernel.pid_max): ask for what the host has.
    """
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    processes = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    with contextlib.suppress(OSError, ValueError):
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        processes = pid_max if processes == resource.RLIM_INFINITY else min(processes, pid_max)
    limits = [
        f"nofile={files}:{files}" if files != resource.RLIM_INFINITY else None,
        f"nproc={processes}:{processes}" if processes != resource.RLIM_INFINITY else None,
    ]
    quoted = ", ".join(f'"{limit}"' for limit in limits if limit)
    return (
        "[containers]\n"
        f"default_ulimits = [{quoted}]\n"
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )


def podman_engine() -> Engine | None:
    """buildah + rootful podman, if both are installed and this is root."""
    if shutil.which("buildah") is None or shutil.which("podman") is None or os.geteuid() != 0:
        return None
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    conf = IMAGE_CACHE / "containers.conf"
    conf.write_text(podman_containers_conf())
    env = {"CONTAINERS_CONF": str(conf)}
    return Engine(
        name="podman",
        cli=("podman",),
        # --format docker keeps HEALTHCHECK (the OCI image format has no such field).
        build_command=(
            "buildah",
            "build",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--format",
            "docker",
            "--layers",
        ),
        env=env,
    )


def find_engine() -> Engine | None:
    return docker_engine() or podman_engine()


# -- the local base image ---------------------------------------------------------------------


def base_rootfs_key() -> str:
    recipe = "\n".join([BASE_SUITE, "minbase", BASE_MIRROR, *BASE_PACKAGES])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def base_rootfs_tarball() -> Path:
    """The debootstrapped root file system as a tarball, made once and cached."""
    tarball = IMAGE_CACHE / f"base-{BASE_SUITE}-{base_rootfs_key()}.tar"
    if tarball.is_file():
        log(f"base root file system from the cache: {tarball}")
        return tarball
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (docker/install-build-tools.sh)")
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE) as work:
        rootfs = Path(work) / "rootfs"
        log(f"debootstrap --variant=minbase {BASE_SUITE} (once; cached in {IMAGE_CACHE})")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(rootfs),
                BASE_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=900,
        )
        # What an image needs no copy of: apt's downloaded packages and lists.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = Path(work) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True
        )
        partial.rename(tarball)  # whole or not at all: a killed run leaves no half tarball
    log(f"base root file system made in {time.monotonic() - started:.0f} s")
    return tarball


def ensure_base_image(engine: Engine) -> str:
    """The local Debian base, imported from the cached root file system when missing."""
    if not engine.image_exists(BASE_IMAGE):
        tarball = base_rootfs_tarball()
        engine.run(
            "import",
            "--change",
            'CMD ["/bin/bash"]',
            str(tarball),
            BASE_IMAGE,
            timeout=600,
        )
    return BASE_IMAGE


# -- the local torch index --------------------------------------------------------------------


def torch_pin() -> str:
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line.startswith("torch=="):
            return line.strip()
    raise LookupError("constraints.txt pins no torch")


def _project_folder(wheel: Path) -> str:
    """The PEP 503 normalized project name of a distribution file."""
    name = re.split(r"-\d", wheel.name, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def torch_index_files() -> Path:
    """A PEP 503 index folder of torch and its dependencies, as this machine's pip finds them."""
    folder = IMAGE_CACHE / f"torch-index-{torch_pin().removeprefix('torch==')}"
    if folder.is_dir():
        return folder
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE) as work:
        downloads = Path(work) / "downloads"
        index = Path(work) / "index"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
             "--dest", str(downloads), torch_pin()],
            check=True,
            timeout=900,
        )  # fmt: skip
        for wheel in downloads.iterdir():
            project = index / _project_folder(wheel)
            project.mkdir(parents=True, exist_ok=True)
            wheel.rename(project / wheel.name)
        index.rename(folder)
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def torch_index() -> Iterator[str]:
    """Serve the torch index on 127.0.0.1 while the builds run; yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(torch_index_files()))
    try:  # the URL is a build argument: the same one every run keeps the torch layer cached
        server = http.server.ThreadingHTTPServer(("127.0.0.1", TORCH_INDEX_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# -- the build secrets ------------------------------------------------------------------------


def _pip_settings() -> dict[str, str]:
    """This machine's pip settings (`pip config list`), e.g. ``global.cert``."""
    output = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    settings = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            settings[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    return settings


def build_pip_config(settings: dict[str, str], ca_bundle_path: str) -> str:
    """The pip.conf for `pip install` inside a build: the network settings of this machine's,
    its CA bundle at the path where the build mounts it, and nothing that names a local
    file (`find-links`, `constraint`, `file://` indexes do not exist inside the build)."""
    lines = ["[global]"]
    for key in ("index-url", "extra-index-url", "trusted-host", "proxy", "timeout"):
        value = settings.get(key) or settings.get(f"default-{key}")
        if not value:
            continue
        kept = [part for part in value.split() if not part.startswith(("file:", "/"))]
        if kept:
            lines.append(f"{key} = {' '.join(kept)}")
    if settings.get("cert") or os.environ.get("PIP_CERT"):
        lines.append(f"cert = {ca_bundle_path}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def build_secrets() -> Iterator[list[str]]:
    """`--secret` arguments: this machine's pip settings and its CA bundle, in files that
    exist only for the build."""
    settings = _pip_settings()
    ca_bundle = (
        settings.get("cert")
        or os.environ.get("PIP_CERT")
        or os.environ.get("SSL_CERT_FILE")
        or "/etc/ssl/certs/ca-certificates.crt"
    )
    with tempfile.TemporaryDirectory() as folder:
        pip_conf = Path(folder) / "pip.conf"
        pip_conf.write_text(build_pip_config(settings, f"/run/secrets/{CA_SECRET}"))
        arguments = ["--secret", f"id={PIP_CONF_SECRET},src={pip_conf}"]
        if Path(ca_bundle).is_file():
            arguments += ["--secret", f"id={CA_SECRET},src={ca_bundle}"]
        yield arguments


# -- building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    target: str
    image: str
    seconds: float


def build_arguments(base_image: str, index_url: str) -> list[str]:
    """The build arguments that swap the registry bases and torch indexes for local ones."""
    swaps = {
        "PYTHON_IMAGE": base_image,
        "CUDA_IMAGE": base_image,
        "TORCH_INDEX_URL": index_url,
        "TORCH_CPU_INDEX_URL": index_url,
    }
    return [part for key, value in swaps.items() for part in ("--build-arg", f"{key}={value}")]


def build_target(
    engine: Engine, target: str, arguments: Sequence[str], log_path: Path
) -> BuildResult:
    image = image_name(target)
    command = [
        *engine.build_command,
        "--file",
        str(DOCKERFILE),
        "--target",
        target,
        "--tag",
        image,
        *arguments,
        str(REPO_ROOT),
    ]
    log(f"building {target} ({log_path})")
    started = time.monotonic()
    with log_path.open("w") as output:
        result = subprocess.run(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=engine.environment(),
            timeout=1800,
            check=False,
        )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-6000:]
        raise RuntimeError(f"building {target} failed (exit {result.returncode}):\n{tail}")
    log(f"built {image} in {seconds:.0f} s")
    return BuildResult(target=target, image=image, seconds=seconds)


def build_images(
    engine: Engine, log_dir: Path, targets: Sequence[str] = TARGETS
) -> dict[str, BuildResult]:
    """Build the targets one after the other (they share their first layers)."""
    base = ensure_base_image(engine)
    results = {}
    with torch_index() as index_url, build_secrets() as secrets:
        arguments = [*build_arguments(base, index_url), *secrets]
        for target in targets:
            results[target] = build_target(engine, target, arguments, log_dir / f"{target}.log")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.docker.engine [TARGET...]`: build the images (all by default)."""
    targets = list(argv if argv is not None else sys.argv[1:]) or list(TARGETS)
    engine = find_engine()
    if engine is None:
        log("no Docker engine answers, and buildah + podman (as root) are not there")
        return 1
    log_dir = Path(tempfile.mkdtemp(prefix="image-builds-"))
    for result in build_images(engine, log_dir, targets).values():
        log(f"{result.image}: {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
