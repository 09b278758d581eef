"""The pipeline's steps, built with the SageMaker Python SDK 3.x: each step's job and its names.

prepare and evaluate run the training image as Processing jobs (``python -m training.prepare``
and ``python -m training.evaluate_candidate``), train runs it as a training job (managed spot,
checkpoints), the gate compares the evaluation report with the baseline and decides on
approval, and register records a model package naming both serving images. Like
deploy/pipeline.py, which assembles them, this module imports the SDK inside its functions
only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deploy import pipeline_gate
from deploy.training_job import CHECKPOINT_LOCAL_PATH

if TYPE_CHECKING:
    from deploy.pipeline import Images
    from deploy.settings import DeploySettings

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
CONTENT_TYPES = ["application/json", "application/jsonlines", "text/csv"]
# The pipeline's own steps do these, so the training job skips them.
FIXED_HYPERPARAMETERS = {"eda": "false", "run_baseline": "false"}


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


def prepare_step(
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


def train_step(
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


def evaluate_step(
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


def gate_steps(
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
