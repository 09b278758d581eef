"""``python -m training.prepare``: raw UCI file -> prepared splits (Parquet) + the data report.

    python -m training.prepare --input newsCorpora.csv.xz --output data/prepared

writes, all or nothing::

    data/prepared/
      train/train.parquet             # give these three directories to a training job as its
      validation/validation.parquet   # `train`, `validation` and `test` channels
      test/test.parquet
      data_summary.json               # sources (sha256), rows, bad lines, duplicates, options
      eda/                            # report.md, report.json and the PNG plots

Each Parquet file has the columns ``text``, ``label``, ``story``, ``publisher`` and carries the
label names, the split method, the seed and the summary in its schema metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from training.data import (
    DataSummary,
    SplitMethod,
    Splits,
    load_raw_file,
    write_prepared_split,
)
from training.eda import default_tokenizer_path, load_tokenizer, write_eda_report
from training.errors import DataError, JobError

logger = logging.getLogger(__name__)


def prepare(
    input_path: Path,
    output_dir: Path,
    *,
    seed: int = 42,
    split: SplitMethod = "story",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_bad_fraction: float = 0.001,
    tokenizer_path: Path | str | None = None,
    max_length: int = 128,
    eda: bool = True,
    overwrite: bool = False,
    progress: bool = False,
) -> tuple[Splits, DataSummary]:
    """Read, split and write ``input_path`` into ``output_dir``; see the module docstring.

    The output is built in a staging directory beside ``output_dir`` and renamed into place at
    the end, so a failure leaves ``output_dir`` as it was.
    """
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise DataError(
            f"{output_dir} exists and is not empty: choose another --output or pass --overwrite"
        )
    splits, summary = load_raw_file(
        input_path,
        seed=seed,
        split=split,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        max_bad_fraction=max_bad_fraction,
        progress=progress,
    )
    options = {
        "seed": seed,
        "method": split,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "max_bad_fraction": max_bad_fraction,
    }
    # One id per (data, options): the loader checks that the three channels come from one run.
    run_id = hashlib.sha256(
        json.dumps({"sources": summary.sources, **options}, sort_keys=True).encode()
    ).hexdigest()[:16]
    metadata: dict[str, Any] = {
        **options,
        "run": run_id,
        "input": input_path.name,
        "summary": summary.to_dict(),
    }

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        for name, examples in splits.by_name().items():
            (staging / name).mkdir()
            write_prepared_split(
                examples, staging / name / f"{name}.parquet", {**metadata, "split": name}
            )
        (staging / "data_summary.json").write_text(
            json.dumps({**metadata, "labels": list(splits.labels)}, indent=2, sort_keys=True),
            encoding="utf-8",
        )
        if eda:
            # A directory, or the base model's Hub id: its own tokenizer, when it loads.
            tokenizer, missing = load_tokenizer(tokenizer_path) if tokenizer_path else (None, None)
            write_eda_report(
                splits,
                staging / "eda",
                tokenizer_path=tokenizer if isinstance(tokenizer, Path) else None,
                tokenizer=None if isinstance(tokenizer, Path) else tokenizer,
                tokenizer_name=str(tokenizer_path) if tokenizer_path else None,
                no_tokenizer_reason=missing,
                max_length=max_length,
                summary=summary,
                progress=progress,
            )
        _replace_dir(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return splits, summary


def _replace_dir(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, replacing what was there only once ``source`` is complete."""
    if target.exists():
        retired = target.with_name(f".{target.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        target.rename(retired)
        source.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        source.rename(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.prepare",
        description="Split the UCI News Aggregator file into train/validation/test Parquet "
        "files (SageMaker channels) and write the data report.",
    )
    parser.add_argument(
        "--input", type=Path, required=True, help="newsCorpora.csv, .csv.xz, .csv.gz or UCI .zip"
    )
    parser.add_argument("--output", type=Path, required=True, help="directory to create")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split")
    parser.add_argument(
        "--split",
        choices=["story", "random"],
        default="story",
        help="story: whole STORY clusters per split (default); random: rows at random (leaks)",
    )
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=0.001,
        help="share of malformed lines tolerated (skipped and reported) before failing",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="the base model's tokenizer for the report's token lengths: a directory or a "
        "Hub id such as distilbert-base-uncased (default: the offline all-MiniLM-L6-v2, if "
        "installed); a Hub id that cannot be loaded (offline) leaves them out and says why",
    )
    parser.add_argument(
        "--max-length", type=int, default=128, help="max length whose truncation to report"
    )
    parser.add_argument("--no-eda", action="store_true", help="skip the data report")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        splits, summary = prepare(
            args.input,
            args.output,
            seed=args.seed,
            split=args.split,
            validation_fraction=args.validation_fraction,
            test_fraction=args.test_fraction,
            max_bad_fraction=args.max_bad_fraction,
            tokenizer_path=args.tokenizer or default_tokenizer_path(),
            max_length=args.max_length,
            eda=not args.no_eda,
            overwrite=args.overwrite,
            progress=True,
        )
    except JobError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except OSError as exc:  # e.g. the output directory is not writable
        sys.stderr.write(f"error: {exc}\n")
        return 1
    rows = ", ".join(f"{name} {count:,}" for name, count in summary.rows.items())
    sys.stderr.write(f"wrote {args.output} ({splits.method} split: {rows})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
