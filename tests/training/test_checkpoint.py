"""Checkpoints: resume trusts only complete ones, the newest two are kept, and each file is
written whole at its final path (what SageMaker's checkpoint sync can see, through inotify)."""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from training.checkpoint import (
    MANIFEST_FILE,
    STATE_FILE,
    TRAINER_STATE_FILE,
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


class _Inotify:
    """Linux's inotify (through libc), the kernel's file-event feed that file-sync agents read:
    which names a watched folder saw created, closed after writing, or renamed in."""

    # <sys/inotify.h>: IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE_SELF
    NAMES: ClassVar[dict[int, str]] = {
        0x8: "close_write",
        0x40: "moved_from",
        0x80: "moved_to",
        0x100: "create",
        0x400: "delete_self",
    }

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        self._paths: dict[int, str] = {}

    def watch(self, path: Path) -> None:
        mask = sum(self.NAMES)
        wd = self._libc.inotify_add_watch(self.fd, str(path).encode(), mask)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        self._paths[wd] = path.name

    def events(self) -> list[tuple[str, str, str]]:
        """``(watched folder, event, name)`` in the order the kernel queued them."""
        found: list[tuple[str, str, str]] = []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return found
        offset = 0
        while offset < len(data):
            wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
            offset += 16 + length
            for bit, label in self.NAMES.items():
                if mask & bit:
                    found.append((self._paths.get(wd, "?"), label, name))
        return found

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def inotify() -> Iterator[_Inotify]:
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's")
    feed = _Inotify()
    yield feed
    feed.close()


def test_nothing_is_renamed_into_the_synced_folder(tmp_path: Path, inotify: _Inotify) -> None:
    # SageMaker uploads the checkpoint folder as it changes; AWS does not say whether a folder
    # renamed into it is uploaded. Only the checkpoint's own folder may appear there.
    save(tmp_path, 10)
    inotify.watch(tmp_path)

    save(tmp_path, 20)

    top = [(event, name) for watched, event, name in inotify.events() if watched == tmp_path.name]
    assert ("create", "step-00000020") in top
    assert [e for e in top if e[0] in ("moved_to", "moved_from")] == []
    assert {name for event, name in top if event == "create"} == {"step-00000020"}


def test_each_file_is_closed_complete_at_its_final_path_the_manifest_last(
    tmp_path: Path, inotify: _Inotify
) -> None:
    # A save that died before writing anything left the folder; the next save of that step
    # writes into it, so a watch on it sees every file the sync agent would.
    folder = tmp_path / "step-00000030"
    folder.mkdir()
    inotify.watch(folder)

    assert save(tmp_path, 30) == folder

    closed = [name for watched, event, name in inotify.events() if event == "close_write"]
    assert sorted(closed) == sorted([STATE_FILE, TRAINER_STATE_FILE, MANIFEST_FILE])
    assert closed[-1] == MANIFEST_FILE
    assert latest_checkpoint(tmp_path) == folder
