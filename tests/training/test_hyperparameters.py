"""Hyperparameters arrive as strings encoded by different clients; they must all mean the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devtools.paths import REPO_ROOT
from training.errors import HyperparameterError
from training.hyperparameters import Hyperparameters, parse_hyperparameters
from training.sagemaker_env import (
    METRIC_DEFINITIONS,
    SageMakerEnv,
    decode_hyperparameter,
    format_metric_line,
)


def read_hyperparameters(tmp_path: Path, raw: dict[str, object]) -> Hyperparameters:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(raw))
    env = SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    return parse_hyperparameters(env.hyperparameters())


@pytest.mark.parametrize(
    "raw",
    [
        # The SageMaker Python SDK JSON-encodes every value.
        {"epochs": '"3"', "run_baseline": "false", "learning_rate": "0.0001", "max_steps": "null"},
        # boto3 / the console: plain strings, Python's str(bool).
        {"epochs": "3", "run_baseline": "False", "learning_rate": "1e-4", "max_steps": "None"},
        # A hand-written file with real JSON types.
        {"epochs": 3, "run_baseline": False, "learning_rate": 1e-4, "max_steps": None},
    ],
)
def test_every_client_encoding_gives_the_same_values(tmp_path: Path, raw: dict[str, object]):
    hp = read_hyperparameters(tmp_path, raw)
    assert (hp.epochs, hp.run_baseline, hp.learning_rate, hp.max_steps) == (3, False, 1e-4, None)


def test_sagemaker_keys_are_ignored_and_strings_stay_strings(tmp_path: Path):
    hp = read_hyperparameters(
        tmp_path,
        {
            "model_name_or_path": '"distilbert-base-uncased"',
            "sagemaker_program": "train",
            "sagemaker_region": '"eu-west-1"',
            "_tuning_objective_metric": "validation:macro_f1",
            "split": "random",
        },
    )
    assert hp.model_name_or_path == "distilbert-base-uncased"
    assert hp.split == "random"


def test_defaults_without_any_file(tmp_path: Path):
    env = SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    hp = parse_hyperparameters(env.hyperparameters())
    assert hp == Hyperparameters()
    assert hp.model_name_or_path == "distilbert-base-uncased"


def test_sm_hps_is_read_when_the_file_is_absent(tmp_path: Path):
    env = SageMakerEnv.from_environ(
        {"SAGEMAKER_BASE_DIR": str(tmp_path), "SM_HPS": json.dumps({"batch_size": 8})}
    )
    assert parse_hyperparameters(env.hyperparameters()).batch_size == 8


def test_unknown_hyperparameter_is_named_with_a_suggestion():
    with pytest.raises(
        HyperparameterError, match=r"unknown hyperparameter 'learning_rat'.*'learning_rate'"
    ):
        parse_hyperparameters({"learning_rat": 0.1})


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"epochs": "three"}, "'epochs' (got 'three')"),
        ({"batch_size": "0"}, "'batch_size'"),
        ({"split": "by-publisher"}, "'split'"),
        ({"run_baseline": "maybe"}, "'run_baseline'"),
        (
            {"validation_fraction": "0.5", "test_fraction": "0.5"},
            "validation_fraction + test_fraction",
        ),
    ],
)
def test_malformed_values_are_named(raw: dict[str, str], named: str):
    decoded = {key: decode_hyperparameter(value) for key, value in raw.items()}
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters(decoded)
    assert named in str(caught.value)


def test_decoding_unwraps_json_strings_and_lists():
    assert decode_hyperparameter('"\\"3\\""') == 3
    assert decode_hyperparameter("[1, 2]") == [1, 2]
    assert decode_hyperparameter(" distilbert-base-uncased ") == "distilbert-base-uncased"


def test_every_hyperparameter_is_documented_with_its_default():
    doc = (REPO_ROOT / "docs" / "training.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", doc, flags=re.MULTILINE))
    for name, field in Hyperparameters.model_fields.items():
        assert name in rows, f"docs/training.md does not document {name}"
        default = "none" if field.default is None else json.dumps(field.default).strip('"')
        assert rows[name].lower() == default.lower(), f"{name}: documented {rows[name]!r}"


def test_metric_definitions_scrape_the_printed_lines():
    values = {
        "step": 7,
        "epoch": 0.5,
        "train_loss": 0.25,
        "learning_rate": 3e-5,
        "samples_per_second": 512.5,
        "validation_loss": 0.5,
        "validation_accuracy": 0.875,
        "validation_macro_f1": 0.8125,
        "test_accuracy": 0.75,
        "test_macro_f1": 0.625,
        "baseline_test_macro_f1": 0.5,
    }
    line = "2026-01-01 INFO [rank 0] training.train: " + format_metric_line(values)
    for definition in METRIC_DEFINITIONS:
        key = {
            "train:loss": "train_loss",
            "train:learning_rate": "learning_rate",
            "train:samples_per_second": "samples_per_second",
            "train:epoch": "epoch",
        }.get(definition["Name"], definition["Name"].replace(":", "_"))
        found = re.search(definition["Regex"], line)
        assert found, definition
        assert float(found.group(1)) == pytest.approx(values[key]), definition
    # A line without the metric must not match (baseline_test_macro_f1 is not test_macro_f1).
    only_baseline = format_metric_line({"baseline_test_macro_f1": 0.5})
    test_f1 = next(d for d in METRIC_DEFINITIONS if d["Name"] == "test:macro_f1")
    assert re.search(test_f1["Regex"], only_baseline) is None


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "inf", "nan", "1e999"])
def test_non_finite_numbers_are_refused_by_name(tmp_path: Path, value: str) -> None:
    # learning_rate=Infinity used to train "successfully" into an all-NaN model.
    with pytest.raises(HyperparameterError, match="'learning_rate'"):
        read_hyperparameters(tmp_path, {"learning_rate": value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", "1000000000"),
        ("epochs", "100000"),
        ("learning_rate", "10"),
        ("eval_batch_size", "1e6"),
        ("seed", str(2**40)),
        ("num_processes", "4096"),
        ("model_name_or_path", "x" * 2000),
    ],
)
def test_values_past_their_upper_bound_are_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(HyperparameterError, match=f"'{key}'"):
        parse_hyperparameters({key: decode_hyperparameter(value)})


@pytest.mark.parametrize(
    "value",
    [
        "[" * 2000 + "]" * 2000,  # nested past Python's JSON recursion limit
        "[[[[1]]]]",
        '{"a": {"b": [1, 2]}}',
        "9" * 2400,  # SageMaker allows 2,500 characters a value
    ],
)
def test_nested_or_huge_values_are_a_hyperparameter_error_without_an_echo(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(HyperparameterError, match="'epochs'") as caught:
        read_hyperparameters(tmp_path, {"epochs": value})
    assert len(str(caught.value)) < 400


def test_a_huge_unknown_key_is_not_echoed_whole() -> None:
    with pytest.raises(HyperparameterError, match="unknown hyperparameter") as caught:
        parse_hyperparameters({"x" * 5000: 1})
    assert len(str(caught.value)) < 1024  # SageMaker shows the failure file's first 1,024
