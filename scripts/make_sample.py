"""Draw the committed sample (data/sample/) from the full UCI News Aggregator file.

Whole STORY clusters are drawn at random per category until each category holds its share
of the target row count, so the sample keeps the class balance of the full data and a
story-grouped split of the sample behaves like one of the full data.

    python scripts/make_sample.py ../shared/data/newsCorpora.csv.xz \
        data/sample/newsCorpora.sample.csv.xz
"""

from __future__ import annotations

import argparse
import collections
import lzma
import random
import sys
from pathlib import Path

MAX_STORY_ROWS = 25  # a few giant stories would otherwise eat a category's whole budget


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=359)
    args = parser.parse_args(argv)

    stories: dict[tuple[str, str], list[bytes]] = collections.defaultdict(list)
    total = 0
    with lzma.open(args.source, "rb") as handle:
        for line in handle:
            fields = line.rstrip(b"\r\n").split(b"\t")
            if len(fields) != 8:
                continue
            stories[(fields[4].decode(), fields[5].decode())].append(line)
            total += 1

    per_category: collections.Counter[str] = collections.Counter()
    for (category, _), lines in stories.items():
        per_category[category] += len(lines)

    rng = random.Random(args.seed)
    chosen: list[bytes] = []
    for category in sorted(per_category):
        budget = round(args.rows * per_category[category] / total)
        keys = sorted(k for k in stories if k[0] == category and len(stories[k]) <= MAX_STORY_ROWS)
        rng.shuffle(keys)
        taken = 0
        for key in keys:
            if taken >= budget:
                break
            chosen.extend(stories[key])
            taken += len(stories[key])
    # Keep the original file order (by ID) so the sample reads like the real thing.
    chosen.sort(key=lambda line: int(line.split(b"\t", 1)[0]))
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(args.dest, "wb", preset=9) as out:
        out.writelines(chosen)
    sys.stderr.write(f"wrote {len(chosen)} rows to {args.dest}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
