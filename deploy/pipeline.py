"""The SageMaker Pipeline: prepare -> train -> evaluate -> gate -> register, built with the
SageMaker Python SDK 3.x (``sagemaker-mlops`` for the pipeline and its steps,
``sagemaker-train`` for the training step's ``ModelTrainer``, ``sagemaker-core`` for the
processor, parameters, conditions and the model-package request).

Every step runs the project's own images: prepare and evaluate run the training image as
SageMaker Processing jobs (``python -m training.prepare`` and
``python -m training.evaluate_candidate``), train runs it as a training job (managed spot,
checkpoints), and the registered model package names both serving images: the GPU image in
its ``InferenceSpecification`` and the CPU image in an ``AdditionalInferenceSpecifications``
entry named ``cpu``.

The SDK is imported inside :func:`build_pipeline` only, so ``python -m deploy`` starts fast
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

from deploy import pipeline_gate
from deploy.settings import DeploySettings
from deploy.training_job import CHECKPOINT_LOCAL_PATH

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_sagemaker import SageMakerClient

# Step names: the CLI's status lines and the tests refer to them.
PREPARE = "Prepare"
TRAIN = "Train"
EVALUATE = "Evaluate"
GATE_BASELINE = "CheckNotWorseThanBaseline"
GATE_APPROVAL = "CheckAutoApproval"
REGISTER_APPROVED = "RegisterApproved"
REGISTER_PENDING = "RegisterPendingApproval"
FAIL = "WorseThanBaseline"

PROCESSING = "/opt/ml/processing"
EVALUATION_PROPERTY_FILE = "Evaluation"
CONTENT_TYPES = ["application/json", "application/jsonlines", "text/csv"]
# Hyperparameters exposed as pipeline parameters (name in the job -> pipeline parameter).
HYPERPARAMETER_PARAMETERS = {
    "model_name_or_path": "BaseModel",
    "epochs": "Epochs",
    "learning_rate": "LearningRate",
    "batch_size": "BatchSize",
    "max_length": "MaxLength",
    "max_train_rows": "MaxTrainRows",
}
# The pipeline's own steps do these, so the training job skips them.
FIXED_HYPERPARAMETERS = {"eda": "false", "run_baseline": "false"}
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
        prepare = _prepare_step(
            session, settings, images, role, raw_data, processing_instance, hp_params, run_prefix
        )
        prepared = Join(
            on="/",
            values=[
                prepare.properties.ProcessingOutputConfig.Outputs["prepared"].S3Output.S3Uri,
                "prepared",
            ],
        )
        train = _train_step(session, settings, images, role, train_instance, hp_params, prepared)
        evaluation_file = PropertyFile(
            name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path="evaluation.json"
        )
        evaluate = _evaluate_step(
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
        gate = _gate_steps(
            session, settings, images, train, evaluate, evaluation_file, auto_approve
        )
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


def _processor(
    session: Any, image: str, role: str, instance: Any, module: str, settings: DeploySettings
) -> Any:
    from sagemaker.core.processing import Processor

    return Processor(
        role=role,
        image_uri=image,
        instance_count=1,
        instance_type=instance,
        entrypoint=["python", "-m", module],
        volume_size_in_gb=settings.train_volume_gb,
        max_runtime_in_seconds=settings.max_runtime_s,
        base_job_name=settings.name,
        sagemaker_session=session,
        env={"PYTHONUNBUFFERED": "1"},
    )


def _s3_input(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"
        ),
    )


def _s3_output(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob"),
    )


def _prepare_step(
    session: Any,
    settings: DeploySettings,
    images: Images,
    role: str,
    raw_data: Any,
    instance: Any,
    hp_params: dict[str, Any],
    run_prefix: Any,
) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ProcessingStep

    processor = _processor(session, images.train, role, instance, "training.prepare", settings)
    step_args = processor.run(
        inputs=[_s3_input("raw", raw_data, f"{PROCESSING}/input/raw")],
        # The step's output folder is the parent: prepare builds `prepared/` beside it and
        # renames it into place, which it cannot do to the mounted folder itself.
        outputs=[
            _s3_output(
                "prepared", Join(on="/", values=[run_prefix, "prepare"]), f"{PROCESSING}/output"
            )
        ],
        arguments=[
            "--input",
            f"{PROCESSING}/input/raw",
            "--output",
            f"{PROCESSING}/output/prepared",
            # The base model's own tokenizer for the report's token lengths (Hub id or path).
            "--tokenizer",
            hp_params["model_name_or_path"],
            "--max-length",
            hp_params["max_length"],
            "--seed",
            settings.hyperparameters.get("seed", "42"),
        ],
    )
    return ProcessingStep(name=PREPARE, step_args=step_args)


def _train_step(
    session: Any,
    settings: DeploySettings,
    images: Images,
    role: str,
    instance: Any,
    hp_params: dict[str, Any],
    prepared: Any,
) -> Any:
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    from deploy.training_job import METRIC_DEFINITIONS

    hyperparameters: dict[str, Any] = {
        **settings.hyperparameters,
        **FIXED_HYPERPARAMETERS,
        **hp_params,
    }
    trainer = ModelTrainer(
        training_image=images.train,
        role=role,
        sagemaker_session=session,
        base_job_name=settings.name,
        compute=Compute(
            instance_type=instance,
            instance_count=settings.train_instance_count,
            volume_size_in_gb=settings.train_volume_gb,
            enable_managed_spot_training=settings.spot,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=settings.max_runtime_s,
            max_wait_time_in_seconds=settings.max_wait_s if settings.spot else None,
        ),
        # Per execution: a spot interruption restarts the same job, which resumes from here.
        checkpoint_config=CheckpointConfig(
            s3_uri=Join(
                on="/",
                values=[
                    settings.s3_uri("checkpoints", "pipeline"),
                    ExecutionVariables.PIPELINE_EXECUTION_ID,
                ],
            ),
            local_path=CHECKPOINT_LOCAL_PATH,
        ),
        output_data_config=OutputDataConfig(s3_output_path=settings.s3_uri("models", "pipeline")),
        hyperparameters=hyperparameters,
    ).with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in METRIC_DEFINITIONS]
    )
    channels = [
        InputData(channel_name=name, data_source=Join(on="/", values=[prepared, name]))
        for name in ("train", "validation", "test")
    ]
    return TrainingStep(name=TRAIN, step_args=trainer.train(input_data_config=channels))


def _evaluate_step(
    session: Any,
    settings: DeploySettings,
    images: Images,
    role: str,
    instance: Any,
    prepared: Any,
    candidate: Any,
    approved: Any,
    run_prefix: Any,
    evaluation_file: Any,
) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ProcessingStep

    processor = _processor(
        session, images.train, role, instance, "training.evaluate_candidate", settings
    )
    step_args = processor.run(
        inputs=[
            _s3_input("prepared", prepared, f"{PROCESSING}/input/prepared"),
            _s3_input("candidate", candidate, f"{PROCESSING}/input/candidate"),
            _s3_input("approved", approved, f"{PROCESSING}/input/approved"),
        ],
        outputs=[
            _s3_output(
                "evaluation",
                Join(on="/", values=[run_prefix, "evaluation"]),
                f"{PROCESSING}/output/evaluation",
            )
        ],
        arguments=[
            "--prepared",
            f"{PROCESSING}/input/prepared",
            "--candidate",
            f"{PROCESSING}/input/candidate",
            "--approved",
            f"{PROCESSING}/input/approved",
            "--output",
            f"{PROCESSING}/output/evaluation",
        ],
    )
    return ProcessingStep(name=EVALUATE, step_args=step_args, property_files=[evaluation_file])


def _gate_steps(
    session: Any,
    settings: DeploySettings,
    images: Images,
    train: Any,
    evaluate: Any,
    evaluation_file: Any,
    auto_approve: Any,
) -> Any:
    from sagemaker.core.workflow.conditions import (
        ConditionEquals,
        ConditionGreaterThan,
        ConditionGreaterThanOrEqualTo,
    )
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    def report_value(path: str) -> Any:
        return JsonGet(step_name=evaluate.name, property_file=evaluation_file, json_path=path)

    report_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
            "evaluation.json",
        ],
    )
    register = {
        status: _register_step(session, settings, images, train, report_uri, report_value, status)
        for status in (pipeline_gate.APPROVED, pipeline_gate.PENDING)
    }
    approval = ConditionStep(
        name=GATE_APPROVAL,
        conditions=[
            ConditionGreaterThan(left=report_value(pipeline_gate.INTERVAL_LOW), right=0),
            ConditionEquals(left=auto_approve, right=True),
        ],
        if_steps=[register[pipeline_gate.APPROVED]],
        else_steps=[register[pipeline_gate.PENDING]],
    )
    fail = FailStep(
        name=FAIL,
        error_message=Join(
            on=" ",
            values=["the candidate is worse than the TF-IDF baseline; see", report_uri],
        ),
    )
    return ConditionStep(
        name=GATE_BASELINE,
        conditions=[
            ConditionGreaterThanOrEqualTo(
                left=report_value(pipeline_gate.BASELINE_DIFFERENCE), right=0
            )
        ],
        if_steps=[approval],
        else_steps=[fail],
    )


def _register_step(
    session: Any,
    settings: DeploySettings,
    images: Images,
    train: Any,
    report_uri: Any,
    report_value: Any,
    status: str,
) -> Any:
    from sagemaker.core.model_registry import create_model_package_from_containers
    from sagemaker.mlops.workflow import ModelStep

    model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    # A ModelStep takes the request create_model_package_from_containers records in the
    # pipeline session's context; the context names a model whose session it is.
    session.init_model_step_arguments(_SessionHolder(session))
    step_args = create_model_package_from_containers(
        session,
        containers=[{"Image": images.serve_gpu, "ModelDataUrl": model_data}],
        content_types=CONTENT_TYPES,
        response_types=CONTENT_TYPES,
        inference_instances=list(settings.gpu_inference_instances),
        model_package_group_name=settings.model_package_group,
        model_metrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": report_uri}}
        },
        approval_status=status,
        customer_metadata_properties={
            "data_sha256": report_value(pipeline_gate.DATA_SHA256),
            "cpu_image": images.serve_cpu,
        },
        domain="NATURAL_LANGUAGE_PROCESSING",
        task="CLASSIFICATION",
    )
    # The SDK's request builder has no AdditionalInferenceSpecifications: the CPU image and
    # its instance types go in as CreateModelPackage's own field.
    step_args.create_model_package_request["AdditionalInferenceSpecifications"] = [
        {
            "Name": "cpu",
            "Description": "the CPU serving image (ONNX Runtime when model.onnx is present)",
            "Containers": [{"Image": images.serve_cpu, "ModelDataUrl": model_data}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
            "SupportedRealtimeInferenceInstanceTypes": list(settings.cpu_inference_instances),
        }
    ]
    name = REGISTER_APPROVED if status == pipeline_gate.APPROVED else REGISTER_PENDING
    return ModelStep(name=name, step_args=step_args)


class _SessionHolder:
    """What ``ModelStep`` reads of the model behind its arguments: the pipeline session."""

    def __init__(self, session: Any) -> None:
        self.sagemaker_session = session
