"""Delete what ``deploy`` and the API template created; a dry run only lists it.

Order: the API stack (so nothing calls a vanishing endpoint), the scaling policies and the
scalable target (Application Auto Scaling would otherwise keep acting on a missing variant),
the CloudWatch alarms ``deploy`` created (rollback, async scale-from-zero), the endpoint,
then the endpoint configs and models of this endpoint's deploys.

Only what this tool made for this endpoint is deleted: configs and models named exactly
``<endpoint>-YYYYmmdd-HHMMSS`` (``NameContains`` also lists ``<endpoint>-staging-...``) and
tagged ``project=<name>``; an endpoint without that tag, or a stack whose ``EndpointName``
parameter is another endpoint, stops the teardown before anything is deleted. A config that
any other live endpoint uses (a manual rollback, another endpoint pointed at it), and its
models, are kept: deleting an endpoint's config leaves that endpoint unmanageable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TextIO

from botocore.exceptions import ClientError

from deploy import async_inference, rollout, scaling
from deploy.endpoint import describe_endpoint
from deploy.errors import AwsError, DeployError, error_code
from deploy.names import VARIANT_NAME, is_timestamped_name

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

    from deploy.aws import AwsClients
    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)

PROJECT_TAG = "project"
# The API template's parameter naming the endpoint it fronts (infra/template.yaml).
STACK_ENDPOINT_PARAMETER = "EndpointName"


class NotOursError(DeployError):
    """A resource teardown was asked to delete was not created by this tool for this endpoint."""

    exit_code = 2


@dataclass
class TeardownPlan:
    """Everything that exists now and would be deleted, by kind, and what is kept and why."""

    stack: str | None = None
    scaling_policies: list[str] = field(default_factory=list)
    scalable_target: str | None = None
    alarms: list[str] = field(default_factory=list)
    endpoint: str | None = None
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One ``kind name`` line per resource, in deletion order."""
        rows: list[tuple[str, str | None]] = [("cloudformation-stack", self.stack)]
        rows += [("scaling-policy", name) for name in self.scaling_policies]
        rows += [("scalable-target", self.scalable_target)]
        rows += [("cloudwatch-alarm", name) for name in self.alarms]
        rows += [("endpoint", self.endpoint)]
        rows += [("endpoint-config", name) for name in self.endpoint_configs]
        rows += [("model", name) for name in self.models]
        return [f"{kind} {name}" for kind, name in rows if name]

    @property
    def empty(self) -> bool:
        return not self.lines()


def plan_teardown(aws: AwsClients, settings: DeploySettings) -> TeardownPlan:
    endpoint = settings.endpoint_name
    plan = TeardownPlan()
    try:
        if settings.stack_name and _project_stack(aws, settings):
            plan.stack = settings.stack_name
        plan.scaling_policies = scaling.scaling_policies(aws.autoscaling, endpoint)
        if scaling.scalable_target_registered(aws.autoscaling, endpoint):
            plan.scalable_target = scaling.resource_id(endpoint)
        plan.alarms = _alarms(aws, endpoint)
        described = describe_endpoint(aws.sagemaker, endpoint)
        if described is not None:
            if not _tagged(aws.sagemaker, described["EndpointArn"], settings.name):
                raise NotOursError(
                    f"endpoint {endpoint} has no {PROJECT_TAG}={settings.name} tag, so this "
                    "tool did not create it; nothing was deleted"
                )
            plan.endpoint = endpoint
        configs = _ours(
            aws.sagemaker,
            settings,
            (
                (c["EndpointConfigName"], c["EndpointConfigArn"])
                for page in aws.sagemaker.get_paginator("list_endpoint_configs").paginate(
                    NameContains=endpoint
                )
                for c in page["EndpointConfigs"]
            ),
        )
        models = _ours(
            aws.sagemaker,
            settings,
            (
                (m["ModelName"], m["ModelArn"])
                for page in aws.sagemaker.get_paginator("list_models").paginate(
                    NameContains=endpoint
                )
                for m in page["Models"]
            ),
        )
        in_use = _configs_in_use(aws.sagemaker, exclude=endpoint)
        kept_models: set[str] = set()
        for config in sorted(configs):
            if config in in_use:
                plan.kept.append(f"endpoint-config {config} (used by endpoint {in_use[config]})")
                kept_models.update(_models_of(aws.sagemaker, config))
            else:
                plan.endpoint_configs.append(config)
        for model in sorted(models):
            if model in kept_models:
                plan.kept.append(f"model {model} (behind a config another endpoint uses)")
            else:
                plan.models.append(model)
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    return plan


