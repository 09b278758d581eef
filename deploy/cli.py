"""``python -m deploy <command>``: push, upload-data, train, deploy, invoke, teardown, pipeline.

Flags override ``NEWSCLF_*`` environment variables, which override the config file. Each
command writes its results to stdout and its progress to stderr (logging). Exit codes:
0 done, 1 other failure, 2 bad configuration or usage, 3 not found, 4 AWS error,
5 image error, 6 the training job or endpoint failed.

This module holds the command line: the flags, the settings they override, logging, and the
map from errors to exit codes. What each command does is in deploy/commands.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from deploy import ecr
from deploy.aws import AwsClients
from deploy.commands import COMMANDS, Context
from deploy.errors import AwsError, ConfigError, DeployError
from deploy.settings import DeploySettings

logger = logging.getLogger("deploy")

PIPELINE_ACTIONS = ("upsert", "start", "status", "approve", "definition")


# --- flags --------------------------------------------------------------------------------

# Flags whose destination is a DeploySettings field; every other flag is a command option.
_SETTINGS_FIELDS = frozenset(DeploySettings.model_fields)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _common_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("settings (also NEWSCLF_<NAME> or the config file)")
    group.add_argument("--config", dest="config_file", type=Path, help="TOML or JSON config")
    group.add_argument("--region")
    group.add_argument("--profile")
    group.add_argument("--endpoint-url", help="AWS-compatible endpoint (LocalStack, moto)")
    group.add_argument("--account-id")
    group.add_argument("--role-arn", help="SageMaker execution role ARN")
    group.add_argument("--bucket", help="S3 bucket name")
    group.add_argument("--s3-prefix", help="key prefix in the bucket")
    group.add_argument("--name", help="base name of training jobs")
    group.add_argument("--image-tag", help="image tag; default <version>-<git commit>")
    group.add_argument("--train-repository")
    group.add_argument("--serve-repository")
    group.add_argument("-v", "--verbose", action="store_true", dest="verbose")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, parents=[common], help=help_text, argument_default=argparse.SUPPRESS
        )

    push = command("push", "build the images, check their architecture, push them to ECR")
    push.add_argument(
        "--target", dest="targets", action="append", choices=ecr.TARGETS,
        help="Dockerfile target to push (repeat; default: all)",
    )  # fmt: skip
    push.add_argument("--dockerfile", type=Path)
    push.add_argument("--build-context", type=Path)
    push.add_argument("--platform")
    push.add_argument("--build-arg", dest="build_arg", action="append", type=_key_value)

    upload = command("upload-data", "upload the raw or prepared dataset (or a base model) to S3")
    upload.add_argument("path", type=Path, help="UCI file, prepared split folder or model folder")
    upload.add_argument("--kind", choices=("raw", "prepared", "pretrained"))

    train = command("train", "run a SageMaker training job and stream its logs")
    train.add_argument("--image", help="training image URI (default: the pushed train image)")
    train.add_argument("--instance-type", dest="train_instance_type")
    train.add_argument("--instance-count", dest="train_instance_count", type=int)
    train.add_argument("--volume-gb", dest="train_volume_gb", type=int)
    train.add_argument("--max-runtime", dest="max_runtime_s", type=int, help="seconds")
    train.add_argument("--spot", action=argparse.BooleanOptionalAction, help="managed spot")
    train.add_argument("--max-wait", dest="max_wait_s", type=int, help="seconds (spot)")
    train.add_argument("--hp", dest="hp", action="append", type=_key_value, help="KEY=VALUE")
    train.add_argument("--channel", action="append", type=_key_value, help="NAME=s3://...")
    train.add_argument("--no-wait", dest="wait", action="store_false", help="start and return")

    dep = command("deploy", "create or blue/green-update the endpoint, with autoscaling")
    dep.add_argument("--model-data", help="s3://.../model.tar.gz (default: latest job's)")
    dep.add_argument("--training-job", help="take the artifact of this training job")
    dep.add_argument(
        "--model-package",
        help="deploy a registered model package: latest-approved or a package ARN "
        "(its artifact and its GPU or CPU serving image)",
    )
    dep.add_argument("--image", help="serving image URI (default: the pushed serve image)")
    dep.add_argument("--endpoint-name")
    dep.add_argument("--instance-type")
    dep.add_argument("--initial-instance-count", type=int)
    dep.add_argument("--min-capacity", type=int)
    dep.add_argument("--max-capacity", type=int)
    dep.add_argument("--target-invocations", type=float, help="per instance per minute")
    dep.add_argument("--inference-ami-version")
    dep.add_argument(
        "--startup-health-check-timeout", dest="startup_health_check_timeout_s", type=int
    )
    dep.add_argument(
        "--no-wait", dest="wait", action="store_false", help="do not wait (no autoscaling)"
    )
    _hosting_flags(dep)

    inv = command("invoke", "classify texts through the endpoint or the API")
    inv.add_argument("texts", nargs="*", help="texts to classify (default: lines of stdin)")
    inv.add_argument("--endpoint-name")
    inv.add_argument("--api-url", help="call the API (HTTPS) instead of the endpoint")
    inv.add_argument("--api-key")
    inv.add_argument("--top-k", type=int)
    inv.add_argument(
        "--async", dest="invoke_async", action="store_true",
        help="upload to S3, InvokeEndpointAsync, wait for the output object",
    )  # fmt: skip
    inv.add_argument("--timeout", dest="timeout_s", type=float, help="async: seconds to wait")

    tra = command("transform", "run a Batch Transform job over the files under an S3 prefix")
    tra.add_argument("input_uri", metavar="INPUT", help="s3:// prefix (or file) of the input")
    tra.add_argument("output_uri", metavar="OUTPUT", help="s3:// prefix for <file>.out results")
    tra.add_argument("--model-data", help="s3://.../model.tar.gz (default: latest job's)")
    tra.add_argument("--training-job", help="take the artifact of this training job")
    tra.add_argument("--image", help="serving image URI (default: by instance type)")
    tra.add_argument("--instance-type", help="CPU or GPU instance (picks the image)")
    tra.add_argument("--instance-count", type=int, dest="transform_instance_count")
    tra.add_argument("--input-format", choices=("jsonl", "csv"), help="default: jsonl")
    tra.add_argument("--output-format", choices=("jsonl", "csv"), help="default: jsonl")
    tra.add_argument("--max-payload-mb", type=int, help="MaxPayloadInMB (default 6, max 100)")
    tra.add_argument("--batch-strategy", choices=("MultiRecord", "SingleRecord"))
    tra.add_argument("--max-concurrent-transforms", type=int, help="requests per instance")
    tra.add_argument("--env", action="append", type=_key_value, help="KEY=VALUE for the server")
    tra.add_argument("--no-wait", dest="wait", action="store_false", help="start and return")

    down = command("teardown", "delete the endpoint, its configs, models, scaling and the stack")
    down.add_argument("--endpoint-name")
    down.add_argument("--stack-name")
    down.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    down.add_argument("-y", "--yes", action="store_true", help="delete without asking first")

    pipe = command("pipeline", "the MLOps pipeline: prepare, train, evaluate, gate, register")
    pipe.add_argument(
        "action",
        nargs="?",
        default=None,
        choices=PIPELINE_ACTIONS,
        help="upsert the definition, start an execution, show its status, approve a package, "
        "or print the definition JSON (default with --local: run)",
    )
    pipe.add_argument(
        "--local", action="store_true", help="run the steps as local processes, no AWS"
    )
    pipe.add_argument("--raw-data", help="the raw UCI file (s3:// URI; a path with --local)")
    pipe.add_argument("--hp", dest="hp", action="append", type=_key_value, help="KEY=VALUE")
    pipe.add_argument(
        "--auto-approve", dest="auto_approve", action=argparse.BooleanOptionalAction,
        help="register a candidate that beats the baseline and the approved model as Approved",
    )  # fmt: skip
    pipe.add_argument("--pipeline-name")
    pipe.add_argument("--model-package-group")
    pipe.add_argument("--processing-instance-type")
    pipe.add_argument("--train-instance-type", dest="train_instance_type")
    pipe.add_argument("--execution-arn", help="status: this execution (default: the newest)")
    pipe.add_argument(
        "--model-package", help="approve: package ARN (--local: version); default: newest pending"
    )
    pipe.add_argument("--reject", action="store_true", help="approve: set Rejected instead")
    pipe.add_argument("--no-wait", dest="wait", action="store_false", help="start and return")
    pipe.add_argument("--wait", dest="wait", action="store_true", help="status: follow it")
    pipe.add_argument(
        "--work-dir", type=Path, help="--local: folder for the run (default .pipeline/runs/<time>)"
    )
    pipe.add_argument(
        "--registry-dir",
        type=Path,
        help="--local: the registry folder (default .pipeline/registry)",
    )
    pipe.add_argument("--resamples", type=int, help="--local: bootstrap resamples (default 2000)")
    return parser


def _hosting_flags(dep: argparse.ArgumentParser) -> None:
    """Serverless, async, the guarded rollout and data capture (docs/aws.md)."""
    mode = dep.add_argument_group("hosting mode (default: real-time instances)")
    exclusive = mode.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--serverless", dest="hosting", action="store_const", const="serverless",
        help="Serverless Inference on the CPU image",
    )  # fmt: skip
    exclusive.add_argument(
        "--async", dest="hosting", action="store_const", const="async",
        help="Asynchronous Inference, scaled down to zero when idle",
    )  # fmt: skip
    mode.add_argument(
        "--memory-mb", dest="serverless_memory_mb", type=int,
        help="serverless: 1024, 2048, 3072 (default), 4096, 5120 or 6144",
    )  # fmt: skip
    mode.add_argument(
        "--max-concurrency", dest="serverless_max_concurrency", type=int,
        help="serverless: requests at once, 1-200 (default 5)",
    )  # fmt: skip
    mode.add_argument("--output", dest="async_output", help="async: s3:// output prefix")
    mode.add_argument(
        "--failure-output", dest="async_failure_output", help="async: s3:// prefix of errors"
    )
    mode.add_argument("--success-topic", dest="async_success_topic", help="async: SNS ARN")
    mode.add_argument("--error-topic", dest="async_error_topic", help="async: SNS ARN")
    mode.add_argument(
        "--max-concurrent-invocations", dest="async_max_concurrent_invocations", type=int,
        help="async: requests in flight per instance",
    )  # fmt: skip
    mode.add_argument(
        "--target-backlog", dest="async_target_backlog", type=float,
        help="async: queued requests per instance to scale on",
    )  # fmt: skip
    guard = dep.add_argument_group("rollout of an update (deployment guardrails)")
    guard.add_argument("--rollout", choices=("all-at-once", "canary", "linear"))
    guard.add_argument("--canary-percent", type=int, help="share of capacity first (canary)")
    guard.add_argument("--linear-step-percent", type=int, help="share per step (linear)")
    guard.add_argument("--bake-seconds", dest="bake_s", type=int, help="alarm watch per step")
    guard.add_argument(
        "--rollback-alarm", dest="rollback_alarms", action="append",
        help="CloudWatch alarm that rolls back (repeat; default: create 5XX and latency ones)",
    )  # fmt: skip
    guard.add_argument("--max-5xx", dest="rollback_max_5xx", type=int, help="per minute")
    guard.add_argument("--max-latency-ms", dest="rollback_max_latency_ms", type=int, help="p99")
    capture = dep.add_argument_group("data capture")
    capture.add_argument("--capture-percent", type=int, help="share of requests to capture")
    capture.add_argument("--capture-destination", help="s3:// prefix (default: <prefix>/capture)")


def _settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {k: v for k, v in vars(args).items() if k in _SETTINGS_FIELDS}
    if "build_arg" in args:
        overrides["build_args"] = dict(args.build_arg)
    return overrides


def main(
    argv: list[str] | None = None,
    *,
    aws: Callable[[DeploySettings], AwsClients] = AwsClients.from_settings,
    docker: ecr.DockerRunner | None = None,
    stdout: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run one command; tests pass their own AWS client factory, docker runner and streams."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already reported
        return exit_.code if isinstance(exit_.code, int) else 2
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Never DEBUG, even with -v: botocore's DEBUG logs every request's headers (the session
    # token) and every response body (ECR's authorization token is a registry password).
    for library in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(library).setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        settings = DeploySettings(**_settings_overrides(args))
        ctx = Context(
            settings=settings,
            args=args,
            aws_factory=aws,
            docker=docker or ecr.SubprocessDocker(),
            stdout=stdout or sys.stdout,
            stdin=stdin or sys.stdin,
        )
        return COMMANDS[args.command](ctx)
    except ValidationError as error:
        return _fail(ConfigError(f"invalid settings: {_validation_summary(error)}"))
    except ClientError as error:
        return _fail(AwsError.from_client_error(error))
    except BotoCoreError as error:  # no credentials, no region, endpoint unreachable, ...
        return _fail(AwsError("AWS request", type(error).__name__, str(error)))
    except DeployError as error:
        return _fail(error)


def _fail(error: DeployError) -> int:
    logger.error("%s", error)
    return error.exit_code


def _validation_summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
        for item in error.errors()
    )
