"""The Lambda's environment is validated once, at cold start, with messages naming the
variable at fault."""

from __future__ import annotations

import pytest

from api_settings import Settings, SettingsError


def test_defaults_fit_api_gateways_timeout() -> None:
    settings = Settings.from_environ({"ENDPOINT_NAME": "news-classifier"})
    assert settings.connect_timeout_s + settings.read_timeout_s <= 28
    assert settings.max_body_bytes < 6_000_000


def test_values_are_read_from_the_environment() -> None:
    settings = Settings.from_environ(
        {"ENDPOINT_NAME": "ep", "MAX_INPUTS": "8", "READ_TIMEOUT_S": "5.5", "LOG_LEVEL": "debug"}
    )
    assert (settings.max_inputs, settings.read_timeout_s, settings.log_level) == (8, 5.5, "DEBUG")


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, "ENDPOINT_NAME"),
        ({"ENDPOINT_NAME": "bad_name!"}, "ENDPOINT_NAME"),
        ({"ENDPOINT_NAME": "ep", "MAX_INPUTS": "many"}, "MAX_INPUTS"),
        ({"ENDPOINT_NAME": "ep", "MAX_BODY_BYTES": "7000000"}, "MAX_BODY_BYTES"),
        ({"ENDPOINT_NAME": "ep", "READ_TIMEOUT_S": "26.5"}, "READ_TIMEOUT_S"),
        ({"ENDPOINT_NAME": "ep", "MAX_ATTEMPTS": "6"}, "MAX_ATTEMPTS"),
        ({"ENDPOINT_NAME": "ep", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_invalid_environments_fail_naming_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_environ(environ)
