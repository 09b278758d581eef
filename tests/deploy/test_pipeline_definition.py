"""The pipeline definition the SageMaker SDK generates, checked offline.

Structure: steps, their order through data dependencies, parameters, the two condition steps
and their branches. Each job step's arguments are also validated against botocore's own
service model (CreateProcessingJob, CreateTrainingJob, CreateModelPackage) with pipeline
expressions replaced by placeholder strings, so a field the API does not know, or of the
wrong shape, fails here rather than at StartPipelineExecution.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from deploy import pipeline, pipeline_gate, pipeline_steps
from deploy.pipeline import Images, build_pipeline
from tests.deploy.pipeline_support import keep_sdk_local
from tests.deploy.support import BUCKET, REGION, ROLE_ARN, make_settings
from training.hyperparameters import Hyperparameters

IMAGES = Images(
    train="123456789012.dkr.ecr.us-east-1.amazonaws.com/news-classifier-train:1",
    serve_gpu="123456789012.dkr.ecr.us-east-1.amazonaws.com/news-classifier-serve:1",
    serve_cpu="123456789012.dkr.ecr.us-east-1.amazonaws.com/news-classifier-serve:1-cpu",
)
EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        keep_sdk_local(patch)
        # The module's tests share one build, set up before the per-test AWS environment.
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        settings = make_settings(hyperparameters={"epochs": "2", "warmup_ratio": "0.1"})
        built = build_pipeline(settings, IMAGES, boto_session=session)
        return dict(json.loads(built.definition()))


def _steps(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every step by name, the condition steps' branches included."""
    found: dict[str, dict[str, Any]] = {}
    for step in steps:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(_steps(step["Arguments"]["IfSteps"]))
            found.update(_steps(step["Arguments"]["ElseSteps"]))
    return found


def _references(value: Any) -> set[str]:
    """The ``Get`` targets inside a piece of the definition."""
    if isinstance(value, dict):
        refs = {value["Get"]} if isinstance(value.get("Get"), str) else set()
        for item in value.values():
            refs |= _references(item)
        return refs
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    return set()


