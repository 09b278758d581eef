"""The SageMaker training contract: paths, channels, hosts, and bad runs that leave a reason.

Each bad run calls the real entry point, ``training.__main__.main``, against a temporary
/opt/ml tree and checks what SageMaker would see: a non-zero exit, ``output/failure`` whose
first 1,024 characters say what went wrong, and no model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.training.conftest import tiny_hyperparameters, write_job
from training.__main__ import main
from training.sagemaker_env import FAILURE_REASON_LIMIT, SageMakerEnv


def failure_of(base: Path) -> str:
    text = (base / "output" / "failure").read_text()
    assert text.strip()
    return text[:FAILURE_REASON_LIMIT]


def assert_no_model(base: Path) -> None:
    assert not (base / "model" / "artifact.json").exists()
    assert not list((base / "model").glob("*")) if (base / "model").exists() else True


def test_paths_default_to_opt_ml_and_follow_sm_variables(tmp_path: Path):
    default = SageMakerEnv.from_environ({})
    assert default.model_dir == Path("/opt/ml/model")
    assert default.failure_file == Path("/opt/ml/output/failure")
    assert default.checkpoint_dir == Path("/opt/ml/checkpoints")
    env = SageMakerEnv.from_environ(
        {
            "SAGEMAKER_BASE_DIR": str(tmp_path),
            "SM_MODEL_DIR": str(tmp_path / "elsewhere"),
            "SM_CHANNEL_TRAIN": str(tmp_path / "train-data"),
            "TRAINING_JOB_NAME": "job-1",
        }
    )
    assert env.model_dir == tmp_path / "elsewhere"
    assert env.output_data_dir == tmp_path / "output" / "data"
    assert env.channels() == {"train": tmp_path / "train-data"}
    assert env.job_name == "job-1"


def test_cluster_from_resourceconfig_and_sm_hosts(tmp_path: Path):
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": "algo-2",
                "hosts": ["algo-1", "algo-2"],
                "network_interface_name": "eth0",
            }
        )
    )
    cluster = SageMakerEnv.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)}).cluster()
    assert (cluster.hosts, cluster.node_rank, cluster.network_interface) == (
        ("algo-1", "algo-2"),
        1,
        "eth0",
    )
    from_env = SageMakerEnv.from_environ(
        {
            "SAGEMAKER_BASE_DIR": str(tmp_path / "none"),
            "SM_HOSTS": '["algo-1","algo-2","algo-3"]',
            "SM_CURRENT_HOST": "algo-3",
            "SM_NUM_GPUS": "4",
        }
    ).cluster()
    assert (from_env.node_rank, from_env.num_gpus) == (2, 4)


def test_bad_hyperparameter_fails_with_its_name(
    opt_ml: Path, tiny_model_dir: Path, train_rows: bytes
):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir, epochs="three"), train_rows=train_rows)
    assert main(["train"]) == 1
    assert "'epochs' (got 'three')" in failure_of(opt_ml)
    assert_no_model(opt_ml)


def test_unknown_hyperparameter_fails(opt_ml: Path, tiny_model_dir: Path, train_rows: bytes):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir, lr="0.1"), train_rows=train_rows)
    assert main([]) == 1  # `train` is optional (an image run without its CMD)
    assert "unknown hyperparameter 'lr'" in failure_of(opt_ml)


def test_hyperparameters_file_that_is_not_json(opt_ml: Path, train_rows: bytes):
    write_job(opt_ml, {}, train_rows=train_rows)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text("{epochs: 3")
    assert main(["train"]) == 1
    assert "hyperparameters.json is not valid JSON" in failure_of(opt_ml)


def test_missing_train_channel(opt_ml: Path, tiny_model_dir: Path):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir), train_rows=None)
    assert main(["train"]) == 1
    assert "no 'train' input channel" in failure_of(opt_ml)
    assert_no_model(opt_ml)


def test_declared_channel_that_is_missing(opt_ml: Path, tiny_model_dir: Path, train_rows: bytes):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir), train_rows=train_rows)
    (opt_ml / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}, "test": {"TrainingInputMode": "File"}})
    )
    assert main(["train"]) == 1
    assert "['test'] are declared in inputdataconfig.json" in failure_of(opt_ml)


def test_empty_train_channel(opt_ml: Path, tiny_model_dir: Path):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir), train_rows=None)
    (opt_ml / "input" / "data" / "train").mkdir(parents=True)
    assert main(["train"]) == 1
    assert "DataError" in failure_of(opt_ml)
    assert "is empty" in failure_of(opt_ml)
    assert_no_model(opt_ml)


def test_unreadable_data(opt_ml: Path, tiny_model_dir: Path):
    write_job(
        opt_ml, tiny_hyperparameters(tiny_model_dir), train_rows=b"\x00\x01 not, a; headline\n" * 50
    )
    assert main(["train"]) == 1
    assert failure_of(opt_ml).startswith("DataError: ")
    assert_no_model(opt_ml)


def test_base_model_path_that_does_not_exist(opt_ml: Path, tmp_path: Path, train_rows: bytes):
    write_job(opt_ml, tiny_hyperparameters(tmp_path / "no-such-model"), train_rows=train_rows)
    assert main(["train"]) == 1
    reason = failure_of(opt_ml)
    assert reason.startswith("ModelLoadError: ")
    assert "no-such-model" in reason and "pretrained" in reason
    assert_no_model(opt_ml)


def test_max_length_beyond_the_model(opt_ml: Path, tiny_model_dir: Path, train_rows: bytes):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir, max_length=4096), train_rows=train_rows)
    assert main(["train"]) == 1
    assert "'max_length' (4096) exceeds" in failure_of(opt_ml)


def test_out_of_memory_says_so_and_leaves_no_model(
    opt_ml: Path, tiny_model_dir: Path, tmp_path: Path, train_rows: bytes
):
    """A real allocation failure: the base model's config asks for a 16 TiB embedding table
    whose weights are not in the checkpoint, so loading must allocate it and the CPU allocator
    refuses (no swap or overcommit heuristic grants 16 TiB)."""
    from safetensors.torch import load_file, save_file

    huge = tmp_path / "huge-model"
    shutil.copytree(tiny_model_dir, huge)
    weights = load_file(huge / "model.safetensors")
    kept = {name: tensor for name, tensor in weights.items() if "word_embeddings" not in name}
    save_file(kept, huge / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((huge / "config.json").read_text())
    config["vocab_size"] = 2**37
    (huge / "config.json").write_text(json.dumps(config))
    write_job(opt_ml, tiny_hyperparameters(huge), train_rows=train_rows)
    assert main(["train"]) == 1
    reason = failure_of(opt_ml)
    assert reason.startswith("OutOfMemory: the job ran out of host memory. Lower batch_size")
    assert_no_model(opt_ml)


def test_pretrained_channel_without_a_model(opt_ml: Path, tiny_model_dir: Path, train_rows: bytes):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir), train_rows=train_rows)
    (opt_ml / "input" / "data" / "pretrained").mkdir(parents=True)
    (opt_ml / "input" / "data" / "pretrained" / "README.txt").write_text("nothing here")
    assert main(["train"]) == 1
    assert "the 'pretrained' channel" in failure_of(opt_ml)


def test_a_retried_job_clears_the_old_failure(opt_ml: Path, tiny_model_dir: Path):
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir, epochs="three"), train_rows=None)
    assert main(["train"]) == 1
    write_job(opt_ml, tiny_hyperparameters(tiny_model_dir), train_rows=None)
    assert main(["train"]) == 1
    assert "epochs" not in failure_of(opt_ml)
