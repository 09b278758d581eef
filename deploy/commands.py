"""What each ``python -m deploy`` command does, given the context the command line built.

deploy/cli.py parses the command line, builds the :class:`Context` and maps errors to exit
codes; the ``pipeline`` command's actions are in deploy/pipeline_commands.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TextIO

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
from deploy.errors import ConfigError, DeployError, ImageError
from deploy.settings import DeploySettings

DIST_NAME = "news-classifier"


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
        raise DeployError("teardown cancelled; pass --yes to delete without a prompt")
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