def _placeholders(value: Any) -> Any:
    """The arguments with each pipeline expression replaced by a string, as at run time."""
    if isinstance(value, dict):
        if EXPRESSION_KEYS & value.keys():
            return "s3://placeholder/value"
        return {key: _placeholders(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_placeholders(item) for item in value]
    return value


def _validate(operation: str, request: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(_placeholders(request), shape)
    assert not report.has_errors(), report.generate_report()


def test_steps_run_prepare_train_evaluate_then_the_gate(definition: dict[str, Any]) -> None:
    top = [(step["Name"], step["Type"]) for step in definition["Steps"]]
    assert top == [
        (pipeline_steps.PREPARE, "Processing"),
        (pipeline_steps.TRAIN, "Training"),
        (pipeline_steps.EVALUATE, "Processing"),
        (pipeline_steps.GATE_BASELINE, "Condition"),
    ]
    steps = _steps(definition["Steps"])
    # The order comes from data: train reads prepare's output, evaluate reads both.
    assert _references(steps[pipeline_steps.TRAIN]["Arguments"]) >= {
        "Steps.Prepare.ProcessingOutputConfig.Outputs['prepared'].S3Output.S3Uri"
    }
    evaluate_refs = _references(steps[pipeline_steps.EVALUATE]["Arguments"])
    assert "Steps.Train.ModelArtifacts.S3ModelArtifacts" in evaluate_refs
    assert "Parameters.ApprovedModelData" in evaluate_refs
    for name in (pipeline_steps.REGISTER_APPROVED, pipeline_steps.REGISTER_PENDING):
        assert "Steps.Train.ModelArtifacts.S3ModelArtifacts" in _references(
            steps[name]["Arguments"]
        )


def test_parameters_cover_data_hyperparameters_and_approval(definition: dict[str, Any]) -> None:
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert set(parameters) == {
        "RawData", *pipeline.HYPERPARAMETER_PARAMETERS.values(), "TrainInstanceType",
        "ProcessingInstanceType", "ApprovedModelData", "AutoApprove",
    }  # fmt: skip
    assert parameters["RawData"]["DefaultValue"] == f"s3://{BUCKET}/news-classifier/data/raw/"
    assert parameters["Epochs"]["DefaultValue"] == "2"  # from the settings
    job_default = Hyperparameters.model_fields["model_name_or_path"].default
    assert parameters["BaseModel"]["DefaultValue"] == job_default  # the job's own default
    assert parameters["AutoApprove"] == {
        "Name": "AutoApprove",
        "Type": "Boolean",
        "DefaultValue": False,
    }
    train = _steps(definition["Steps"])[pipeline_steps.TRAIN]["Arguments"]
    hyperparameters = train["HyperParameters"]
    assert hyperparameters["epochs"] == {"Get": "Parameters.Epochs"}
    assert hyperparameters["model_name_or_path"] == {"Get": "Parameters.BaseModel"}
    assert hyperparameters["warmup_ratio"] == "0.1"  # a settings value that is no parameter
    # The pipeline's own steps write the data report and score the baseline.
    assert hyperparameters["eda"] == "false" and hyperparameters["run_baseline"] == "false"


def test_the_training_step_is_spot_with_checkpoints_and_the_project_image(
    definition: dict[str, Any],
) -> None:
    train = _steps(definition["Steps"])[pipeline_steps.TRAIN]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == IMAGES.train
    assert train["EnableManagedSpotTraining"] is True
    assert (
        train["StoppingCondition"]["MaxWaitTimeInSeconds"]
        >= train["StoppingCondition"]["MaxRuntimeInSeconds"]
    )
    assert train["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert "Execution.PipelineExecutionId" in _references(train["CheckpointConfig"])
    assert train["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainInstanceType"}
    assert [c["ChannelName"] for c in train["InputDataConfig"]] == ["train", "validation", "test"]
    names = {d["Name"] for d in train["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "validation:macro_f1" in names
    _validate("CreateTrainingJob", {**train, "TrainingJobName": "job"})


def test_processing_steps_run_the_training_image_modules(definition: dict[str, Any]) -> None:
    steps = _steps(definition["Steps"])
    prepare = steps[pipeline_steps.PREPARE]["Arguments"]
    evaluate = steps[pipeline_steps.EVALUATE]["Arguments"]
    assert prepare["AppSpecification"]["ImageUri"] == IMAGES.train
    assert prepare["AppSpecification"]["ContainerEntrypoint"] == [
        "python", "-m", "training.prepare",
    ]  # fmt: skip
    arguments = prepare["AppSpecification"]["ContainerArguments"]
    # The EDA's token lengths come from the chosen base model's tokenizer (a Hub id too).
    assert arguments[arguments.index("--tokenizer") + 1] == {"Get": "Parameters.BaseModel"}
    assert evaluate["AppSpecification"]["ContainerEntrypoint"] == [
        "python", "-m", "training.evaluate_candidate",
    ]  # fmt: skip
    assert steps[pipeline_steps.EVALUATE]["PropertyFiles"] == [
        {
            "PropertyFileName": "Evaluation",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]
    for request in (prepare, evaluate):
        _validate("CreateProcessingJob", {**request, "ProcessingJobName": "job"})


def test_the_gate_fails_worse_than_baseline_and_approves_only_when_asked(
    definition: dict[str, Any],
) -> None:
    steps = _steps(definition["Steps"])
    outer = steps[pipeline_steps.GATE_BASELINE]["Arguments"]
    (baseline_condition,) = outer["Conditions"]
    assert baseline_condition["Type"] == "GreaterThanOrEqualTo"
    assert baseline_condition["LeftValue"]["Std:JsonGet"]["Path"] == (
        pipeline_gate.BASELINE_DIFFERENCE
    )
    assert baseline_condition["RightValue"] == 0
    assert [s["Name"] for s in outer["IfSteps"]] == [pipeline_steps.GATE_APPROVAL]
    assert [(s["Name"], s["Type"]) for s in outer["ElseSteps"]] == [(pipeline_steps.FAIL, "Fail")]

    inner = steps[pipeline_steps.GATE_APPROVAL]["Arguments"]
    interval, auto = inner["Conditions"]
    assert (interval["Type"], interval["RightValue"]) == ("GreaterThan", 0)
    assert interval["LeftValue"]["Std:JsonGet"]["Path"] == pipeline_gate.INTERVAL_LOW
    assert auto == {
        "Type": "Equals",
        "LeftValue": {"Get": "Parameters.AutoApprove"},
        "RightValue": True,
    }
    assert [s["Name"] for s in inner["IfSteps"]] == [pipeline_steps.REGISTER_APPROVED]
    assert [s["Name"] for s in inner["ElseSteps"]] == [pipeline_steps.REGISTER_PENDING]


def test_registration_names_both_images_metrics_and_the_data_hash(
    definition: dict[str, Any],
) -> None:
    steps = _steps(definition["Steps"])
    settings = make_settings()
    for name, status in (
        (pipeline_steps.REGISTER_APPROVED, "Approved"),
        (pipeline_steps.REGISTER_PENDING, "PendingManualApproval"),
    ):
        step = steps[name]
        assert step["Type"] == "RegisterModel"
        request = step["Arguments"]
        assert request["ModelPackageGroupName"] == "news-classifier"
        assert request["ModelApprovalStatus"] == status
        spec = request["InferenceSpecification"]
        assert spec["Containers"][0]["Image"] == IMAGES.serve_gpu
        assert spec["SupportedRealtimeInferenceInstanceTypes"] == settings.gpu_inference_instances
        assert "application/json" in spec["SupportedContentTypes"]
        (cpu,) = request["AdditionalInferenceSpecifications"]
        assert cpu["Containers"][0]["Image"] == IMAGES.serve_cpu
        assert cpu["SupportedRealtimeInferenceInstanceTypes"] == settings.cpu_inference_instances
        statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]
        assert statistics["ContentType"] == "application/json"
        assert "evaluation.json" in statistics["S3Uri"]["Std:Join"]["Values"]
        data_hash = request["CustomerMetadataProperties"]["data_sha256"]
        assert data_hash["Std:JsonGet"]["Path"] == pipeline_gate.DATA_SHA256
        _validate("CreateModelPackage", request)


def test_every_step_role_is_the_execution_role(definition: dict[str, Any]) -> None:
    steps = _steps(definition["Steps"])
    for name in (pipeline_steps.PREPARE, pipeline_steps.TRAIN, pipeline_steps.EVALUATE):
        assert steps[name]["Arguments"]["RoleArn"] == ROLE_ARN
