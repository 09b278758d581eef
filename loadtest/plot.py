"""A PNG of throughput and p50/p95/p99 latency against users and time, from locust's history."""

from __future__ import annotations

from pathlib import Path

from loadtest.report import HistoryRow, by_user_count


def plot_history(history: list[HistoryRow], out: Path, *, title: str = "") -> Path:
    """Write the figure to ``out``: top row against users, bottom row against time."""
    import matplotlib

    # A file backend: load tests run headless (CI, containers) and must never open a window.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = by_user_count(history)
    figure, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    figure.suptitle(title or "Load test", fontsize=14)
    if not history:
        for axis in axes.flat:
            axis.text(0.5, 0.5, "no requests recorded", ha="center", va="center")
            axis.set_axis_off()
        figure.savefig(out, dpi=110)
        plt.close(figure)
        return out

    users = [level.users for level in levels]
    throughput, latency = axes[0]
    throughput.plot(users, [lv.requests_per_s for lv in levels], "o-", label="requests/s")
    throughput.plot(
        users, [lv.failures_per_s for lv in levels], "x--", color="tab:red", label="failures/s"
    )
    throughput.set(
        title="Throughput by number of users", xlabel="users", ylabel="requests per second"
    )
    for name, values in (
        ("p50", [lv.p50_ms for lv in levels]),
        ("p95", [lv.p95_ms for lv in levels]),
        ("p99", [lv.p99_ms for lv in levels]),
    ):
        latency.plot(users, values, "o-", label=name)
    latency.set(title="Latency by number of users", xlabel="users", ylabel="milliseconds")

    start = history[0].timestamp
    seconds = [row.timestamp - start for row in history]
    over_time, latency_time = axes[1]
    over_time.plot(seconds, [row.requests_per_s for row in history], label="requests/s")
    over_time.plot(
        seconds, [row.failures_per_s for row in history], color="tab:red", label="failures/s"
    )
    over_time.set(
        title="Throughput and users over time", xlabel="seconds", ylabel="requests per second"
    )
    users_axis = over_time.twinx()
    users_axis.step(
        seconds,
        [row.users for row in history],
        where="post",
        color="tab:gray",
        alpha=0.6,
        label="users",
    )
    users_axis.set_ylabel("users")
    for name, values in (
        ("p50", [row.p50_ms for row in history]),
        ("p95", [row.p95_ms for row in history]),
        ("p99", [row.p99_ms for row in history]),
    ):
        latency_time.plot(seconds, values, label=name)
    latency_time.set(
        title="Latency over time (last ~10 s window)", xlabel="seconds", ylabel="milliseconds"
    )

    for axis in (throughput, latency, latency_time):
        axis.grid(alpha=0.3)
        axis.legend(loc="best")
        axis.set_ylim(bottom=0)
    over_time.grid(alpha=0.3)
    over_time.set_ylim(bottom=0)
    users_axis.set_ylim(bottom=0)
    lines, labels = over_time.get_legend_handles_labels()
    more_lines, more_labels = users_axis.get_legend_handles_labels()
    over_time.legend(lines + more_lines, labels + more_labels, loc="best")
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
