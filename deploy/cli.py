"""``python -m deploy <command>``: push, upload-data, train, deploy, invoke, teardown, pipeline.

Flags override ``NEWSCLF_*`` environment variables, which override the config file. Each
command writes its results to stdout and its progress to stderr (logging). Exit codes:
0 done, 1 other failure, 2 bad configuration or usage, 3 not found, 4 AWS error,
5 image error, 6 the training job or endpoint failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from deploy import (
    async_inference,
    capture,
    ecr,
    endpoint,
    invoke,
    model_registry,
    storage,
    teardown,
    training_job,
    transform,
)
from deploy.aws import AwsClients
from deploy.errors import AwsError, ConfigError, DeployError, ImageError
from deploy.settings import DeploySettings

logger = logging.getLogger("deploy")

DIST_NAME = "news-classifier"
PIPELINE_ACTIONS = ("upsert", "start", "status", "approve", "definition")


@dataclass
class Context:
    """What a command runs with: settings, AWS clients, the docker runner, the streams."""

    settings: DeploySettings
    args: argparse.Namespace
    aws_factory: Callable[[DeploySettings], AwsClients]
    docker: ecr.DockerRunner
    stdout: TextIO
    stdin: TextIO
    _aws: AwsClients | None = None

    @property
    def aws(self) -> AwsClients:
        if self._aws is None:
            self._aws = self.aws_factory(self.settings)
        return self._aws

    def write(self, line: str) -> None:
        self.stdout.write(line + "\n")
        self.stdout.flush()


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


# --- commands -----------------------------------------------------------------------------


def _version() -> str:
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _image_tag(ctx: Context) -> str:
    if ctx.settings.image_tag:
        return ctx.settings.image_tag
    return ecr.default_image_tag(_version(), ecr.git_commit(ctx.settings.build_context))


def _image_uri(ctx: Context, target: str) -> str:
    account = ctx.aws.account_id(ctx.settings)
    return ecr.image_uri(ctx.settings, account, ctx.aws.region, target, _image_tag(ctx))


def cmd_push(ctx: Context) -> int:
    tag = _image_tag(ctx)
    tags = [tag] if tag == _version() else [tag, _version()]
    pushed = ecr.push_images(
        settings=ctx.settings,
        ecr=ctx.aws.ecr,
        docker=ctx.docker,
        targets=getattr(ctx.args, "targets", None) or ecr.TARGETS,
        tags=tags,
    )
    for image in pushed:
        for uri in image.uris:
            ctx.write(f"pushed {image.target} {uri}")
    return 0


def cmd_upload_data(ctx: Context) -> int:
    uploaded = storage.upload_dataset(
        ctx.aws.s3, ctx.settings, ctx.args.path, getattr(ctx.args, "kind", None)
    )
    ctx.write(f"uploaded {uploaded.objects} file(s), {uploaded.size_bytes} bytes")
    for channel, uri in sorted(uploaded.channels.items()):
        ctx.write(f"channel {channel} {uri}")
    return 0


def cmd_train(ctx: Context) -> int:
    settings = ctx.settings
    settings.require_role()
    channels = dict(getattr(ctx.args, "channel", None) or [])
    if "train" not in channels:
        channels = {**storage.discover_channels(ctx.aws.s3, settings), **channels}
    hyperparameters = {**settings.hyperparameters, **dict(getattr(ctx.args, "hp", None) or [])}
    training_job.check_hyperparameters(hyperparameters)
    image = getattr(ctx.args, "image", None) or _image_uri(ctx, "train")
    name = training_job.job_name(settings)
    request = training_job.build_request(
        settings, name=name, image_uri=image, channels=channels, hyperparameters=hyperparameters
    )
    training_job.start_training_job(ctx.aws.sagemaker, request)
    ctx.write(f"training job {name}")
    if not getattr(ctx.args, "wait", True):
        return 0
    result = training_job.wait_for_training_job(
        ctx.aws.sagemaker, ctx.aws.logs, name, write=ctx.write
    )
    _write_result(ctx, result)
    return 0


def _write_result(ctx: Context, result: training_job.TrainingResult) -> None:
    ctx.write(f"status {result.status}")
    ctx.write(f"model artifact {result.model_artifact}")
    for metric, value in sorted(result.metrics.items()):
        ctx.write(f"metric {metric} {value:g}")
    if result.billable_seconds is not None:
        ctx.write(f"billable seconds {result.billable_seconds}")


def cmd_deploy(ctx: Context) -> int:
    settings = ctx.settings
    settings.require_role()
    package_image = None
    package_ref = getattr(ctx.args, "model_package", None)
    if package_ref:
        package = model_registry.resolve_package(
            ctx.aws.sagemaker, settings.model_package_group, package_ref
        )
        model_data = package.model_data
        package_image = package.image_for(gpu=settings.gpu_endpoint)
        ctx.write(f"model package {package.arn} ({package.status})")
    else:
        model_data = _model_data(ctx)
    target = "serve" if settings.gpu_endpoint else "serve-cpu"
    image = getattr(ctx.args, "image", None) or package_image or _image_uri(ctx, target)
    result = endpoint.deploy_endpoint(
        ctx.aws.sagemaker,
        ctx.aws.autoscaling,
        settings,
        image_uri=image,
        model_data=model_data,
        cloudwatch=ctx.aws.cloudwatch,
        wait=getattr(ctx.args, "wait", True),
    )
    ctx.write(f"endpoint {result.endpoint_name} {result.action} ({result.status})")
    ctx.write(f"endpoint config {result.endpoint_config_name}")
    if result.previous_config_name:
        ctx.write(f"previous config {result.previous_config_name}")
    if result.rollout:
        ctx.write(f"rollout {result.rollout}")
    if settings.hosting == "serverless":
        ctx.write(
            f"serverless {settings.serverless_memory_mb} MB, "
            f"max concurrency {settings.serverless_max_concurrency}"
        )
    if settings.hosting == "async":
        ctx.write(f"async output {async_inference.output_prefix(settings)}")
    if settings.capture_percent is not None:
        ctx.write(
            f"data capture {settings.capture_percent}% to {capture.capture_destination(settings)}"
        )
    if result.autoscaling and settings.hosting == "async":
        ctx.write(
            f"autoscaling 0..{settings.max_capacity} instances, "
            f"target backlog {settings.async_target_backlog:g} requests/instance"
        )
    elif result.autoscaling:
        ctx.write(
            f"autoscaling {settings.min_capacity}..{settings.max_capacity} instances, "
            f"target {settings.target_invocations:g} invocations/instance/minute"
        )
    return 0


def _model_data(ctx: Context) -> str:
    """``--model-data``, else the artifact of ``--training-job`` or of the latest job."""
    model_data: str | None = getattr(ctx.args, "model_data", None)
    if model_data:
        return model_data
    job = getattr(ctx.args, "training_job", None) or training_job.latest_training_job(
        ctx.aws.sagemaker, ctx.settings
    )
    model_data = training_job.describe_result(ctx.aws.sagemaker, job).model_artifact
    ctx.write(f"model artifact {model_data} (training job {job})")
    return model_data


def cmd_transform(ctx: Context) -> int:
    settings, args = ctx.settings, ctx.args
    settings.require_role()
    options = transform.TransformOptions(
        input_uri=args.input_uri,
        output_uri=args.output_uri,
        input_format=getattr(args, "input_format", "jsonl"),
        output_format=getattr(args, "output_format", "jsonl"),
        instance_count=getattr(args, "transform_instance_count", 1),
        max_payload_mb=getattr(args, "max_payload_mb", 6),
        batch_strategy=getattr(args, "batch_strategy", "MultiRecord"),
        max_concurrent_transforms=getattr(args, "max_concurrent_transforms", 1),
        environment=dict(getattr(args, "env", None) or []),
    )
    options.check()  # before the artifact lookup and any create call
    model_data = _model_data(ctx)
    image = getattr(args, "image", None) or _image_uri(
        ctx, transform.image_target(settings.instance_type)
    )
    name = transform.start_transform(
        ctx.aws.sagemaker, settings, options, image_uri=image, model_data=model_data
    )
    ctx.write(f"transform job {name} ({settings.instance_type} x {options.instance_count})")
    if not getattr(args, "wait", True):
        ctx.write(f"output {options.output_uri}")
        return 0
    result = transform.wait_for_transform(ctx.aws.sagemaker, name, write=ctx.write)
    ctx.write(f"output {result.output_uri} (<input file name>.out per input file)")
    if result.seconds is not None:
        ctx.write(f"transform seconds {result.seconds:g}")
    return 0


def cmd_invoke(ctx: Context) -> int:
    settings = ctx.settings
    texts: Sequence[str] = getattr(ctx.args, "texts", None) or [
        line.strip() for line in ctx.stdin if line.strip()
    ]
    top_k = getattr(ctx.args, "top_k", 1)
    if getattr(ctx.args, "invoke_async", False):
        body = json.dumps({"inputs": list(texts), "parameters": {"top_k": top_k}}).encode()
        answer = async_inference.invoke_async(
            ctx.aws.runtime,
            ctx.aws.s3,
            settings,
            body,
            timeout_s=getattr(ctx.args, "timeout_s", 3600.0),
        )
        ctx.write(f"async output {answer.location}")
        predictions = json.loads(answer.body)
    elif settings.api_url:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        predictions = invoke.invoke_api(settings.api_url, texts, api_key=key, top_k=top_k)
    else:
        predictions = invoke.invoke_endpoint(
            ctx.aws.runtime, settings.endpoint_name, texts, top_k=top_k
        )
    for text, prediction in zip(texts, predictions, strict=True):
        ctx.write(json.dumps({"text": text, "prediction": prediction}))
    return 0


def cmd_teardown(ctx: Context) -> int:
    plan = teardown.plan_teardown(ctx.aws, ctx.settings)
    for line in plan.kept:
        ctx.write(f"keeping {line}")
    if plan.empty:
        ctx.write("nothing to delete")
        return 0
    dry_run, asked = getattr(ctx.args, "dry_run", False), not getattr(ctx.args, "yes", False)
    verb = "would delete" if dry_run else "to delete" if asked else "deleting"
    for line in plan.lines():
        ctx.write(f"{verb} {line}")
    if dry_run:
        return 0
    if asked and not teardown.confirm(plan, ctx.stdin, sys.stderr):
        ctx.write("nothing deleted")
        return _fail(DeployError("teardown cancelled; pass --yes to delete without a prompt"))
    teardown.execute_teardown(ctx.aws, ctx.settings, plan)
    ctx.write("deleted")
    return 0


def cmd_pipeline(ctx: Context) -> int:
    from deploy import pipeline_commands

    action = getattr(ctx.args, "action", None)
    if getattr(ctx.args, "local", False):
        try:
            tag = _image_tag(ctx)
        except ImageError:  # outside a git checkout: the tag is only recorded, so go on
            tag = _version()
        return pipeline_commands.local(ctx, action or "run", image_tag=tag)
    if action is None:
        raise ConfigError("name an action (upsert, start, status, approve, definition) or --local")
    if action in {"upsert", "definition"}:
        images = pipeline_commands.Images(
            train=_image_uri(ctx, "train"),
            serve_gpu=_image_uri(ctx, "serve"),
            serve_cpu=_image_uri(ctx, "serve-cpu"),
        )
        return pipeline_commands.upsert(ctx, images, dry_run=action == "definition")
    return pipeline_commands.ACTIONS[action](ctx)


COMMANDS: dict[str, Callable[[Context], int]] = {
    "push": cmd_push,
    "upload-data": cmd_upload_data,
    "train": cmd_train,
    "deploy": cmd_deploy,
    "invoke": cmd_invoke,
    "transform": cmd_transform,
    "teardown": cmd_teardown,
    "pipeline": cmd_pipeline,
}


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
