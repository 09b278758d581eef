"""Benchmark the data layer: reading, validating, de-duplicating, splitting, tokenizing.

    .venv/bin/python benchmarks/bench_data.py ../shared/data/newsCorpora.csv.xz --repeat 3

Each step runs ``--repeat`` times; the table shows the fastest wall time and its CPU time
(the CPU figure is the steadier one on a machine shared with other jobs). The file is also
decompressed once to a temporary ``.csv`` so that reading an uncompressed file is measured
apart from xz decompression, which is single-threaded and costs more than everything else.
"""

from __future__ import annotations

import argparse
import lzma
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.artifacts import minilm_dir
from training.data import (
    Example,
    deduplicate,
    load_raw_file,
    parse_raw,
    read_raw_bytes,
    split_examples,
)


def measure(step: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best wall seconds, CPU seconds of that run, the step's result)."""
    best: tuple[float, float, Any] | None = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        timing = (time.perf_counter() - wall, time.process_time() - cpu, result)
        if best is None or timing[0] < best[0]:
            best = timing
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path, help="newsCorpora.csv[.xz]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--tokenizer", type=Path, default=None, help="default: the offline all-MiniLM-L6-v2"
    )
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        plain = args.path
        if args.path.name.endswith(".xz"):
            wall, cpu, data = measure(lambda: read_raw_bytes(args.path), args.repeat)
            rows.append(("decompress .xz (lzma, 1 thread)", wall, cpu, f"{len(data) / 1e6:.0f} MB"))
            plain = Path(tmp) / "newsCorpora.csv"
            plain.write_bytes(lzma.decompress(args.path.read_bytes()))
        data = plain.read_bytes()

        wall, cpu, parsed = measure(lambda: parse_raw(data, source="bench"), args.repeat)
        lines = parsed.lines_read
        rows.append(("parse + validate lines", wall, cpu, f"{lines / wall:,.0f} lines/s"))

        def to_examples() -> tuple[list[Example], int, int]:
            return deduplicate(
                Example(text=t, label=lab, story=s, publisher=p)
                for t, lab, s, p in zip(
                    parsed.titles, parsed.labels, parsed.stories, parsed.publishers, strict=True
                )
            )

        wall, cpu, (examples, removed, _) = measure(to_examples, args.repeat)
        rows.append(("build examples + de-duplicate", wall, cpu, f"{removed:,} removed"))

        def split() -> Any:
            return split_examples(examples, seed=42, validation_fraction=0.1, test_fraction=0.1)

        wall, cpu, splits = measure(split, args.repeat)
        sizes = "/".join(f"{len(v):,}" for v in splits.by_name().values())
        rows.append(("story-grouped split", wall, cpu, sizes))

        wall, cpu, _ = measure(lambda: load_raw_file(plain), args.repeat)
        rows.append(("**load_raw_file, uncompressed .csv (all of the above)**", wall, cpu, ""))
        if plain != args.path:
            wall, cpu, _ = measure(lambda: load_raw_file(args.path), args.repeat)
            rows.append(("load_raw_file, .csv.xz", wall, cpu, ""))

        titles = [example.text for example in examples]
        rows.extend(tokenizer_rows(titles, args.tokenizer, args.repeat))

    print(
        f"{len(titles):,} titles from {lines:,} lines · {platform.python_implementation()} "
        f"{platform.python_version()} · {os.cpu_count()} CPUs · best of {args.repeat}\n"
    )
    print("| step | wall s | CPU s | |")
    print("| --- | ---: | ---: | --- |")
    for name, wall, cpu, note in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {note} |")
    return 0


def tokenizer_rows(
    titles: list[str], tokenizer_path: Path | None, repeat: int
) -> list[tuple[str, float, float, str]]:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    if tokenizer_path is None:
        tokenizer_path = minilm_dir()
    rows = []
    fast = Tokenizer.from_file(str(tokenizer_path / "tokenizer.json"))
    fast.no_padding()
    fast.enable_truncation(128)
    wall, cpu, _ = measure(lambda: fast.encode_batch(titles), repeat)
    rows.append(
        ("tokenize, `tokenizers` encode_batch", wall, cpu, f"{len(titles) / wall:,.0f} titles/s")
    )
    wall, cpu, _ = measure(lambda: fast.encode_batch_fast(titles), repeat)
    rows.append(
        (
            "tokenize, `tokenizers` encode_batch_fast (no offsets)",
            wall,
            cpu,
            f"{len(titles) / wall:,.0f} titles/s",
        )
    )
    from training.chunk_tokenize import count_tokens

    wall, cpu, _ = measure(lambda: count_tokens(titles, tokenizer_path), repeat)
    rows.append(
        (
            "token counts for the report (`chunk_tokenize.count_tokens`, per-chunk cache)",
            wall,
            cpu,
            f"{len(titles) / wall:,.0f} titles/s",
        )
    )
    hf = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
    from training.chunk_tokenize import encode_titles

    wall, cpu, _ = measure(lambda: encode_titles(titles, hf, 128), repeat)
    rows.append(
        (
            "tokenize to ids, `chunk_tokenize.encode_titles` (max_length 128)",
            wall,
            cpu,
            f"{len(titles) / wall:,.0f} titles/s",
        )
    )
    wall, cpu, _ = measure(lambda: hf(titles, truncation=True, max_length=128), repeat)
    rows.append(
        (
            "tokenize, transformers fast tokenizer `__call__`",
            wall,
            cpu,
            f"{len(titles) / wall:,.0f} titles/s",
        )
    )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
