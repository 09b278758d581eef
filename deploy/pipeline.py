"""The SageMaker Pipeline: prepare -> train -> evaluate -> gate -> register, built with the
SageMaker Python SDK 3.x (``sagemaker-mlops`` for the pipeline and its steps,
``sagemaker-train`` for the training step's ``ModelTrainer``, ``sagemaker-core`` for the
processor, parameters, conditions and the model-package request).

This module declares the pipeline's parameters and assembles the steps that
deploy/pipeline_steps.py builds. Every step runs the project's own images: the training image
for prepare, train and evaluate, and the registered model package names both serving images:
the GPU image in its ``InferenceSpecification`` and the CPU image in an
``AdditionalInferenceSpecifications`` entry named ``cpu``.

The SDK is imported only while :func:`build_pipeline` runs, so ``python -m deploy`` starts fast
and the other commands work without it. The SDK creates boto3 sessions of its own, at import
time (``sagemaker.mlops``) and in ``ProcessingStep`` (a local-mode client), which take their
region from the environment only: :func:`build_pipeline` sets ``AWS_DEFAULT_REGION`` to the
settings' region while it runs, and puts it back after.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deploy.pipeline_steps import evaluate_step, gate_steps, prepare_step, train_step
from deploy.settings import DeploySettings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_sagemaker import SageMakerClient

EVALUATION_PROPERTY_FILE = "Evaluation"
# Hyperparameters exposed as pipeline parameters (name in the job -> pipeline parameter).
HYPERPARAMETER_PARAMETERS = {
    "model_name_or_path": "BaseModel",
    "epochs": "Epochs",
    "learning_rate": "LearningRate",
    "batch_size": "BatchSize",
    "max_length": "MaxLength",
    "max_train_rows": "MaxTrainRows",
}
# ApprovedModelData's default: a prefix holding only a marker object, read as "none yet".
NO_APPROVED_MODEL = "pipeline/no-approved-model/"
NO_APPROVED_MODEL_MARKER = "NONE"


@dataclass(frozen=True)
class Images:
    """The image URIs the pipeline runs and registers."""

    train: str
    serve_gpu: str
    serve_cpu: str


def hyperparameter_defaults(settings: DeploySettings) -> dict[str, str]:
    """Each parameterised hyperparameter's default: the settings', else the job's own."""
    from training.hyperparameters import Hyperparameters

    fields = Hyperparameters.model_fields
    defaults: dict[str, str] = {}
    for key in HYPERPARAMETER_PARAMETERS:
        value = settings.hyperparameters.get(key, fields[key].default)
        defaults[key] = "null" if value is None else str(value)
    return defaults


def no_approved_model_uri(settings: DeploySettings) -> str:
    return settings.s3_uri(NO_APPROVED_MODEL)


def build_pipeline(
    settings: DeploySettings,
    images: Images,
    *,
    boto_session: boto3.Session,
    sagemaker_client: SageMakerClient | None = None,
) -> Any:
    """The ``sagemaker.mlops.workflow.Pipeline`` (``.definition()`` is its JSON)."""
    with _environment_region(boto_session.region_name):
        return _build(settings, images, boto_session, sagemaker_client)


@contextmanager
def _environment_region(region: str | None) -> Iterator[None]:
    previous = os.environ.get("AWS_DEFAULT_REGION")
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def _build(
    settings: DeploySettings,
    images: Images,
    boto_session: boto3.Session,
    sagemaker_client: SageMakerClient | None,
) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterBoolean, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import Pipeline

    # No sagemaker_config argument: the SDK then reads the user's defaults files once; given
    # a dict, it validates it against its JSON schema at every lookup (minutes per build).
    session = PipelineSession(
        boto_session=boto_session,
        sagemaker_client=sagemaker_client,
        default_bucket=settings.require_bucket(),
    )
    role = settings.require_role()
    defaults = hyperparameter_defaults(settings)
    hp_params = {
        key: ParameterString(name, default_value=defaults[key])
        for key, name in HYPERPARAMETER_PARAMETERS.items()
    }
    raw_data = ParameterString("RawData", default_value=settings.s3_uri("data", "raw", ""))
    approved_model = ParameterString(
        "ApprovedModelData", default_value=no_approved_model_uri(settings)
    )
    auto_approve = ParameterBoolean("AutoApprove", default_value=settings.auto_approve)
    train_instance = ParameterString(
        "TrainInstanceType", default_value=settings.train_instance_type
    )
    processing_instance = ParameterString(
        "ProcessingInstanceType", default_value=settings.processing_instance_type
    )
    run_prefix = Join(
        on="/",
        values=[
            f"s3://{settings.require_bucket()}",
            settings.s3_prefix,
            "pipeline",
            ExecutionVariables.PIPELINE_EXECUTION_ID,
        ],
    )

    with warnings.catch_warnings():
        # Expected: under a PipelineSession, run()/train() only record their requests.
        warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        prepare = prepare_step(
            session, settings, images, role, raw_data, processing_instance, hp_params, run_prefix
        )
        prepared = Join(
            on="/",
            values=[
                prepare.properties.ProcessingOutputConfig.Outputs["prepared"].S3Output.S3Uri,
                "prepared",
            ],
        )
        train = train_step(session, settings, images, role, train_instance, hp_params, prepared)
        evaluation_file = PropertyFile(
            name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path="evaluation.json"
        )
        evaluate = evaluate_step(
            session,
            settings,
            images,
            role,
            processing_instance,
            prepared,
            train.properties.ModelArtifacts.S3ModelArtifacts,
            approved_model,
            run_prefix,
            evaluation_file,
        )
        gate = gate_steps(session, settings, images, train, evaluate, evaluation_file, auto_approve)
    return Pipeline(
        name=settings.pipeline_name,
        parameters=[
            raw_data,
            *hp_params.values(),
            train_instance,
            processing_instance,
            approved_model,
            auto_approve,
        ],
        steps=[prepare, train, evaluate, gate],
        sagemaker_session=session,
    )
