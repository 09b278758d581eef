"""Delete what ``deploy`` and the API template created; a dry run only lists it.

Order: the API stack (so nothing calls a vanishing endpoint), the scaling policies and the
scalable target (Application Auto Scaling would otherwise keep acting on a missing variant),
the endpoint, then every endpoint config and model named ``<endpoint>-...``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from deploy import endpoint as endpoint_ops
from deploy.errors import AwsError, error_code

if TYPE_CHECKING:
    from deploy.aws import AwsClients
    from deploy.settings import DeploySettings

logger = logging.getLogger(__name__)


@dataclass
class TeardownPlan:
    """Everything that exists now and would be deleted, by kind."""

    stack: str | None = None
    scaling_policies: list[str] = field(default_factory=list)
    scalable_target: str | None = None
    endpoint: str | None = None
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One ``kind name`` line per resource, in deletion order."""
        rows: list[tuple[str, str | None]] = [("cloudformation-stack", self.stack)]
        rows += [("scaling-policy", name) for name in self.scaling_policies]
        rows += [("scalable-target", self.scalable_target), ("endpoint", self.endpoint)]
        rows += [("endpoint-config", name) for name in self.endpoint_configs]
        rows += [("model", name) for name in self.models]
        return [f"{kind} {name}" for kind, name in rows if name]

    @property
    def empty(self) -> bool:
        return not self.lines()


def plan_teardown(aws: AwsClients, settings: DeploySettings) -> TeardownPlan:
    endpoint = settings.endpoint_name
    prefix = f"{endpoint}-"
    plan = TeardownPlan()
    try:
        if settings.stack_name and _stack_exists(aws, settings.stack_name):
            plan.stack = settings.stack_name
        plan.scaling_policies = endpoint_ops.scaling_policies(aws.autoscaling, endpoint)
        if endpoint_ops.scalable_target_registered(aws.autoscaling, endpoint):
            plan.scalable_target = endpoint_ops.resource_id(endpoint)
        configs: set[str] = set()
        described = endpoint_ops.describe_endpoint(aws.sagemaker, endpoint)
        if described is not None:
            plan.endpoint = endpoint
            configs.add(described["EndpointConfigName"])
        for page in aws.sagemaker.get_paginator("list_endpoint_configs").paginate(
            NameContains=endpoint
        ):
            configs.update(
                c["EndpointConfigName"]
                for c in page["EndpointConfigs"]
                if c["EndpointConfigName"].startswith(prefix)
            )
        plan.endpoint_configs = sorted(configs)
        models = aws.sagemaker.get_paginator("list_models")
        for model_page in models.paginate(NameContains=endpoint):
            plan.models += [
                m["ModelName"] for m in model_page["Models"] if m["ModelName"].startswith(prefix)
            ]
        plan.models.sort()
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    return plan


def _stack_exists(aws: AwsClients, stack_name: str) -> bool:
    try:
        stacks = aws.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError":  # "Stack with id ... does not exist"
            return False
        raise
    return any(stack["StackStatus"] != "DELETE_COMPLETE" for stack in stacks)


def execute_teardown(aws: AwsClients, settings: DeploySettings, plan: TeardownPlan) -> None:
    """Delete the planned resources; one already gone is not an error."""
    endpoint = settings.endpoint_name
    try:
        if plan.stack:
            logger.info("deleting stack %s", plan.stack)
            aws.cloudformation.delete_stack(StackName=plan.stack)
        if plan.scaling_policies or plan.scalable_target:
            endpoint_ops.remove_autoscaling(aws.autoscaling, endpoint)
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
