"""The infrastructure template is cfn-lint clean (warnings count: the exit status is 0 only
when there is nothing to report) and keeps its least-privilege promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from api_errors import ERROR_STATUS
from api_gateway import cors_headers
from api_settings import ENVIRONMENT_VARIABLES, HARD_MAX_BODY_BYTES, Settings
from devtools.paths import REPO_ROOT

TEMPLATE = REPO_ROOT / "infra" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


def _tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)


def test_cfn_lint_is_clean() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lambda_may_invoke_one_endpoint_only() -> None:
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    resources = template["Resources"]
    statements = [
        statement
        for policy in resources["ClassifyFunctionRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    [invoke] = [s for s in statements if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert invoke["Resource"].endswith(":endpoint/${EndpointName}")
    assert all("*" not in str(s["Action"]) for s in statements)
    post = resources["ClassifyPost"]["Properties"]
    assert post["ApiKeyRequired"] is True
    assert post["Integration"]["TimeoutInMillis"] <= 29000


def test_the_lambda_environment_is_what_the_handler_reads_and_its_defaults_pass() -> None:
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    defaults["EndpointName"] = "news-classifier"
    variables = template["Resources"]["ClassifyFunction"]["Properties"]["Environment"]["Variables"]
    assert set(variables) == set(ENVIRONMENT_VARIABLES)
    # !Ref values arrive as parameter names: resolve them to the parameters' defaults.
    environ = {key: str(defaults.get(value, value)) for key, value in variables.items()}
    Settings.from_environ(environ)  # raises if the template's defaults break a limit


def _render(template_text: str) -> Any:
    """Parse an API Gateway template as JSON with its ``$context`` variables filled in."""
    text = template_text.replace("$context.error.messageString", '"a message"')
    return json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", text))


def test_gateway_errors_and_access_logs_are_well_formed_json() -> None:
    resources = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Resources"]
    responses = [r["Properties"] for r in resources.values() if r["Type"].endswith("Response")]
    assert len(responses) >= 8
    for response in responses:
        error = _render(response["ResponseTemplates"]["application/json"])["error"]
        assert set(error) == {"code", "message", "request_id"}
        assert error["code"] in ERROR_STATUS, response["ResponseType"]
        if "StatusCode" in response:
            assert int(response["StatusCode"]) == ERROR_STATUS[error["code"]]
        assert (
            "gatewayresponse.header.Access-Control-Allow-Origin" in response["ResponseParameters"]
        )
    access_log = resources["ApiStage"]["Properties"]["AccessLogSetting"]["Format"]
    assert "requestId" in _render(access_log)


def test_the_deployment_snapshots_every_method_and_gateway_response() -> None:
    # API Gateway serves a deployment, a snapshot taken when it is created: a method or a
    # gateway response created after it is not live (stock bodies, no CORS) until the API
    # is deployed again. CloudFormation orders creation only by DependsOn and references.
    resources = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Resources"]
    [deployment] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Deployment"]
    depends_on = deployment["DependsOn"]
    snapshotted = {
        name
        for name, resource in resources.items()
        if resource["Type"] in ("AWS::ApiGateway::Method", "AWS::ApiGateway::GatewayResponse")
    }
    assert snapshotted <= set([depends_on] if isinstance(depends_on, str) else depends_on)


def test_the_largest_timeout_and_attempts_the_template_allows_still_start() -> None:
    # ReadTimeoutSeconds / MaxAttempts at their MaxValue: the Lambda must still pass its
    # cold-start check (one attempt within API Gateway's budget), not fail every request.
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    parameters = template["Parameters"]
    variables = template["Resources"]["ClassifyFunction"]["Properties"]["Environment"]["Variables"]
    # !Ref values arrive as parameter names: each at its largest allowed value.
    environ = {
        key: str(parameters[value].get("MaxValue", parameters[value].get("Default")))
        if value in parameters
        else str(value)
        for key, value in variables.items()
    }
    environ["ENDPOINT_NAME"] = "news-classifier"
    assert environ["READ_TIMEOUT_S"] == str(parameters["ReadTimeoutSeconds"]["MaxValue"])
    Settings.from_environ(environ)


def test_the_body_limit_parameter_stops_where_the_lambda_does() -> None:
    # Not below it (a deployment could not use what the Lambda allows) nor above it (the
    # stack would deploy, then fail every cold start).
    parameters = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Parameters"]
    assert parameters["MaxBodyBytes"]["MaxValue"] == HARD_MAX_BODY_BYTES


def test_keyless_preflights_never_invoke_the_lambda_and_its_concurrency_is_capped() -> None:
    resources = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Resources"]
    # Every method the Lambda serves requires a key; the keyless OPTIONS is answered by
    # API Gateway itself, with the handler's CORS headers.
    for resource in resources.values():
        if resource["Type"] == "AWS::ApiGateway::Method":
            method = resource["Properties"]
            if method["Integration"]["Type"] == "AWS_PROXY":
                assert method["ApiKeyRequired"] is True, method["HttpMethod"]
    options = resources["ClassifyOptions"]["Properties"]
    assert (options["HttpMethod"], options["Integration"]["Type"]) == ("OPTIONS", "MOCK")
    [answer] = options["Integration"]["IntegrationResponses"]
    headers = {
        name.removeprefix("method.response.header."): value.strip("'")
        for name, value in answer["ResponseParameters"].items()
    }
    cors = cors_headers("${CorsAllowOrigin}")
    assert headers == cors
    function = resources["ClassifyFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"][1] == "ReservedConcurrency"
