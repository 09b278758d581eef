"""Drift of live traffic from the training data: captured requests against the EDA report.

Reads what SageMaker's data capture wrote (``training.captured_traffic``: JSON Lines, one
record per request, from a local folder or an ``s3://`` prefix) and compares it with the
reference the model was trained on:

- the class mix of the predictions against the training split's label shares;
- the token lengths of the texts (the model's own tokenizer) against the EDA report's;
- the share of texts the model truncates (over its ``max_length``) and of texts with an
  unknown token, against the report's truncated share and a fixed ceiling;
- the scores: the mean top score against the test accuracy of ``evaluation.json`` when it
  is there (a calibrated model's mean confidence is close to its accuracy).

It writes ``drift.md``, ``drift.png`` and ``drift.json`` and exits 1 when a figure is over
its threshold, so a scheduled run fails loudly. Exit 2: the input or reference is unusable.

    python -m training.drift s3://bucket/prefix/capture/news-classifier/ \\
        --reference model/ --eda output/eda/report.json --output drift/
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_artifact import ArtifactError, read_info
from training.captured_traffic import Traffic, captured_lines, read_traffic
from training.errors import JobError

EXIT_DRIFT = 1
EXIT_UNUSABLE = 2
TOKENIZE_BATCH = 4_096


@dataclass(frozen=True)
class Thresholds:
    """When a figure counts as drift. Each is documented in the report next to its value."""

    class_mix_distance: float = 0.15  # total variation distance of label shares
    token_p50_ratio: float = 1.5  # traffic median tokens / reference median, either way
    truncated_share_increase: float = 0.05  # absolute, over the reference's share
    unknown_token_share: float = 0.05  # absolute share of texts with an unknown token
    confidence_drop: float = 0.10  # reference accuracy - mean top score


# --- comparing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokenized:
    lengths: list[int]
    with_unknown: int


def tokenize(texts: Sequence[str], model_dir: Path) -> Tokenized:
    """Token counts (special tokens included, nothing truncated) and unknown-token texts."""
    tokenizer_file = model_dir / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise JobError(f"{model_dir} has no tokenizer.json; pass the model artifact folder")
    from tokenizers import Tokenizer

    fast = Tokenizer.from_file(str(tokenizer_file))
    fast.no_truncation()
    fast.no_padding()
    unknown_id = _unknown_id(fast, model_dir)
    lengths: list[int] = []
    with_unknown = 0
    for start in range(0, len(texts), TOKENIZE_BATCH):
        for encoding in fast.encode_batch(list(texts[start : start + TOKENIZE_BATCH])):
            lengths.append(len(encoding.ids))
            with_unknown += unknown_id is not None and unknown_id in encoding.ids
    return Tokenized(lengths, with_unknown)


def _unknown_id(fast: Any, model_dir: Path) -> int | None:
    config = model_dir / "tokenizer_config.json"
    unknown = "[UNK]"  # BERT's; the tokenizer's config names its own
    if config.is_file():
        unknown = str(json.loads(config.read_text(encoding="utf-8")).get("unk_token") or unknown)
    found = fast.token_to_id(unknown)
    return int(found) if found is not None else None


def _shares(labels: Sequence[str], names: Sequence[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {name: counts.get(name, 0) / (len(labels) or 1) for name in names}


def _percentile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0.0


def compare(
    traffic: Traffic,
    tokens: Tokenized,
    *,
    labels: Sequence[str],
    max_length: int,
    eda: Mapping[str, Any],
    reference_accuracy: float | None,
    thresholds: Thresholds,
) -> dict[str, Any]:
    """The report's figures and, per check, its value, threshold and verdict."""
    n = len(traffic.texts)
    reference_mix = dict(eda["class_balance"]["train"]["shares"])
    traffic_mix = _shares(traffic.labels, labels)
    distance = 0.5 * sum(abs(traffic_mix[k] - reference_mix.get(k, 0.0)) for k in labels)
    truncated = sum(length > max_length for length in tokens.lengths) / (n or 1)
    reference_truncated = eda.get("truncated_share", {}).get(str(max_length))
    reference_tokens = eda.get("title_tokens")
    p50 = _percentile(tokens.lengths, 0.5)
    mean_score = statistics.fmean(traffic.scores) if traffic.scores else 0.0

    checks: dict[str, dict[str, Any]] = {
        "class_mix_distance": _check(distance, thresholds.class_mix_distance),
        "unknown_token_share": _check(
            tokens.with_unknown / (n or 1), thresholds.unknown_token_share
        ),
    }
    if reference_tokens and reference_tokens.get("p50"):
        ratio = p50 / float(reference_tokens["p50"])
        checks["token_p50_ratio"] = _check(
            max(ratio, 1 / ratio) if ratio else math.inf, thresholds.token_p50_ratio
        )
    if reference_truncated is not None:
        checks["truncated_share_increase"] = _check(
            truncated - float(reference_truncated), thresholds.truncated_share_increase
        )
    if reference_accuracy is not None:
        checks["confidence_drop"] = _check(
            reference_accuracy - mean_score, thresholds.confidence_drop
        )
    return {
        "records": traffic.records,
        "unreadable_records": traffic.unreadable,
        "texts": n,
        "labels": list(labels),
        "max_length": max_length,
        "class_mix": {"traffic": traffic_mix, "reference": reference_mix},
        "tokens": {
            "traffic": {
                "mean": statistics.fmean(tokens.lengths) if tokens.lengths else 0.0,
                "p50": p50,
                "p90": _percentile(tokens.lengths, 0.9),
                "p99": _percentile(tokens.lengths, 0.99),
                "max": float(max(tokens.lengths, default=0)),
            },
            "reference": reference_tokens,
        },
        "truncated_share": {"traffic": truncated, "reference": reference_truncated},
        "unknown_token_share": tokens.with_unknown / (n or 1),
        "scores": {
            "mean_top_score": mean_score,
            "below_0_5": sum(score < 0.5 for score in traffic.scores) / (n or 1),
            "reference_accuracy": reference_accuracy,
        },
        "checks": checks,
        "drift": any(check["over"] for check in checks.values()),
    }


