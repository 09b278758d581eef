"""The serving benchmarks' CPU accounting, against real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from load_generator import server_cpu_seconds

# Spins until it has used 1 s of CPU, says so in a file, then idles until it is killed.
SPIN = """
import sys, time
while time.process_time() < 1.0:
    pass
open(sys.argv[1], "w").close()
time.sleep(60)
"""


def _wait_for(marker: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert time.monotonic() < deadline, "the spinning process never finished its second"
        time.sleep(0.05)


def test_counts_a_session_member_its_leader_left_behind(tmp_path: Path) -> None:
    # What a peer's launcher does: start a server in the background and exit, so that the
    # server is re-parented to init; only the session still ties it to the launcher.
    marker = tmp_path / "spun"
    launcher = subprocess.Popen(
        ["/bin/sh", "-c", f'"{sys.executable}" -c \'{SPIN}\' "{marker}" & exit 0'],
        start_new_session=True,
    )
    launcher.wait()
    try:
        _wait_for(marker)
        assert server_cpu_seconds(launcher.pid) >= 0.9
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)


def test_counts_descendants(tmp_path: Path) -> None:
    marker = tmp_path / "spun"
    child = subprocess.Popen([sys.executable, "-c", SPIN, str(marker)])
    try:
        _wait_for(marker)
        assert server_cpu_seconds(child.pid) >= 0.9
        # The child is this test's descendant, so it counts in this process's figure too.
        assert server_cpu_seconds(os.getpid()) >= 0.9 + time.process_time()
    finally:
        child.kill()
        child.wait()
