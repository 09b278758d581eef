"""Atomic training checkpoints and the SIGTERM that asks for one.

A checkpoint is a folder ``step-00000120`` under the checkpoint directory holding
``state.pt`` (model, optimizer, scheduler, scaler, best weights, RNG states),
``trainer_state.json`` (step, epoch, sampler position, best metric, ...) and, written last,
``manifest.json`` with every file's size. It is staged in a hidden folder and renamed into place,
so a crash mid-write leaves nothing resume would trust; the manifest also guards against a
partial download when SageMaker restores the folder from S3 for a restarted spot job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "step-"
STATE_FILE = "state.pt"
TRAINER_STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "manifest.json"
# The newest is what resume needs; one more survives a corrupt newest one.
KEEP = 2


def save_checkpoint(
    directory: Path, step: int, state: dict[str, Any], trainer_state: dict[str, Any]
) -> Path:
    """Write ``step-<step>`` atomically and prune all but the newest :data:`KEEP`."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:08d}"
    staging = directory / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    torch.save(state, staging / STATE_FILE)
    (staging / TRAINER_STATE_FILE).write_text(json.dumps(trainer_state, indent=2), "utf-8")
    for name in (STATE_FILE, TRAINER_STATE_FILE):
        _fsync(staging / name)
    sizes = {p.name: p.stat().st_size for p in staging.iterdir()}
    (staging / MANIFEST_FILE).write_text(json.dumps({"step": step, "files": sizes}), "utf-8")
    _fsync(staging / MANIFEST_FILE)
    if final.exists():  # the same step again (SIGTERM right after a periodic save)
        shutil.rmtree(final)
    staging.rename(final)
    _fsync(directory)
    for old in complete_checkpoints(directory)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in directory.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def complete_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints whose manifest matches their files, oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob(f"{PREFIX}*") if p.is_dir() and _is_complete(p)]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(directory: Path) -> Path | None:
    complete = complete_checkpoints(directory)
    return complete[-1] if complete else None


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, trainer_state)``; tensors are loaded onto the CPU."""
    import torch

    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    trainer_state = json.loads((path / TRAINER_STATE_FILE).read_text("utf-8"))
    return state, trainer_state


def _is_complete(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text("utf-8"))
        return all((path / name).stat().st_size == size for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StopSignal:
    """Set by SIGTERM (SageMaker stopping the job, spot reclaim): checkpoint and exit.

    SageMaker waits about two minutes after SIGTERM before SIGKILL; the loop checks
    :attr:`requested` after every optimizer step, so a checkpoint is written well within it.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, signal_name: str) -> None:
        self.signal_name = signal_name
        self._event.set()

    def install(self, *signals: signal.Signals) -> None:
        """Handle ``signals`` (SIGTERM by default); only possible in the main thread."""
        for sig in signals or (signal.SIGTERM,):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.warning(
            "received %s: finishing this step, then checkpointing", signal.Signals(signum).name
        )
        self.request(signal.Signals(signum).name)
