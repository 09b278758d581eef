"""A fine-tuned artifact against the TF-IDF baseline on the same story-grouped test split:
both figures, and a story-level bootstrap interval for the difference in macro-F1.

The arithmetic lives in ``training.model_comparison`` (the pipeline's evaluation step runs
the same code inside the training image); this script is its command line for benchmarks.

    .venv/bin/python benchmarks/compare_models.py --input ../shared/data/newsCorpora.csv.xz \
        --model /tmp/full_run/model --out /tmp/compare.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from training.model_comparison import compare, predict_artifact

__all__ = ["compare", "comparison_parser", "main", "predict_artifact", "write_report"]


def comparison_parser(
    description: str, *, model_help: str, batch_size: int
) -> argparse.ArgumentParser:
    """The command line of a comparison on an artifact's test split (also compare_runtimes')."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", type=Path, required=True, help="raw UCI file or prepared dir")
    parser.add_argument("--model", type=Path, required=True, help=model_help)
    parser.add_argument("--seed", type=int, default=42, help="the split seed the job used")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    return parser


def write_report(report: dict[str, Any], out: Path | None) -> None:
    """The JSON report on stdout, and in ``out`` when given."""
    text = json.dumps(report, indent=1)
    sys.stdout.write(text + "\n")
    if out:
        out.write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = comparison_parser(
        __doc__.split("\n\n")[0], model_help="a model artifact directory", batch_size=128
    )
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args(argv)

    from training.baseline import build_baseline
    from training.data import load_input

    splits, _ = load_input(args.input, seed=args.seed)
    test = splits.test
    texts = [e.text for e in test]
    started = time.perf_counter()
    baseline = build_baseline(args.seed).fit(
        [e.text for e in splits.train], [e.label for e in splits.train]
    )
    baseline_predicted = [str(label) for label in baseline.predict(texts)]
    baseline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model_predicted = predict_artifact(args.model, texts, args.batch_size)
    model_seconds = time.perf_counter() - started
    report = compare(
        [e.story for e in test],
        [e.label for e in test],
        model_predicted,
        baseline_predicted,
        list(splits.labels),
        resamples=args.resamples,
        seed=args.seed,
    )
    report |= {
        "baseline_fit_and_predict_s": round(baseline_seconds, 1),
        "model_predict_s": round(model_seconds, 1),
    }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
