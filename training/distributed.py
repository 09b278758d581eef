"""Several processes, one job: relaunch under ``torchrun`` and the collectives the loop needs.

SageMaker starts one container per host and runs ``train`` once in each. When the job spans
several hosts, or this host has several GPUs (or ``num_processes`` asks for more than one
process, which is how the CPU tests use gloo), that first process becomes a launcher: it
runs ``torchrun`` with the first host as the rendezvous master, forwards SIGTERM to it, and
returns its exit code. The workers see ``LOCAL_RANK``/``WORLD_SIZE`` and train under DDP
(NCCL on GPUs, gloo on CPUs); only rank 0 writes the model and the reports.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from training.sagemaker_env import Cluster

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MASTER_PORT = 29500
# SageMaker SIGKILLs a training container 120 s after its SIGTERM (StopTrainingJob, MaxRuntime;
# a spot reclaim comes with EC2's two-minute notice). torchrun SIGKILLs its workers 30 s after
# passing SIGTERM on, unless told otherwise, which a large model's checkpoint can outlast. The
# workers get SageMaker's window, less a little for torchrun and the launcher to exit.
SAGEMAKER_SIGTERM_GRACE_S = 120
WORKER_SHUTDOWN_TIMEOUT_S = SAGEMAKER_SIGTERM_GRACE_S - 10
T = TypeVar("T")


@dataclass(frozen=True)
class LaunchPlan:
    """How many processes on how many hosts, and where they meet."""

    nnodes: int
    nproc_per_node: int
    node_rank: int
    master_addr: str
    master_port: int
    network_interface: str | None

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node


def plan_launch(
    cluster: Cluster, num_processes: int | None, environ: Mapping[str, str]
) -> LaunchPlan:
    """One process per GPU (or ``num_processes``) on every host of the cluster."""
    gpus = cluster.num_gpus if cluster.num_gpus is not None else _cuda_device_count()
    per_node = num_processes or max(gpus, 1)
    return LaunchPlan(
        nnodes=len(cluster.hosts),
        nproc_per_node=per_node,
        node_rank=cluster.node_rank,
        master_addr=cluster.hosts[0],
        master_port=int(environ.get("MASTER_PORT") or MASTER_PORT),
        network_interface=cluster.network_interface,
    )


def is_worker(environ: Mapping[str, str]) -> bool:
    """True inside a process that torchrun started."""
    return "LOCAL_RANK" in environ and "WORLD_SIZE" in environ


def torchrun_command(plan: LaunchPlan, module_args: list[str]) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={plan.nproc_per_node}",
        f"--shutdown-timeout={WORKER_SHUTDOWN_TIMEOUT_S}",
    ]
    if plan.nnodes == 1:
        # One host: a private rendezvous on a free local port.
        command.append("--standalone")
    else:
        command += [
            f"--nnodes={plan.nnodes}",
            f"--node-rank={plan.node_rank}",
            f"--master-addr={plan.master_addr}",
            f"--master-port={plan.master_port}",
        ]
    return [*command, *module_args]


def launch(plan: LaunchPlan, module_args: list[str], environ: Mapping[str, str]) -> int:
    """Run torchrun until it exits; SIGTERM/SIGINT are passed on so workers can checkpoint."""
    env = dict(environ)
    if plan.network_interface:
        env.setdefault("NCCL_SOCKET_IFNAME", plan.network_interface)
        env.setdefault("GLOO_SOCKET_IFNAME", plan.network_interface)
    command = torchrun_command(plan, module_args)
    log.info("launching %d processes on this host: %s", plan.nproc_per_node, " ".join(command))
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class DistContext:
    """This process's rank and device; world_size 1 means no process group."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(environ: Mapping[str, str]) -> DistContext:
    """Join the process group torchrun set up (or stand alone), and pick this rank's device."""
    import torch
    import torch.distributed as dist

    rank = int(environ.get("RANK", "0"))
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    world_size = int(environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown(ctx: DistContext) -> None:
    import torch.distributed as dist

    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when any rank says True (all ranks stop at the same step)."""
    if not ctx.distributed:
        return flag
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def all_gather(obj: T, ctx: DistContext) -> list[T]:
    """Every rank's ``obj``, in rank order (pickled; for small things like predictions)."""
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def _cuda_device_count() -> int:
    import torch

    return int(torch.cuda.device_count())
