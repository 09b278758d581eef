"""Training checkpoints, written so that SageMaker's checkpoint sync sees whole files, and the
SIGTERM that asks for one.

A checkpoint is a folder ``step-00000120`` under the checkpoint directory holding
``state.pt`` (model, optimizer, scheduler, scaler, best weights, RNG states),
``trainer_state.json`` (step, epoch, sampler position, best metric, ...) and, written last,
``manifest.json`` with every file's size. Only a folder whose manifest matches its files is
resumed from, so a crash mid-write, a partial upload or a partial restore from S3 is never
trusted.

Each file is written once, in place, and closed complete; nothing is renamed into the
checkpoint directory. AWS documents that SageMaker syncs the local checkpoint path to S3
during training and deletes in S3 what is deleted locally, but not how it notices files, so
whether a folder created by ``rename()`` would be uploaded is not settled by the docs. Files
closed at their final paths are what any file-sync agent uploads (docs/training.md says how
to check it on a real spot job).
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
from typing import IO, Any

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
    """Write ``step-<step>`` file by file, the manifest last; prune all but the newest
    :data:`KEEP` and any unfinished folder."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:08d}"
    if _is_complete(final):  # the same step again (SIGTERM right after a periodic save)
        return final
    final.mkdir(exist_ok=True)  # an unfinished one from a crash is written over, in place
    (final / MANIFEST_FILE).unlink(missing_ok=True)
    with (final / STATE_FILE).open("wb") as file:
        torch.save(state, file)
        _flush(file)
    _write_text(final / TRAINER_STATE_FILE, json.dumps(trainer_state, indent=2))
    sizes = {name: (final / name).stat().st_size for name in (STATE_FILE, TRAINER_STATE_FILE)}
    _write_text(final / MANIFEST_FILE, json.dumps({"step": step, "files": sizes}))
    _fsync(final)
    complete = complete_checkpoints(directory)
    for old in complete[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for unfinished in set(directory.glob(f"{PREFIX}*")) - set(complete) - {final}:
        shutil.rmtree(unfinished, ignore_errors=True)
    for stale in directory.glob(".tmp-*"):  # staging folders of earlier versions
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as file:
        file.write(text)
        _flush(file)


def _flush(file: IO[Any]) -> None:
    """On disk before the file is closed: the manifest must never be older than the data."""
    file.flush()
    os.fsync(file.fileno())


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
