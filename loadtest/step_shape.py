"""A step-load shape: add users step by step until latency or errors cross a threshold.

Kept out of locustfile.py because locust uses the first shape class it finds in the loaded
files for every run; ``python -m loadtest --step-load`` adds this file to ``-f``.

Reads ``--users`` (the most users), ``--spawn-rate`` and ``--run-time`` (use_common_options),
plus ``--step-users``, ``--step-time``, ``--stop-p95-ms`` and ``--stop-failure-rate`` from the
locustfile's options. The run ends at the first step whose p95 or failure rate is over its
threshold, at ``--run-time``, or one step after reaching ``--users``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from locust import LoadTestShape

from loadtest.report import percentile

logger = logging.getLogger(__name__)


class StepLoadShape(LoadTestShape):
    use_common_options = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._step = 0
        # Requests, failures and response times (ms -> count) when the current step began.
        self._baseline: tuple[int, int, Counter[float]] = (0, 0, Counter())

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options: Any = self.runner.environment.parsed_options
        max_users = max(int(options.num_users or 1), 1)
        step_users = options.step_users or max(1, max_users // 8)
        step_time = max(float(options.step_time), 1.0)
        run_time = self.get_run_time()  # type: ignore[no-untyped-call]
        if options.run_time and run_time >= options.run_time:
            return None
        step = int(run_time // step_time)
        if step > self._step:
            if self._over_threshold(options):
                return None
            if step_users * (self._step + 1) >= max_users:
                logger.info("step load: held %d users for a full step, done", max_users)
                return None
            self._step = step
            total = self.runner.stats.total
            self._baseline = (
                total.num_requests,
                total.num_failures,
                Counter({float(ms): n for ms, n in total.response_times.items()}),
            )
        users = min(max_users, step_users * (self._step + 1))
        return users, float(options.spawn_rate or users)

    def _over_threshold(self, options: Any) -> bool:
        """Whether the step that just ended crossed the latency or the failure threshold."""
        assert self.runner is not None
        total = self.runner.stats.total
        requests = total.num_requests - self._baseline[0]
        failures = total.num_failures - self._baseline[1]
        failure_rate = failures / requests if requests else 0.0
        # This step's own requests only: the run's totals minus those when the step began.
        now = Counter({float(ms): n for ms, n in total.response_times.items()})
        p95 = percentile(now - self._baseline[2], 0.95)
        users = self.runner.user_count
        if options.stop_p95_ms and not math.isnan(p95) and p95 > options.stop_p95_ms:
            logger.info(
                "step load: p95 %.0f ms > %.0f ms at %d users, stopping",
                p95,
                options.stop_p95_ms,
                users,
            )
            return True
        if failure_rate > options.stop_failure_rate:
            logger.info(
                "step load: failure rate %.3f > %.3f at %d users, stopping",
                failure_rate,
                options.stop_failure_rate,
                users,
            )
            return True
        return False
