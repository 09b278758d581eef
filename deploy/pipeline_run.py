"""Starting and following SageMaker Pipeline executions (boto3), for ``deploy pipeline``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deploy.errors import DeployError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})


@dataclass(frozen=True)
class ExecutionStatus:
    arn: str
    status: str
    failure_reason: str | None
    steps: list[dict[str, Any]]


def start_execution(
    sagemaker: SageMakerClient,
    pipeline_name: str,
    parameters: Mapping[str, str],
    *,
    display_name: str | None = None,
) -> str:
    """StartPipelineExecution with ``parameters``; returns the execution ARN."""
    request: dict[str, Any] = {
        "PipelineName": pipeline_name,
        "PipelineParameters": [
            {"Name": name, "Value": value} for name, value in sorted(parameters.items())
        ],
        # Idempotent on a retried call: the SDK's own retries cannot start two executions.
        "ClientRequestToken": uuid.uuid4().hex,
    }
    if display_name:
        request["PipelineExecutionDisplayName"] = display_name
    return sagemaker.start_pipeline_execution(**request)["PipelineExecutionArn"]


def latest_execution(sagemaker: SageMakerClient, pipeline_name: str) -> str:
    response = sagemaker.list_pipeline_executions(
        PipelineName=pipeline_name, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    )
    summaries = response.get("PipelineExecutionSummaries", [])
    if not summaries:
        raise NotFoundError(f"the pipeline {pipeline_name!r} has no execution")
    return summaries[0]["PipelineExecutionArn"]


def describe_execution(sagemaker: SageMakerClient, arn: str) -> ExecutionStatus:
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    steps: list[dict[str, Any]] = []
    request: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    for _ in range(100):  # pages of steps; the pipeline has under ten
        page = sagemaker.list_pipeline_execution_steps(**request)
        steps.extend(dict(step) for step in page.get("PipelineExecutionSteps", []))
        token = page.get("NextToken")
        if not token:
            break
        request["NextToken"] = token
    return ExecutionStatus(
        arn=arn,
        status=str(described.get("PipelineExecutionStatus", "")),
        failure_reason=described.get("FailureReason"),
        steps=steps,
    )


def step_line(step: Mapping[str, Any]) -> str:
    line = f"step {step['StepName']} {step.get('StepStatus', '')}"
    metadata = step.get("Metadata", {})
    for key, value in metadata.items():
        arn = value.get("Arn") if isinstance(value, dict) else None
        if arn:
            line += f" {key} {arn}"
    if step.get("FailureReason"):
        line += f": {step['FailureReason']}"
    return line


def follow_execution(
    sagemaker: SageMakerClient,
    arn: str,
    write: Callable[[str], None],
    *,
    poll_s: float = 30.0,
    timeout_s: float = 24 * 3600,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionStatus:
    """Print each step's status as it changes until the execution ends (or ``timeout_s``)."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        status = describe_execution(sagemaker, arn)
        for step in status.steps:
            key = step["StepName"]
            if seen.get(key) != step.get("StepStatus"):
                seen[key] = str(step.get("StepStatus"))
                write(step_line(step))
        if status.status in TERMINAL:
            return status
        if time.monotonic() >= deadline:
            raise DeployError(
                f"execution {arn} still {status.status} after {timeout_s:g} s; "
                "follow it with: python -m deploy pipeline status"
            )
        sleep(poll_s)
