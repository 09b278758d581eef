"""The EDA report's plots: class balance, title lengths, story sizes, top publishers."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.data import Splits

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SPLIT_COLORS = {"train": "#4c72b0", "validation": "#dd8452", "test": "#55a868"}


def write_plots(
    splits: Splits, report: Mapping[str, Any], token_counts: Sequence[int] | None, out: Path
) -> list[str]:
    """Write the PNGs into ``out``; return their file names, in the report's order."""
    from matplotlib.figure import Figure

    written = []

    figure = Figure(figsize=(9, 5), layout="constrained")
    _plot_class_balance(figure.add_subplot(), report)
    written.append(_save(figure, out, "class_balance.png"))

    figure = Figure(figsize=(9, 5), layout="constrained")
    lengths = [len(e.text) for items in splits.by_name().values() for e in items]
    _plot_histogram(
        figure.add_subplot(),
        lengths,
        title="Title length in characters",
        xlabel="characters per title",
    )
    written.append(_save(figure, out, "title_length_chars.png"))

    if token_counts is not None:
        figure = Figure(figsize=(9, 5), layout="constrained")
        axes = figure.add_subplot()
        _plot_histogram(
            axes,
            list(token_counts),
            title="Title length in tokens (special tokens included)",
            xlabel="tokens per title",
        )
        max_length = int(report["max_length"])
        share = report["truncated_share"][str(max_length)]
        axes.axvline(
            max_length,
            color="#c44e52",
            linestyle="--",
            label=f"max_length {max_length}: truncates {share:.2%} of titles",
        )
        axes.legend(loc="best")
        axes.set_xlim(0, max(max(token_counts, default=1), max_length) * 1.05)
        written.append(_save(figure, out, "title_length_tokens.png"))

    sizes = [
        int(n)
        for n in Counter(
            e.story for items in splits.by_name().values() for e in items if e.story
        ).values()
    ]
    if sizes:
        figure = Figure(figsize=(9, 5), layout="constrained")
        axes = figure.add_subplot()
        _plot_histogram(
            axes,
            sizes,
            title="Rows per STORY cluster",
            xlabel="rows in the story (log scale)",
            log_bins=True,
        )
        axes.set_ylabel("stories")
        written.append(_save(figure, out, "story_sizes.png"))

    top = report["publishers"]["top"]
    if top:
        figure = Figure(figsize=(9, 0.9 + 0.35 * len(top)), layout="constrained")
        axes = figure.add_subplot()
        names = [str(p["publisher"]) for p in reversed(top)]
        axes.barh(names, [int(p["rows"]) for p in reversed(top)], color="#4c72b0")
        axes.set_xlabel("rows")
        axes.xaxis.set_major_formatter(_THOUSANDS)
        axes.set_title(f"Top {len(top)} publishers by rows")
        written.append(_save(figure, out, "top_publishers.png"))
    return written


def _plot_class_balance(axes: Axes, report: Mapping[str, Any]) -> None:
    labels = list(report["labels"])
    balance = report["class_balance"]
    width = 0.8 / len(balance)
    for offset, (name, stats) in enumerate(balance.items()):
        positions = [i + (offset - (len(balance) - 1) / 2) * width for i in range(len(labels))]
        shares = [100 * stats["shares"][label] for label in labels]
        bars = axes.bar(
            positions,
            shares,
            width,
            label=f"{name} ({stats['rows']:,} rows)",
            color=SPLIT_COLORS.get(name),
        )
        axes.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    axes.set_xticks(range(len(labels)), [label.replace("_", " ") for label in labels])
    axes.set_ylabel("share of the split's rows (%)")
    axes.set_xlabel("label")
    axes.set_title(f"Class balance per split ({report['split_method']} split)")
    axes.set_ylim(0, max(100 * max(s["shares"].values()) for s in balance.values()) * 1.2)
    axes.legend()


def _plot_histogram(
    axes: Axes, values: Sequence[int], *, title: str, xlabel: str, log_bins: bool = False
) -> None:
    high = max(values, default=1)
    edges: list[float] | int
    if log_bins:
        # Story sizes span 1 to thousands: logarithmic bins keep the small stories visible.
        edges = [1.0]
        while edges[-1] <= high:
            edges.append(edges[-1] * 1.25)
        axes.set_xscale("log")
        ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t <= high]
        axes.set_xticks(ticks, [str(t) for t in ticks])
    else:
        low = min(values, default=0)
        # Integer-aligned bins of equal width (at most ~80 bars): fractional bin edges over
        # integer data would put one value in some bars and two in others.
        width = max(1, math.ceil((high - low + 1) / 80))
        edges = [v - 0.5 for v in range(low, high + width + 1, width)]
    axes.hist(values, bins=edges, color="#4c72b0", edgecolor="white", linewidth=0.3)
    median = statistics.median(values) if values else 0
    axes.axvline(median, color="black", linestyle=":", linewidth=1, label=f"median {median:g}")
    axes.set_title(f"{title} · n = {len(values):,}")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("titles")
    axes.yaxis.set_major_formatter(_THOUSANDS)
    axes.legend(loc="best")


# Tick labels like 16,000 rather than 16000.
_THOUSANDS = "{x:,.0f}"


def _save(figure: Figure, out: Path, name: str) -> str:
    figure.savefig(out / name, dpi=110)
    return name
