"""The locustfile under plain ``locust``, as docs/loadtest.md shows it: no user class named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devtools.paths import REPO_ROOT
from devtools.processes import ServerProcess, offline_env


def test_plain_locust_runs_the_server_user_only(
    model_server: ServerProcess, tmp_path: Path
) -> None:
    # locust's own default is every user class of the file, all pointed at one host: ApiUser
    # and EndpointUser would fail against the model server (and EndpointUser needs a name).
    env = offline_env()
    env.pop("LOCUST_USER_CLASSES", None)
    stats = tmp_path / "stats"
    command = [
        sys.executable, "-m", "locust",
        "-f", "loadtest/locustfile.py",
        "--host", model_server.url,
        "--headless",
        "--users", "3",
        "--spawn-rate", "10",
        "--run-time", "10s",
        "--think-min", "0",
        "--think-max", "0.02",
        "--max-requests", "15",
        "--json-file", str(stats),
        "--only-summary",
    ]  # fmt: skip
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    # locust exits 1 when any request failed.
    assert completed.returncode == 0, completed.stdout + completed.stderr
    entries = json.loads(Path(f"{stats}.json").read_text())
    assert {e["name"] for e in entries} <= {"/invocations [single]", "/invocations [batch]"}
    assert sum(e["num_requests"] for e in entries) >= 15
    assert sum(e["num_failures"] for e in entries) == 0
