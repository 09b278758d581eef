"""The ``python -m deploy pipeline`` actions: upsert, start, status, approve, and ``--local``.

Each takes the CLI's context (settings, AWS clients, output) and returns an exit code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from deploy import model_registry, pipeline_run
from deploy.errors import ConfigError, JobFailedError, NotFoundError
from deploy.pipeline import (
    HYPERPARAMETER_PARAMETERS,
    NO_APPROVED_MODEL,
    NO_APPROVED_MODEL_MARKER,
    Images,
    build_pipeline,
    no_approved_model_uri,
)
from deploy.pipeline_gate import APPROVED, PENDING, REJECTED

if TYPE_CHECKING:
    from deploy.commands import Context

__all__ = ["ACTIONS", "Images", "approve", "local", "start", "status", "upsert"]

DEFAULT_LOCAL_ROOT = Path(".pipeline")


def upsert(ctx: Context, images: Images, *, dry_run: bool = False) -> int:
    """Build the definition with the SDK; create or update the pipeline (or print it)."""
    settings = ctx.settings
    sagemaker = ctx.aws.sagemaker
    pipeline = build_pipeline(
        settings, images, boto_session=ctx.aws.session, sagemaker_client=sagemaker
    )
    if dry_run:
        ctx.write(json.dumps(json.loads(pipeline.definition()), indent=2, sort_keys=True))
        return 0
    if model_registry.ensure_group(
        sagemaker,
        settings.model_package_group,
        "news-classifier models, registered by the pipeline",
    ):
        ctx.write(f"created model package group {settings.model_package_group}")
    # The evaluate step's "approved model" input when there is none yet: a prefix that
    # exists (an empty one fails the processing job) and holds no model.
    ctx.aws.s3.put_object(
        Bucket=settings.require_bucket(),
        Key=f"{settings.s3_prefix}/{NO_APPROVED_MODEL}{NO_APPROVED_MODEL_MARKER}",
        Body=b"no approved model yet\n",
    )
    response = pipeline.upsert(
        role_arn=settings.require_role(),
        description="news-classifier: prepare, train, evaluate, gate, register",
    )
    ctx.write(f"pipeline {response['PipelineArn']}")
    return 0


def start(ctx: Context) -> int:
    settings = ctx.settings
    sagemaker = ctx.aws.sagemaker
    parameters: dict[str, str] = {}
    raw_data = getattr(ctx.args, "raw_data", None)
    if raw_data:
        if not raw_data.startswith("s3://"):
            raise ConfigError("--raw-data must be an s3:// URI (upload it with upload-data)")
        parameters["RawData"] = raw_data
    for key, value in getattr(ctx.args, "hp", None) or []:
        if key not in HYPERPARAMETER_PARAMETERS:
            raise ConfigError(
                f"hyperparameter {key!r} is not a pipeline parameter (those are "
                f"{', '.join(sorted(HYPERPARAMETER_PARAMETERS))}); set it in the settings' "
                "hyperparameters and run pipeline upsert"
            )
        parameters[HYPERPARAMETER_PARAMETERS[key]] = value
    if "train_instance_type" in ctx.args:
        parameters["TrainInstanceType"] = settings.train_instance_type
    if "processing_instance_type" in ctx.args:
        parameters["ProcessingInstanceType"] = settings.processing_instance_type
    parameters["AutoApprove"] = "true" if settings.auto_approve else "false"
    # The candidate is compared with the package approved when the execution starts.
    try:
        approved = model_registry.resolve_package(
            sagemaker, settings.model_package_group, model_registry.LATEST_APPROVED
        )
        parameters["ApprovedModelData"] = approved.model_data
        ctx.write(f"approved model {approved.arn}")
    except NotFoundError:
        parameters["ApprovedModelData"] = no_approved_model_uri(settings)
        ctx.write("approved model: none yet")
    arn = pipeline_run.start_execution(sagemaker, settings.pipeline_name, parameters)
    ctx.write(f"execution {arn}")
    if not getattr(ctx.args, "wait", True):
        return 0
    return _report(ctx, pipeline_run.follow_execution(sagemaker, arn, ctx.write))


def status(ctx: Context) -> int:
    sagemaker = ctx.aws.sagemaker
    arn = getattr(ctx.args, "execution_arn", None) or pipeline_run.latest_execution(
        sagemaker, ctx.settings.pipeline_name
    )
    ctx.write(f"execution {arn}")
    if getattr(ctx.args, "wait", False):
        return _report(ctx, pipeline_run.follow_execution(sagemaker, arn, ctx.write))
    current = pipeline_run.describe_execution(sagemaker, arn)
    for step in current.steps:
        ctx.write(pipeline_run.step_line(step))
    ctx.write(f"status {current.status}")
    return 0


def _report(ctx: Context, final: pipeline_run.ExecutionStatus) -> int:
    ctx.write(f"status {final.status}")
    if final.status != "Succeeded":
        raise JobFailedError(
            f"execution {final.arn} {final.status}: {final.failure_reason or 'see its steps'}"
        )
    return 0


def approve(ctx: Context) -> int:
    settings = ctx.settings
    sagemaker = ctx.aws.sagemaker
    arn = getattr(ctx.args, "model_package", None) or model_registry.latest_package_arn(
        sagemaker, settings.model_package_group, PENDING
    )
    new_status = REJECTED if getattr(ctx.args, "reject", False) else APPROVED
    model_registry.set_status(sagemaker, arn, new_status, "set with python -m deploy pipeline")
    ctx.write(f"model package {arn} {new_status}")
    return 0


ACTIONS = {"start": start, "status": status, "approve": approve}


# --- --local ------------------------------------------------------------------------------


def local(ctx: Context, action: str, *, image_tag: str) -> int:
    from deploy.pipeline_local import LocalRun, run_local

    settings = ctx.settings
    root = getattr(ctx.args, "registry_dir", None) or DEFAULT_LOCAL_ROOT / "registry"
    registry = model_registry.LocalRegistry(root, settings.model_package_group)
    if action == "status":
        for package in registry.packages():
            ctx.write(json.dumps(package.to_dict(), sort_keys=True))
        return 0
    if action == "approve":
        return _approve_local(ctx, registry)
    if action not in {"run", "start"}:
        raise ConfigError(
            f"pipeline {action} is not available with --local (use run, status, approve)"
        )
    raw = getattr(ctx.args, "raw_data", None)
    if not raw:
        raise ConfigError("--raw-data: the raw UCI file to run the pipeline on")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work_dir = getattr(ctx.args, "work_dir", None) or DEFAULT_LOCAL_ROOT / "runs" / stamp
    run = LocalRun(
        raw_data=Path(raw),
        work_dir=work_dir,
        registry=registry,
        hyperparameters={
            **settings.hyperparameters,
            **dict(getattr(ctx.args, "hp", None) or []),
        },
        auto_approve=settings.auto_approve,
        # The images that would serve it, as push names them (recorded, not run).
        images={
            "gpu": f"{settings.serve_repository}:{image_tag}",
            "cpu": f"{settings.serve_repository}:{image_tag}-cpu",
        },
        inference_instances={
            "gpu": list(settings.gpu_inference_instances),
            "cpu": list(settings.cpu_inference_instances),
        },
        resamples=getattr(ctx.args, "resamples", 2000),
    )
    ctx.write(f"work dir {work_dir}")
    result = run_local(run, ctx.write)
    assert result.package is not None  # run_local raises when the gate refuses
    ctx.write(f"registered {result.package.path} ({result.package.status})")
    return 0


def _approve_local(ctx: Context, registry: model_registry.LocalRegistry) -> int:
    ref = getattr(ctx.args, "model_package", None)
    if ref is None:
        pending = registry.latest(PENDING)
        if pending is None:
            raise NotFoundError(f"no {PENDING} version in {registry.group_dir}")
        version = pending.version
    elif ref.isdigit():
        version = int(ref)
    else:
        raise ConfigError("--model-package with --local takes a version number")
    new_status = REJECTED if getattr(ctx.args, "reject", False) else APPROVED
    package = registry.set_status(version, new_status)
    ctx.write(f"version {package.version} {package.status}")
    return 0