def _check(value: float, threshold: float) -> dict[str, Any]:
    return {"value": value, "threshold": threshold, "over": value > threshold}


# --- writing --------------------------------------------------------------------------------


def render_markdown(report: Mapping[str, Any]) -> str:
    verdict = "**drift above thresholds**" if report["drift"] else "within thresholds"
    lines = [
        "# Traffic drift report",
        "",
        f"- {report['records']:,} captured records, {report['texts']:,} texts "
        f"({report['unreadable_records']:,} records unreadable)",
        f"- verdict: {verdict}",
        "",
        "| check | value | threshold | |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, check in report["checks"].items():
        flag = "over" if check["over"] else "ok"
        lines.append(f"| {name} | {check['value']:.4f} | {check['threshold']:.4f} | {flag} |")
    mix = report["class_mix"]
    lines += ["", "## Class mix of the predictions", "", "| label | traffic | training |"]
    lines.append("| --- | ---: | ---: |")
    for label in report["labels"]:
        lines.append(
            f"| {label} | {mix['traffic'][label]:.2%} | {mix['reference'].get(label, 0.0):.2%} |"
        )
    tokens = report["tokens"]
    lines += ["", "## Token lengths", "", "| | mean | p50 | p90 | p99 | max |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for side in ("traffic", "reference"):
        stats = tokens[side]
        if stats:
            lines.append(
                f"| {side} | {stats['mean']:.1f} | {stats['p50']:.0f} | {stats['p90']:.0f} | "
                f"{stats['p99']:.0f} | {stats['max']:.0f} |"
            )
    truncated, scores = report["truncated_share"], report["scores"]
    reference_truncated = truncated["reference"]
    lines += [
        "",
        f"Truncated at max_length {report['max_length']}: {truncated['traffic']:.2%} of the "
        "traffic"
        + (f", {reference_truncated:.2%} of the training titles." if reference_truncated else "."),
        f"Texts with an unknown token: {report['unknown_token_share']:.2%}.",
        f"Mean top score {scores['mean_top_score']:.3f}; below 0.5: {scores['below_0_5']:.2%}"
        + (
            f"; test accuracy {scores['reference_accuracy']:.3f}."
            if scores["reference_accuracy"] is not None
            else "."
        ),
        "",
        "![drift](drift.png)",
    ]
    return "\n".join(lines) + "\n"


def _plot(report: Mapping[str, Any], traffic: Traffic, tokens: Tokenized, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 8), layout="constrained")
    mix_axes, length_axes, score_axes, share_axes = figure.subplots(2, 2).flat
    labels = report["labels"]
    positions = range(len(labels))
    mix = report["class_mix"]
    mix_axes.bar([p - 0.2 for p in positions], [mix["reference"].get(k, 0) for k in labels], 0.4,
                 label="training")  # fmt: skip
    mix_axes.bar([p + 0.2 for p in positions], [mix["traffic"][k] for k in labels], 0.4,
                 label="traffic")  # fmt: skip
    mix_axes.set_xticks(list(positions), labels, rotation=15)
    mix_axes.set_title("Class mix: training labels vs predicted")
    mix_axes.legend()
    length_axes.hist(tokens.lengths, bins=40, color="#4c72b0")
    reference = report["tokens"]["reference"]
    if reference:
        for key, style in (("p50", "--"), ("p99", ":")):
            length_axes.axvline(reference[key], color="black", linestyle=style,
                                label=f"training {key}")  # fmt: skip
        length_axes.legend()
    length_axes.axvline(report["max_length"], color="red", label="max_length")
    length_axes.set_title("Tokens per text (traffic)")
    score_axes.hist(traffic.scores, bins=20, range=(0, 1), color="#55a868")
    score_axes.set_title("Top score per text (traffic)")
    truncated = report["truncated_share"]
    bars = {
        "truncated (traffic)": truncated["traffic"],
        "truncated (training)": truncated["reference"] or 0.0,
        "unknown token (traffic)": report["unknown_token_share"],
    }
    share_axes.bar(list(bars), list(bars.values()), color="#dd8452")
    share_axes.set_title("Shares of texts")
    figure.savefig(path, dpi=100)


def write_report(
    report: Mapping[str, Any], traffic: Traffic, tokens: Tokenized, out_dir: Path
) -> None:
    """drift.json, drift.md and drift.png, written together: never a half-written report."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".drift-", dir=out_dir.parent))
    try:
        (staging / "drift.json").write_text(
            json.dumps(report, indent=2, sort_keys=True), encoding="utf-8"
        )
        (staging / "drift.md").write_text(render_markdown(report), encoding="utf-8")
        _plot(report, traffic, tokens, staging / "drift.png")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# --- command line ---------------------------------------------------------------------------


def _find_eda(model_dir: Path, given: Path | None) -> dict[str, Any]:
    candidates = [given] if given else [model_dir / "eda" / "report.json", model_dir.parent
                                        / "eda" / "report.json"]  # fmt: skip
    for path in candidates:
        if path is not None and path.is_dir():
            path = path / "report.json"
        if path is not None and path.is_file():
            report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if "class_balance" not in report:
                raise JobError(f"{path} is not an EDA report.json (python -m training.eda)")
            return report
    raise JobError(
        "no EDA report: pass --eda with the report.json of `python -m training.eda` (or the "
        "training job's output eda/report.json)"
    )


def _reference_accuracy(path: Path | None) -> float | None:
    if path is None:
        return None
    evaluation = json.loads(path.read_text(encoding="utf-8"))
    return float(evaluation["test"]["accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.drift",
        description="Compare captured endpoint traffic with the training data's EDA report.",
    )
    parser.add_argument("captured", help="folder or s3:// prefix of data-capture .jsonl files")
    parser.add_argument(
        "--reference", type=Path, required=True, help="model artifact folder (tokenizer, labels)"
    )
    parser.add_argument("--eda", type=Path, help="EDA report.json (default: next to the model)")
    parser.add_argument("--evaluation", type=Path, help="evaluation.json, for the score check")
    parser.add_argument("--output", type=Path, default=Path("drift"), help="report folder")
    defaults = Thresholds()
    for name, value in vars(defaults).items():
        parser.add_argument(
            f"--max-{name.replace('_', '-')}", dest=name, type=float, default=value,
            help=f"drift threshold (default {value})",
        )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    thresholds = Thresholds(**{name: getattr(args, name) for name in vars(defaults)})
    try:
        info = read_info(args.reference)
        eda = _find_eda(args.reference, args.eda)
        traffic = read_traffic(captured_lines(args.captured))
        if not traffic.texts:
            raise JobError(
                f"{args.captured}: no readable captured requests "
                f"({traffic.records} records, {traffic.unreadable} unreadable)"
            )
        tokens = tokenize(traffic.texts, args.reference)
        report = compare(
            traffic,
            tokens,
            labels=info.labels,
            max_length=info.max_length,
            eda=eda,
            reference_accuracy=_reference_accuracy(args.evaluation),
            thresholds=thresholds,
        )
        write_report(report, traffic, tokens, args.output)
    except (JobError, ArtifactError, OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_UNUSABLE
    over = [name for name, check in report["checks"].items() if check["over"]]
    sys.stderr.write(f"wrote {args.output / 'drift.md'}\n")
    if over:
        sys.stderr.write(f"drift above thresholds: {', '.join(over)}\n")
        return EXIT_DRIFT
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