def _ours(
    sagemaker: SageMakerClient, settings: DeploySettings, listed: Iterable[tuple[str, str]]
) -> list[str]:
    """The listed ``(name, arn)`` whose name this tool generates for the endpoint and whose
    project tag is this project's."""
    found = []
    for name, arn in listed:
        if not is_timestamped_name(settings.endpoint_name, name):
            continue
        if _tagged(sagemaker, arn, settings.name):
            found.append(name)
        else:
            logger.warning("not deleting %s: no %s=%s tag", name, PROJECT_TAG, settings.name)
    return found


def _tagged(sagemaker: SageMakerClient, arn: str, project: str) -> bool:
    tags = [
        tag
        for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn)
        for tag in page["Tags"]
    ]
    return {"Key": PROJECT_TAG, "Value": project} in tags


def _configs_in_use(sagemaker: SageMakerClient, *, exclude: str) -> dict[str, str]:
    """``config -> endpoint`` for every endpoint but ``exclude``, including the config an
    update in progress is moving to."""
    in_use: dict[str, str] = {}
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            name = summary["EndpointName"]
            if name == exclude:
                continue
            described = describe_endpoint(sagemaker, name)
            if described is None:
                continue  # deleted since the listing
            in_use[described["EndpointConfigName"]] = name
            pending = described.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
            if pending:
                in_use[pending] = name
    return in_use


def _alarms(aws: AwsClients, endpoint: str) -> list[str]:
    """The alarms ``deploy`` creates for this endpoint (rollback, async scale-from-zero)."""
    names = [
        *rollout.alarm_names(endpoint, VARIANT_NAME),
        async_inference.scale_from_zero_alarm_name(endpoint),
    ]
    found = aws.cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    return sorted(alarm["AlarmName"] for alarm in found)


def _models_of(sagemaker: SageMakerClient, config: str) -> list[str]:
    described = sagemaker.describe_endpoint_config(EndpointConfigName=config)
    return [variant["ModelName"] for variant in described["ProductionVariants"]]


def _project_stack(aws: AwsClients, settings: DeploySettings) -> bool:
    """Whether the stack exists; raises if it is not the API stack of this endpoint."""
    stack_name = settings.stack_name
    try:
        stacks = aws.cloudformation.describe_stacks(StackName=str(stack_name))["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError":  # "Stack with id ... does not exist"
            return False
        raise
    live = [stack for stack in stacks if stack["StackStatus"] != "DELETE_COMPLETE"]
    if not live:
        return False
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in live[0].get("Parameters", [])}
    fronted = parameters.get(STACK_ENDPOINT_PARAMETER)
    if fronted != settings.endpoint_name:
        raise NotOursError(
            f"stack {stack_name} is not the API of endpoint {settings.endpoint_name} (its "
            f"{STACK_ENDPOINT_PARAMETER} parameter is {fronted or 'missing'}); nothing was deleted"
        )
    return True


def confirm(plan: TeardownPlan, answers: TextIO, prompt: TextIO) -> bool:
    """Ask before deleting; anything but ``y``/``yes`` (an empty or closed stdin too) is no."""
    prompt.write(f"Delete these {len(plan.lines())} resources? [y/N] ")
    prompt.flush()
    return answers.readline().strip().lower() in ("y", "yes")


def execute_teardown(aws: AwsClients, settings: DeploySettings, plan: TeardownPlan) -> None:
    """Delete the planned resources; one already gone is not an error."""
    endpoint = settings.endpoint_name
    try:
        if plan.stack:
            logger.info("deleting stack %s", plan.stack)
            aws.cloudformation.delete_stack(StackName=plan.stack)
        if plan.scaling_policies or plan.scalable_target:
            scaling.remove_autoscaling(aws.autoscaling, endpoint)
        if plan.alarms:
            aws.cloudwatch.delete_alarms(AlarmNames=plan.alarms)
        if plan.endpoint:
            _ignore_missing(partial(aws.sagemaker.delete_endpoint, EndpointName=endpoint))
        for config in plan.endpoint_configs:
            _ignore_missing(
                partial(aws.sagemaker.delete_endpoint_config, EndpointConfigName=config)
            )
        for model in plan.models:
            _ignore_missing(partial(aws.sagemaker.delete_model, ModelName=model))
    except ClientError as error:
        raise AwsError.from_client_error(error) from error


def _ignore_missing(delete: Callable[[], object]) -> None:
    try:
        delete()
    except ClientError as error:
        if error_code(error) != "ValidationException":  # "Could not find ..."
            raise
        logger.info("already gone: %s", error.response.get("Error", {}).get("Message", ""))
