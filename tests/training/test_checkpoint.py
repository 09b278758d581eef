"""Checkpoints are atomic: resume trusts only complete ones, and keeps the newest two."""

from __future__ import annotations

import signal
from pathlib import Path

import torch

from training.checkpoint import (
    STATE_FILE,
    StopSignal,
    complete_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def save(directory: Path, step: int) -> Path:
    state = {"model": {"weight": torch.full((2, 3), float(step))}, "rng": [torch.get_rng_state()]}
    return save_checkpoint(directory, step, state, {"step": step, "fingerprint": "f"})


def test_round_trip_and_newest_wins(tmp_path: Path):
    save(tmp_path, 10)
    newest = save(tmp_path, 20)
    assert latest_checkpoint(tmp_path) == newest == tmp_path / "step-00000020"
    state, trainer_state = load_checkpoint(newest)
    assert torch.equal(state["model"]["weight"], torch.full((2, 3), 20.0))
    assert trainer_state == {"step": 20, "fingerprint": "f"}


def test_only_the_newest_two_are_kept(tmp_path: Path):
    for step in (5, 10, 15, 20):
        save(tmp_path, step)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-00000015", "step-00000020"]


def test_a_truncated_or_unfinished_checkpoint_is_not_trusted(tmp_path: Path):
    good = save(tmp_path, 10)
    torn = save(tmp_path, 20)
    # A crash (or a partial S3 restore) left a shorter state file behind.
    data = (torn / STATE_FILE).read_bytes()
    (torn / STATE_FILE).write_bytes(data[: len(data) // 2])
    # A staging folder from a writer that died before the rename, and one without a manifest.
    (tmp_path / ".tmp-step-00000030-123").mkdir()
    (tmp_path / "step-00000040").mkdir()
    (tmp_path / "step-00000040" / STATE_FILE).write_bytes(data)
    assert latest_checkpoint(tmp_path) == good


def test_no_checkpoint_directory(tmp_path: Path):
    assert latest_checkpoint(tmp_path / "missing") is None


def test_sigterm_sets_the_stop_flag():
    stop = StopSignal()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop.install(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stop.requested
    assert stop.signal_name == "SIGTERM"
