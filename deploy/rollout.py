"""A guarded update of a live endpoint: traffic shifting, baking, alarms that roll it back.

SageMaker's deployment guardrails (``UpdateEndpoint``'s ``DeploymentConfig``) run every update
blue/green. ``canary`` sends a share of the traffic to the new fleet first, ``linear`` moves it
in equal steps, ``all-at-once`` moves it in one go; after each shift SageMaker watches the
alarms for the bake time, and before it terminates the old fleet for the bake time again. An
alarm that fires rolls all traffic back to the old fleet; the endpoint is then ``InService``
on its old config with a ``FailureReason``, which ``deploy`` reports as a failed deploy.

Unless alarms are named, the deploy creates two on the variant's metrics, the ones AWS's
guardrails guide suggests: 5XX errors from the container and the model's p99 latency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from deploy.errors import AwsError, ConfigError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sagemaker.type_defs import DeploymentConfigTypeDef, TrafficRoutingConfigTypeDef

    from deploy.settings import DeploySettings

NAMESPACE: Final = "AWS/SageMaker"
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600 to 28800 (API reference).
MIN_EXECUTION_TIMEOUT_S: Final = 600
MAX_EXECUTION_TIMEOUT_S: Final = 28800
# Time for SageMaker to start and health-check the new fleet before any traffic moves.
_PROVISIONING_ALLOWANCE_S: Final = 1800


def alarm_names(endpoint_name: str, variant_name: str) -> tuple[str, str]:
    """The names of the two alarms the deploy creates: 5XX errors, then p99 model latency."""
    base = f"{endpoint_name}-{variant_name}"
    return f"{base}-5xx-errors", f"{base}-model-latency-p99"


def put_rollback_alarms(
    cloudwatch: CloudWatchClient, settings: DeploySettings, variant_name: str
) -> list[str]:
    """Create (or update: PutMetricAlarm overwrites by name) the variant's two alarms.

    Both fire after two breaching minutes out of three and treat a minute without data as
    fine: a canary that receives little traffic must not roll back for lack of requests.
    ``ModelLatency`` is reported in microseconds.
    """
    errors_alarm, latency_alarm = alarm_names(settings.endpoint_name, variant_name)
    dimensions = [
        {"Name": "EndpointName", "Value": settings.endpoint_name},
        {"Name": "VariantName", "Value": variant_name},
    ]
    common = {
        "Namespace": NAMESPACE,
        "Dimensions": dimensions,
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    try:
        cloudwatch.put_metric_alarm(
            AlarmName=errors_alarm,
            AlarmDescription=f"{settings.endpoint_name}: 5XX from the model; rolls updates back",
            MetricName="Invocation5XXErrors",
            Statistic="Sum",
            Threshold=float(settings.rollback_max_5xx),
            **common,  # type: ignore[arg-type]
        )
        cloudwatch.put_metric_alarm(
            AlarmName=latency_alarm,
            AlarmDescription=f"{settings.endpoint_name}: p99 model latency; rolls updates back",
            MetricName="ModelLatency",
            ExtendedStatistic="p99",
            Threshold=float(settings.rollback_max_latency_ms * 1000),
            **common,  # type: ignore[arg-type]
        )
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    return [errors_alarm, latency_alarm]


def traffic_routing(settings: DeploySettings) -> TrafficRoutingConfigTypeDef:
    if settings.rollout == "canary":
        return {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": settings.canary_percent},
            "WaitIntervalInSeconds": settings.bake_s,
        }
    if settings.rollout == "linear":
        return {
            "Type": "LINEAR",
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": settings.linear_step_percent},
            "WaitIntervalInSeconds": settings.bake_s,
        }
    return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": settings.bake_s}


def shift_steps(settings: DeploySettings) -> int:
    """How many bake intervals the traffic shifting waits through."""
    if settings.rollout == "canary":
        return 2
    if settings.rollout == "linear":
        return -(-100 // settings.linear_step_percent)  # ceil: the last step may be smaller
    return 1


def expected_duration_s(settings: DeploySettings) -> int:
    """An upper bound of the update: provisioning, each bake, the final bake."""
    return _PROVISIONING_ALLOWANCE_S + (shift_steps(settings) + 1) * settings.bake_s


def check_rollout(settings: DeploySettings) -> None:
    """Refuse a rollout whose bakes alone exceed the longest update SageMaker runs."""
    baking = (shift_steps(settings) + 1) * settings.bake_s
    if baking >= MAX_EXECUTION_TIMEOUT_S:
        raise ConfigError(
            f"{settings.rollout} rollout bakes {shift_steps(settings) + 1} x {settings.bake_s} s "
            f"= {baking} s, over SageMaker's {MAX_EXECUTION_TIMEOUT_S} s limit of one update: "
            "shorten the bake time or take larger steps"
        )


def deployment_config(settings: DeploySettings, alarms: list[str]) -> DeploymentConfigTypeDef:
    """``UpdateEndpoint``'s DeploymentConfig: blue/green with the chosen traffic shifting."""
    check_rollout(settings)
    timeout = min(
        MAX_EXECUTION_TIMEOUT_S, max(MIN_EXECUTION_TIMEOUT_S, expected_duration_s(settings))
    )
    config: DeploymentConfigTypeDef = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(settings),
            # The final bake: the old fleet stays up (and the alarms watched) this long.
            "TerminationWaitInSeconds": settings.bake_s,
            "MaximumExecutionTimeoutInSeconds": timeout,
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def summary(settings: DeploySettings, config: DeploymentConfigTypeDef) -> str:
    """One line for the deploy's output: how traffic moves and what rolls it back."""
    if settings.rollout == "canary":
        shifting = f"canary {settings.canary_percent}% then the rest"
    elif settings.rollout == "linear":
        shifting = f"linear steps of {settings.linear_step_percent}%"
    else:
        shifting = "all at once"
    alarms = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    watched = f"rollback alarms {', '.join(alarms)}" if alarms else "no rollback alarms"
    return f"{shifting}, bake {settings.bake_s} s, {watched}"
