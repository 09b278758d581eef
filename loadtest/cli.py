"""``python -m loadtest``: one headless, time-bounded locust run with reports, a plot and a gate.

Runs locust in a child process (locust monkey-patches the standard library with gevent on
import, which must not leak into the caller), then reads its CSV reports, draws the plot and
applies the thresholds. Writes into ``--out``:

    locust_stats.csv, locust_stats_history.csv, locust_failures.csv, locust_exceptions.csv
    locust_stats.json   the final statistics the gate reads
    report.html     locust's HTML report
    locust.log      locust's own output
    loadtest.png    throughput and p50/p95/p99 latency against users and time
    summary.json    totals, per-user-count levels, thresholds and the gate's verdict

Exit codes: 0 the gate passed, 1 it failed, 2 bad usage, 3 locust itself failed or no report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtest import API_KEY_ENV
from loadtest.gate import Thresholds, evaluate
from loadtest.plot import plot_history
from loadtest.report import by_user_count, read_history, read_totals

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_LOCUST_ERROR = 0, 1, 2, 3
CSV_PREFIX = "locust"
OUTPUTS = (
    *(f"{CSV_PREFIX}_{kind}.csv" for kind in ("stats", "stats_history", "failures", "exceptions")),
    f"{CSV_PREFIX}_stats.json",
    "report.html",
    "loadtest.png",
    "summary.json",
    "locust.log",
)
USER_CLASSES = {"server": "ServerUser", "api": "ApiUser", "endpoint": "EndpointUser"}
_PACKAGE_DIR = Path(__file__).resolve().parent
# Time locust may take beyond --run-time to start, stop its users and write its reports.
_GRACE_SECONDS = 60.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Headless load test of the model server, the API URL or a SageMaker "
        "endpoint, with CSV/HTML reports, a plot and a pass/fail gate.",
    )
    parser.add_argument("--target", choices=sorted(USER_CLASSES), default="server")
    parser.add_argument(
        "--host",
        default="",
        help="server URL, API stage URL, or (endpoint) a sagemaker-runtime URL override",
    )
    parser.add_argument("--users", type=_positive_int, default=32, help="concurrent users (most)")
    parser.add_argument("--spawn-rate", type=float, default=8.0, help="users started per second")
    parser.add_argument("--run-time", default="1m", help="e.g. 30s, 5m, 1h30m")
    parser.add_argument("--out", type=Path, required=True, help="directory for the reports")
    gate = parser.add_argument_group("gate (exit 1 when exceeded)")
    gate.add_argument("--max-failure-rate", type=float, default=0.01)
    gate.add_argument("--max-p95-ms", type=float, default=None)
    gate.add_argument("--max-p99-ms", type=float, default=None)
    gate.add_argument("--min-requests", type=int, default=1)
    target = parser.add_argument_group("targets")
    target.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV, ""),
        help=f"x-api-key for --target api (default: ${API_KEY_ENV})",
    )
    target.add_argument(
        "--endpoint-name", default="", help="SageMaker endpoint (--target endpoint)"
    )
    target.add_argument("--region", default=None, help="AWS region (--target endpoint)")
    target.add_argument("--request-timeout", type=float, default=60.0)
    traffic = parser.add_argument_group("traffic")
    traffic.add_argument("--titles", type=Path, default=None, help="newsCorpora-format file")
    traffic.add_argument("--batch-ratio", type=float, default=0.2)
    traffic.add_argument("--batch-size", type=_positive_int, default=8)
    traffic.add_argument("--top-k", type=_positive_int, default=1)
    traffic.add_argument("--think-min", type=float, default=0.5, help="seconds")
    traffic.add_argument("--think-max", type=float, default=1.5, help="seconds")
    traffic.add_argument("--max-requests", type=int, default=0, help="stop after N (0: no limit)")
    step = parser.add_argument_group("step load (ramp until latency or errors cross a threshold)")
    step.add_argument("--step-load", action="store_true")
    step.add_argument("--step-users", type=int, default=0, help="users per step (0: users/8)")
    step.add_argument("--step-time", default="30s", help="time per step")
    step.add_argument("--stop-p95-ms", type=float, default=0.0, help="0: no latency stop")
    step.add_argument("--stop-failure-rate", type=float, default=0.05)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_seconds = parse_duration(args.run_time)
        step_seconds = parse_duration(args.step_time)
    except ValueError as exc:
        parser.error(str(exc))
    if run_seconds < 1:
        parser.error("--run-time must be at least 1s: the run is always bounded")
    if args.target != "endpoint" and not args.host:
        parser.error(f"--target {args.target} needs --host")
    if args.target == "endpoint" and not args.endpoint_name:
        parser.error("--target endpoint needs --endpoint-name")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        # A report left by an earlier run must never be read as this run's.
        (out / name).unlink(missing_ok=True)
    _say(f"locust: {args.users} users, {args.run_time}, {args.target} -> {args.host or 'AWS'}")
    if not run_locust(args, out, run_seconds, step_seconds):
        return EXIT_LOCUST_ERROR
    try:
        totals = read_totals(out / f"{CSV_PREFIX}_stats.json")
        history = read_history(out / f"{CSV_PREFIX}_stats_history.csv")
    except (OSError, ValueError, KeyError) as exc:
        _say(f"error: cannot read locust's reports: {exc}")
        return EXIT_LOCUST_ERROR

    title = f"{args.target}: {args.host or args.endpoint_name}"
    plot_history(history, out / "loadtest.png", title=title)
    thresholds = Thresholds(
        max_failure_rate=args.max_failure_rate,
        max_p95_ms=args.max_p95_ms,
        max_p99_ms=args.max_p99_ms,
        min_requests=args.min_requests,
    )
    problems = evaluate(totals, thresholds)
    summary = {
        "target": args.target,
        "passed": not problems,
        "problems": problems,
        "totals": asdict(totals) | {"failure_rate": totals.failure_rate},
        "thresholds": asdict(thresholds),
        "levels": [asdict(level) for level in by_user_count(history)],
    }
    (out / "summary.json").write_text(
        json.dumps(_without_nan(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    _say(
        f"{totals.requests} requests, {totals.failures} failures "
        f"({100 * totals.failure_rate:.2f}%), {totals.requests_per_s:.1f} req/s, "
        f"p50 {totals.p50_ms:.0f} ms, p95 {totals.p95_ms:.0f} ms, p99 {totals.p99_ms:.0f} ms"
    )
    for problem in problems:
        _say(f"gate FAILED: {problem}")
    if not problems:
        _say("gate passed")
    _say(f"reports in {out}")
    return EXIT_FAILED if problems else EXIT_PASSED


def run_locust(args: argparse.Namespace, out: Path, run_seconds: int, step_seconds: int) -> bool:
    """Run locust to completion, its output in ``out/locust.log``; False when it failed."""
    env = dict(os.environ)
    # The locustfile imports this package; make it importable however locust was started.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PACKAGE_DIR.parent), env.get("PYTHONPATH", "")) if p
    )
    if args.api_key:
        env[API_KEY_ENV] = args.api_key  # through the environment: argv is visible in `ps`
    command = locust_command(args, out, run_seconds, step_seconds)
    with (out / "locust.log").open("wb") as log:
        try:
            completed = subprocess.run(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=run_seconds + _GRACE_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _say(f"error: locust did not finish in time; see {out / 'locust.log'}")
            return False
    # locust runs with --exit-code-on-error 0: any other status is locust failing, not the target.
    if completed.returncode != 0:
        _say(f"error: locust exited with {completed.returncode}; see {out / 'locust.log'}")
        return False
    return True


def locust_command(
    args: argparse.Namespace, out: Path, run_seconds: int, step_seconds: int
) -> list[str]:
    """The locust command line for ``args``."""
    locustfiles = [str(_PACKAGE_DIR / "locustfile.py")]
    if args.step_load:
        locustfiles.append(str(_PACKAGE_DIR / "step_shape.py"))
    command = [
        sys.executable, "-m", "locust",
        "-f", ",".join(locustfiles),
        "--headless",
        "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{run_seconds}s",
        "--csv", str(out / CSV_PREFIX),
        # Windowed percentiles in the history (the plot needs latency at each load level).
        "--csv-full-history",
        "--html", str(out / "report.html"),
        # Written once at shutdown with every request: the gate reads this, not the CSV.
        "--json-file", str(out / f"{CSV_PREFIX}_stats"),
        "--only-summary",
        # Failures are the gate's business: locust's own exit status then means it crashed.
        "--exit-code-on-error", "0",
        "--batch-ratio", str(args.batch_ratio),
        "--batch-size", str(args.batch_size),
        "--top-k", str(args.top_k),
        "--think-min", str(args.think_min),
        "--think-max", str(args.think_max),
        "--max-requests", str(args.max_requests),
        "--request-timeout", str(args.request_timeout),
        "--step-users", str(args.step_users),
        "--step-time", str(step_seconds),
        "--stop-p95-ms", str(args.stop_p95_ms),
        "--stop-failure-rate", str(args.stop_failure_rate),
    ]  # fmt: skip
    if args.host:
        command += ["--host", args.host]
    if args.titles is not None:
        command += ["--titles", str(args.titles)]
    if args.endpoint_name:
        command += ["--endpoint-name", args.endpoint_name]
    if args.region:
        command += ["--region", args.region]
    command.append(USER_CLASSES[args.target])
    return command


def parse_duration(text: str) -> int:
    """Seconds in a locust-style duration: ``90``, ``30s``, ``5m``, ``1h30m``."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _without_nan(value: Any) -> Any:
    """NaN (a latency nobody measured) as null: NaN is not valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
