"""Several processes: the launch plan, and a real 2-process gloo run on CPU."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from model_artifact import load_artifact
from tests.training.conftest import run_training, tiny_hyperparameters, write_job
from training.distributed import plan_launch, torchrun_command
from training.sagemaker_env import Cluster


def test_two_hosts_rendezvous_at_the_first_host():
    cluster = Cluster(
        hosts=("algo-1", "algo-2"), current_host="algo-2", network_interface="eth0", num_gpus=8
    )
    plan = plan_launch(cluster, None, {})
    assert (plan.world_size, plan.nproc_per_node, plan.node_rank) == (16, 8, 1)
    command = torchrun_command(plan, ["-m", "training", "train"])
    assert command[1:3] == ["-m", "torch.distributed.run"]
    for flag in (
        "--nproc-per-node=8",
        "--nnodes=2",
        "--node-rank=1",
        "--master-addr=algo-1",
        "--master-port=29500",
    ):
        assert flag in command
    assert command[-3:] == ["-m", "training", "train"]
    # SIGTERM to SIGKILL: torchrun's default 30 s for the workers, SageMaker's 120 s in all.
    [grace] = [int(arg.split("=")[1]) for arg in command if arg.startswith("--shutdown-timeout=")]
    assert 30 < grace < 120


def test_one_cpu_host_runs_one_process_unless_asked():
    cluster = Cluster(hosts=("algo-1",), current_host="algo-1", network_interface=None, num_gpus=0)
    assert plan_launch(cluster, None, {}).world_size == 1
    plan = plan_launch(cluster, 2, {})
    assert plan.world_size == 2
    assert "--standalone" in torchrun_command(plan, ["-m", "training"])


@pytest.mark.slow
def test_two_gloo_processes_train_one_model(
    tmp_path: Path, tiny_model_dir: Path, train_rows: bytes
):
    hyperparameters = tiny_hyperparameters(tiny_model_dir, num_processes=2, epochs=1)
    # The base model comes from a `pretrained` channel (network isolation), not a Hub id.
    del hyperparameters["model_name_or_path"]
    base = write_job(tmp_path, hyperparameters, train_rows=train_rows)
    shutil.copytree(tiny_model_dir, base / "input" / "data" / "pretrained" / "model")
    finished = run_training(base, timeout=150)
    log = finished.stdout + finished.stderr
    assert finished.returncode == 0, log
    assert "launching 2 processes" in log
    assert "2 processes x batch 16" in log
    # Only rank 0 reports: each metric line once.
    assert log.count("test_macro_f1=") == 1
    summary = json.loads((base / "output" / "data" / "training_summary.json").read_text())
    assert summary["world_size"] == 2
    # Each step trains on two batches of 16, one per process.
    rows = json.loads((base / "output" / "data" / "data_summary.json").read_text())["rows_used"]
    assert summary["steps"] == math.ceil(rows["train"] / 16) // 2
    assert "base model from the 'pretrained' channel" in log
    _, _, info = load_artifact(base / "model")
    assert info.metadata["training"]["world_size"] == 2
    assert info.base_model != "distilbert-base-uncased"
