"""Settings: flags over environment over config file; clear errors for missing values."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from deploy import cli
from deploy.errors import ConfigError
from deploy.settings import DeploySettings, is_gpu_instance
from tests.deploy.support import ROLE_ARN


def test_flag_beats_environment_beats_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(
        'region = "eu-west-1"\nbucket = "from-file"\nendpoint_name = "file-endpoint"\n'
        "max_capacity = 5\n[hyperparameters]\nepochs = 3\nlearning_rate = 5e-5\nfp16 = true\n"
    )
    monkeypatch.setenv("NEWSCLF_BUCKET", "from-env")
    monkeypatch.setenv("NEWSCLF_ENDPOINT_NAME", "env-endpoint")

    settings = DeploySettings(config_file=config, endpoint_name="flag-endpoint")

    assert settings.region == "eu-west-1"  # only in the file
    assert settings.bucket == "from-env"  # environment over file
    assert settings.endpoint_name == "flag-endpoint"  # flag over environment
    assert settings.max_capacity == 5
    assert settings.hyperparameters == {"epochs": "3", "learning_rate": "5e-05", "fp16": "true"}


def test_config_file_from_the_environment_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "deploy.json"
    config.write_text(json.dumps({"role_arn": ROLE_ARN, "instance_type": "ml.c6i.xlarge"}))
    monkeypatch.setenv("NEWSCLF_CONFIG_FILE", str(config))

    settings = DeploySettings()

    assert settings.require_role() == ROLE_ARN
    assert not settings.gpu_endpoint


def test_deploy_toml_in_the_working_directory_is_read() -> None:
    Path("deploy.toml").write_text('bucket = "cwd-bucket"\n')  # the test runs in tmp_path
    assert DeploySettings().bucket == "cwd-bucket"


def test_missing_role_and_bucket_are_config_errors() -> None:
    settings = DeploySettings()
    with pytest.raises(ConfigError, match="role"):
        settings.require_role()
    with pytest.raises(ConfigError, match="bucket"):
        settings.s3_uri("models")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role_arn", "SageMakerRole"),
        ("bucket", "s3://bucket/key"),
        ("endpoint_name", "News_Classifier"),
        ("max_wait_s", 60),  # shorter than max_runtime_s with spot on
        ("min_capacity", 3),  # above max_capacity
    ],
)
def test_invalid_settings_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field if field != "min_capacity" else "capacity"):
        DeploySettings(**{field: value})


def test_cli_reports_invalid_settings_with_exit_code_2(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="deploy"):
        code = cli.main(["teardown", "--role-arn", "not-an-arn"], stdout=io.StringIO())
    assert code == ConfigError.exit_code
    assert "role_arn" in caplog.text


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--hp", "no-equals-sign"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_gpu_instance_families() -> None:
    assert is_gpu_instance("ml.g5.xlarge")
    assert is_gpu_instance("ml.p4d.24xlarge")
    assert not is_gpu_instance("ml.c6i.xlarge")
    assert not is_gpu_instance("ml.m5.large")
